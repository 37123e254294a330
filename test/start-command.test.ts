import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { onTerminal } from './support/terminal.ts';
import { dockerMissing, transcript } from './support/world.ts';

// `tether start` (npm start) as the README's new user meets it: every
// command it prints, typed as printed, against the appliance and demo it runs.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping tether start tests: ${skip}`);

t.test('tether start prints docker commands that run, exec, read the logs of and attach to its demo, and ctrl-c stops it', { skip }, async (t) => {
  const state = mkdtempSync(join(tmpdir(), 'tether-start-'));
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  const env = { ...(process.env as Record<string, string>), DOCKER_CONFIG: config };
  // Port 0 for both listeners: another test may hold the defaults.
  // A process group of its own: a failed test kills it whole, the demo's sandbox with it.
  const start = spawn(process.execPath, ['bin/tether.js', 'start', '--state', state, '--api', 'tcp://127.0.0.1:0', '--serial', 'tcp://127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => start.on('close', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    try {
      process.kill(-start.pid!, 'SIGKILL');
    } catch {
      // Already gone: it stopped as the test asked.
    }
    rmSync(state, { recursive: true, force: true });
    rmSync(config, { recursive: true, force: true });
  });
  const stdout = transcript(start.stdout);
  const stderr = transcript(start.stderr);
  const banner = await stdout.until('ctrl-c here stops', 'the banner of tether start');

  // The hints, as printed: the command, then (after a gap) what it is for.
  const hints = banner.split('\n').filter((line) => line.startsWith('  docker -H ')).map((line) => line.trim().split(/\s{3,}/)[0]!.split(' '));
  const hint = (verb: string) => {
    const found = hints.find((argv) => argv[3] === verb);
    if (!found) throw new Error(`no docker ${verb} among the printed hints: ${JSON.stringify(hints)}`);
    return found;
  };
  t.same(hints.map((argv) => argv.slice(3).join(' ')), ['run -it --rm host sh', 'exec demo ls /', 'logs demo', 'attach demo'], 'the four commands of the README');

  const run = onTerminal(t, hint('run'), env);
  run.type('echo ran-$((40+2)); exit 3\r');
  await run.shows('ran-42');
  t.equal(await run.exited, 3, 'docker run -it returns the shell\'s status');

  const exec = spawnSync(hint('exec')[0]!, hint('exec').slice(1), { env, encoding: 'utf8' });
  t.equal(exec.status, 0, exec.stderr);
  t.match(exec.stdout, /^proc$/m, 'ls / in the demo lists /proc');

  const attach = onTerminal(t, hint('attach'), env);
  attach.type('echo attached-$((40+2))\r');
  await attach.shows('attached-42');
  attach.type('\x10\x11');
  t.equal(await attach.exited, 1, 'the CLI reports a detach as docker does');
  t.match(attach.screen(), /read escape sequence/);

  const logs = spawnSync(hint('logs')[0]!, hint('logs').slice(1), { env, encoding: 'utf8' });
  t.equal(logs.status, 0, logs.stderr);
  t.match(logs.stdout, /attached-42/, 'the demo\'s log has what was typed in the attach');
  const ps = spawnSync(hint('logs')[0]!, [...hint('logs').slice(1, 3), 'ps', '--filter', 'name=demo', '--format', '{{.Names}} {{.Status}}'], { env, encoding: 'utf8' });
  t.match(ps.stdout, /^demo Up/m, 'the demo runs on after the detach');

  start.kill('SIGINT');
  t.same(await ended, { code: 0, signal: null }, 'ctrl-c ends tether start');
  t.notMatch(stderr.text(), /the guest init exited/, 'the demo stopping on ctrl-c is not reported as news');
});
