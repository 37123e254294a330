// The Docker API beyond loopback: https with client certificates, as dockerd's
// --tlsverify, driven by the real docker CLI and by raw TLS connections; the
// refusals at start (no TLS on a non-loopback address, bad files); and the
// mode of the unix socket.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import type { Address, TlsFiles } from '../appliance/address.ts';
import { startAppliance, type RunningAppliance } from '../appliance/assembly.ts';
import { VERSION } from '../appliance/version.ts';
import { createLog } from '../shared/log.ts';
import { startSandbox } from '../tools/sandbox.ts';
import { dockerMissing, eventually } from './support/world.ts';

const OPENSSL = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
if (!OPENSSL) {
  console.error('# SKIPPING test/api-tls.test.ts: no `openssl` CLI on PATH to make the test CA and certificates');
  t.plan(0, 'no openssl CLI on PATH');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'tether-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA `name`.pem with its key `name`-key.pem. */
function makeCa(name: string) {
  openssl('req', '-x509', ...newKey, '-keyout', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=tether test ${name}`);
}

/** `name`.pem and `name`-key.pem, signed by the CA `ca`, with the given extensions. */
function makeCert(name: string, ca: string, subject: string, extensions: string) {
  writeFileSync(file(`${name}.ext`), extensions);
  openssl('req', ...newKey, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subject);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
}

makeCa('ca');
makeCert('server', 'ca', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
makeCert('client', 'ca', '/CN=client', 'extendedKeyUsage=clientAuth\n');
makeCa('other-ca');
makeCert('stranger', 'other-ca', '/CN=stranger', 'extendedKeyUsage=clientAuth\n');

const serverTls: TlsFiles = { ca: file('ca.pem'), cert: file('server.pem'), key: file('server-key.pem') };
const loopback: Address = { kind: 'tcp', host: '127.0.0.1', port: 0 };

async function appliance(t: Test, api: Address | Address[], tlsFiles?: TlsFiles): Promise<{ appliance: RunningAppliance; stateDir: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tether-tls-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const running = await startAppliance({
    serial: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    api,
    tls: tlsFiles,
    stateDir,
    attachTimeoutMs: 10_000,
    log: createLog('appliance', process.env.TETHER_LOG ? undefined : 'error'),
  });
  t.teardown(() => running.close());
  return { appliance: running, stateDir };
}

/** The docker CLI against `host`, with `tlsArgs` before the command; resolves with what it said and its status. */
function docker(host: string, tlsArgs: string[], args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  const child = spawn('docker', [...tlsArgs, '-H', host, ...args], { env: { ...process.env, DOCKER_CONFIG: config }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      rmSync(config, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

const verified = (client: string) => ['--tlsverify', '--tlscacert', file('ca.pem'), '--tlscert', file(`${client}.pem`), '--tlskey', file(`${client}-key.pem`)];

/**
 * A raw TLS connection that sends `GET /_ping` once the handshake is done;
 * resolves with what the server answered, or the error that ended it.
 */
function ping(address: string, client?: string): Promise<{ answer: string; error?: string }> {
  const [host, port] = address.replace('tcp://', '').split(':');
  return new Promise((resolve) => {
    let answer = '';
    const socket = tls.connect({
      host,
      port: Number(port),
      ca: readFileSync(file('ca.pem')),
      ...(client ? { cert: readFileSync(file(`${client}.pem`)), key: readFileSync(file(`${client}-key.pem`)) } : {}),
      servername: 'localhost',
    });
    socket.on('secureConnect', () => socket.write('GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', (error) => resolve({ answer, error: error.message }));
    socket.on('close', () => resolve({ answer }));
  });
}

t.test('the docker CLI with --tlsverify and a client certificate from the CA gets the version over TLS', { skip: dockerMissing() }, async (t) => {
  const { appliance: running } = await appliance(t, loopback, serverTls);
  const { code, stdout, stderr } = await docker(running.api, verified('client'), ['version', '--format', '{{.Server.Version}}']);
  t.equal(code, 0, stderr);
  t.equal(stdout.trim(), VERSION);
  const ps = await docker(running.api, verified('client'), ['ps']);
  t.equal(ps.code, 0, ps.stderr);
});

t.test('a raw TLS client with a certificate from the CA is answered', async (t) => {
  const { appliance: running } = await appliance(t, loopback, serverTls);
  const { answer, error } = await ping(running.api, 'client');
  t.equal(error, undefined);
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nOK$/);
});

t.test('a client without a certificate is refused in the handshake and gets no answer', async (t) => {
  const { appliance: running } = await appliance(t, loopback, serverTls);
  const { answer, error } = await ping(running.api);
  t.equal(answer, '', 'no HTTP answer');
  t.match(error, /certificate required/);
  if (!dockerMissing()) {
    const cli = await docker(running.api, ['--tlsverify', '--tlscacert', file('ca.pem')], ['version']);
    t.not(cli.code, 0, 'docker without --tlscert fails');
    t.match(cli.stderr, /certificate required/);
  }
});

t.test('a client with a certificate from another CA is dropped after the handshake, unanswered', async (t) => {
  const { appliance: running } = await appliance(t, loopback, serverTls);
  // node:tls checks the client's certificate once the handshake is done and
  // then closes the connection without an alert, so the client sees it end.
  const { answer } = await ping(running.api, 'stranger');
  t.equal(answer, '', 'no HTTP answer');
  if (!dockerMissing()) {
    // The docker CLI (Go) offers only a certificate from a CA the server
    // names in its request, so it offers none and is refused for that.
    const cli = await docker(running.api, verified('stranger'), ['version']);
    t.not(cli.code, 0, 'docker with the stranger certificate fails');
    t.match(cli.stderr, /certificate required/);
  }
});

t.test('a plain http client on the TLS port gets no API answer', { skip: dockerMissing() }, async (t) => {
  const { appliance: running } = await appliance(t, loopback, serverTls);
  const cli = await docker(running.api, [], ['version']);
  t.not(cli.code, 0);
});

t.test('a non-loopback address without TLS is refused at start, naming the options to pass', async (t) => {
  await t.rejects(
    appliance(t, { kind: 'tcp', host: '0.0.0.0', port: 0 }),
    /refusing to serve the Docker API on tcp:\/\/0\.0\.0\.0:0 without TLS: .*pass --tls-ca FILE .*--tls-cert FILE --tls-key FILE/,
  );
});

t.test('bad TLS files are refused at start, naming the option, the file and the problem', async (t) => {
  const garbage = file('garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  const cases: [string, TlsFiles, RegExp][] = [
    ['a missing CA file', { ...serverTls, ca: file('nope.pem') }, /^--tls-ca \S+nope\.pem: cannot read it: ENOENT/],
    ['a server certificate that is not PEM', { ...serverTls, cert: garbage }, /^--tls-cert \S+garbage\.pem: not a PEM server certificate/],
    ['a key that is not PEM', { ...serverTls, key: garbage }, /^--tls-key \S+garbage\.pem: not a PEM private key/],
    ['the key of another certificate', { ...serverTls, key: file('client-key.pem') }, /^--tls-key \S+client-key\.pem: not the private key of the certificate in --tls-cert \S+server\.pem/],
  ];
  for (const [name, files, message] of cases) await t.rejects(appliance(t, loopback, files), message, name);
});

t.test('the unix socket gets mode 0660 whatever the umask', async (t) => {
  const previous = process.umask(0);
  t.teardown(() => process.umask(previous));
  const socketDir = mkdtempSync(join(tmpdir(), 'tether-sock-'));
  t.teardown(() => rmSync(socketDir, { recursive: true, force: true }));
  const path = join(socketDir, 'docker.sock');
  const { appliance: running } = await appliance(t, { kind: 'unix', path });
  t.ok(statSync(path).isSocket());
  t.equal((statSync(path).mode & 0o777).toString(8), '660');
  t.equal(process.umask(), 0, 'the umask is as it was');
  if (!dockerMissing()) {
    const cli = await docker(running.api, [], ['version', '--format', '{{.Server.Version}}']);
    t.equal(cli.stdout.trim(), VERSION, cli.stderr);
  }
});

t.test('docker attach over TLS: stdin in, output out, the exit status returned', { skip: dockerMissing() }, async (t) => {
  const { appliance: running, stateDir } = await appliance(t, loopback, serverTls);
  const [host, port] = running.serial.replace('tcp://', '').split(':');
  const sandbox = await startSandbox({
    config: { id: 'tlscat', name: 'vm-tlscat', hostname: 'tlscat', sessions: { tlscat: { cmd: ['sh', '-c', 'cat; exit 5'], openStdin: true } } },
    source: 'test config',
    appliance: { host: host!, port: Number(port) },
    stateDir,
    console: process.env.TETHER_LOG ? 'inherit' : 'ignore',
  });
  t.teardown(() => sandbox.close());
  await eventually(() => running.directory.find('tlscat'), 'container tlscat to be reported by its guest');
  const { code, stdout, stderr } = await docker(running.api, verified('client'), ['attach', 'tlscat'], 'abc\n');
  t.equal(stdout, 'abc\n', stderr);
  t.equal(code, 5, 'docker attach returns the process exit status');
});
