import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import t from 'tap';
import { SSHD, startOpenSsh } from '../bench/openssh.ts';
import { formatBytesPerSecond, formatMs, mean, median, p90, ratio } from '../bench/stats.ts';

// Benchmarks need a real OpenSSH peer; without one say so instead of passing silently.
const skip = existsSync(SSHD) ? false : `${SSHD} is missing: apt-get install -y openssh-server openssh-client`;
if (skip) console.error(`# SKIP bench-openssh: ${skip}`);

t.test('OpenSSH harness times a 1 MiB transfer and new ControlMaster sessions', { skip }, async (t) => {
  const openSsh = await startOpenSsh();
  t.teardown(() => openSsh.close());
  t.match(openSsh.cipher, /\S/, 'names the negotiated cipher');
  t.ok((await openSsh.throughput(1024 * 1024)) > 0, 'positive bytes/s');
  const times = await openSsh.sessionLatency(3);
  t.equal(times.length, 3);
  t.ok(times.every((ms) => ms > 0), 'positive session times');
});

t.test('OpenSSH harness forces the cipher it is given', { skip }, async (t) => {
  const openSsh = await startOpenSsh({ cipher: 'aes128-gcm@openssh.com' });
  t.teardown(() => openSsh.close());
  t.equal(openSsh.cipher, 'aes128-gcm@openssh.com');
});

t.test('OpenSSH harness client refuses a host key known_hosts does not hold', { skip }, async (t) => {
  const openSsh = await startOpenSsh();
  t.teardown(() => openSsh.close());
  const dir = t.testdir();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/other`]);
  const [host] = (await readFile(openSsh.knownHostsPath, 'utf8')).split(' ');
  await writeFile(openSsh.knownHostsPath, `${host} ${await readFile(`${dir}/other.pub`, 'utf8')}`);
  await t.rejects(openSsh.throughput(1024 * 1024), /Host key verification failed/);
});

t.test('bench stats summarise samples and print ratios as N.NN×', async (t) => {
  const samples = [5, 1, 4, 2, 3, 10, 6, 7, 9, 8];
  t.equal(median(samples), 5.5);
  t.equal(p90(samples), 9.1);
  t.equal(mean(samples), 5.5);
  t.equal(ratio(3.7, 3), '1.23×');
  t.equal(formatBytesPerSecond(256 * 1024 * 1024), '256.0 MiB/s');
  t.equal(formatMs(1.234), '1.23 ms');
  t.throws(() => median([]));
});
