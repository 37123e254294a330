import t from 'tap';
import { measureDocker, missingPrerequisites } from '../bench/docker.ts';

// The benchmark needs root (sandboxes), the docker CLI and sshd; without them say so instead of passing silently.
const skip = missingPrerequisites() ?? false;
if (skip) console.error(`# SKIP bench-docker: ${skip}`);

t.test('the docker benchmark times docker exec, its parts and OpenSSH sessions, and a 1 MiB attach through cat beside ssh cat', { skip }, async (t) => {
  const lines: string[] = [];
  const results = await measureDocker({ execs: 3, bytes: 1024 * 1024, rounds: 1 }, (line) => lines.push(line));
  t.match(results.dockerVersion, /^Docker version /, 'names the docker CLI it drove');
  t.match(results.openSshCipher, /\S/, 'names the OpenSSH cipher');
  for (const name of ['exec', 'sshSession', 'apiExec', 'cliStart', 'cliVersion'] as const) {
    t.equal(results[name].length, 3, `${name}: one time per sample`);
    t.ok(results[name].every((ms) => ms > 0), `${name}: times, not zeros`);
  }
  // A rate at all means the whole 1 MiB came through each side (the benchmark fails on a short read).
  t.equal(results.attach.length, 1, 'a docker run rate for the round');
  t.equal(results.sshCat.length, 1, 'an ssh rate for the round');
  t.ok([...results.attach, ...results.sshCat].every((rate) => rate > 0), 'positive bytes/s');
  t.equal(lines.length, 2, 'a progress line for (a) and for the round of (b)');
});
