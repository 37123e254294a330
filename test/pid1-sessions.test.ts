import t from 'tap';
import { docker, dockerMissing, eventually, notRoot, sandboxProcesses, startWorld, transcript, type GuestProcess } from './support/world.ts';
import type { Sandbox } from '../tools/sandbox.ts';

// Sessions of sandboxed guests end to end: every exit status reaches the
// appliance exactly, and a tty session behaves as a terminal does (job
// control, Ctrl-C, resize), driven through the appliance's attach.

const skip = notRoot();
if (skip) console.error(`# SKIPPING test/pid1-sessions.test.ts: ${skip}`);

const session = (cmd: string[], extra: Record<string, unknown> = {}) => ({ cmd, ...extra });
const vm = (id: string, sessions: Record<string, unknown>) => ({ id, name: id, hostname: id, sessions });
const want = { stdin: true, stdout: true, stderr: true, stream: true, logs: false };

t.test('every exit status 0–255 and every death by TERM, HUP, QUIT, INT or KILL reaches the appliance exactly', { skip }, async (t) => {
  const world = await startWorld(t);
  const expected: Record<string, number> = {};
  // The primary waits, so that the guest outlives the sessions under test.
  const sessions: Record<string, unknown> = { codes: session(['cat'], { openStdin: true }) };
  for (let code = 0; code <= 255; code++) {
    sessions[`exit${code}`] = session(['sh', '-c', `exit ${code}`]);
    expected[`exit${code}`] = code;
  }
  const signals = { TERM: 143, HUP: 129, QUIT: 131, INT: 130, KILL: 137 };
  for (const [name, code] of Object.entries(signals)) {
    // A shell killing itself; no core file for QUIT.
    sessions[`self-${name}`] = session(['sh', '-c', `ulimit -c 0; kill -s ${name} $$; sleep 5`]);
    expected[`self-${name}`] = code;
  }
  await world.sandbox(vm('codes', sessions));
  const ids = Object.keys(expected);
  const reported = () => Object.fromEntries(ids.map((id) => [id, world.appliance.directory.find(id)]).filter(([, c]) => c && (c as { state: string }).state === 'exited').map(([id, c]) => [id, (c as { exitCode?: number }).exitCode]));
  const all = await eventually(() => {
    const now = reported();
    return Object.keys(now).length === ids.length ? now : undefined;
  }, `all ${ids.length} sessions to exit`).catch(reported);
  t.same(all, expected);
  t.same(Object.fromEntries(Object.keys(signals).map((name) => [name, world.appliance.directory.find(`self-${name}`)?.signal])), { TERM: 'TERM', HUP: 'HUP', QUIT: 'QUIT', INT: 'INT', KILL: 'KILL' }, 'and each death names its signal');
});

t.test('docker wait and docker inspect report the exit status the guest reported', { skip: skip || dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('waits', { waits: session(['cat'], { openStdin: true }), w0: session(['sh', '-c', 'exit 0']), w255: session(['sh', '-c', 'exit 255']), wkill: session(['sh', '-c', 'kill -s KILL $$']) }));
  for (const [id, code] of [['w0', 0], ['w255', 255], ['wkill', 137]] as const) {
    await world.container(id, (c) => c.state === 'exited');
    const wait = await docker(world, ['wait', id]);
    t.same([wait.code, wait.stdout.trim()], [0, String(code)], `docker wait ${id}`);
    const inspect = await docker(world, ['inspect', '-f', '{{.State.ExitCode}}', id]);
    t.equal(inspect.stdout.trim(), String(code), `docker inspect ${id}`);
  }
});

// ---- tty sessions ------------------------------------------------------------------

/** A process of the sandbox running `cmdline`, once it is its terminal's foreground job. */
function foreground(sandbox: Sandbox, cmdline: string): Promise<GuestProcess> {
  return eventually(() => sandboxProcesses(sandbox).others.find((p) => p.cmdline === cmdline && p.tpgid === p.pgrp), `${cmdline} in the foreground of its terminal`);
}

const shell = (extra: Record<string, unknown> = {}) => session(['sh', '-i'], { tty: true, openStdin: true, runBlock: true, env: ['PS1=$ '], ...extra });

t.test('sh -i on a tty has job control: a background job is listed, brought to the foreground and stopped by Ctrl-C', { skip }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('jobs', { jobs: shell() }));
  await world.container('jobs');
  const a = await world.appliance.directory.attach('jobs', want);
  const out = transcript(a.stdout);
  a.stdin!.write('sleep 100 &\n');
  let from = out.mark();
  a.stdin!.write('jobs\n');
  await out.until(/\[1\]\s*\+?\s*Running\s+sleep 100/, 'jobs listing the background sleep', from);

  a.stdin!.write('fg\n');
  const job = await foreground(sandbox, 'sleep 100');
  from = out.mark();
  a.stdin!.write('\x03');
  // Arithmetic, so that the echo of the typed line cannot match.
  a.stdin!.write('echo back-$((6 * 7))\n');
  await out.until('back-42', 'the shell to answer after Ctrl-C', from);
  t.notOk(sandboxProcesses(sandbox).others.some((p) => p.pid === job.pid && p.state !== 'Z'), 'the job was interrupted');
  from = out.mark();
  a.stdin!.write('jobs; echo listed-$((1 + 1))\n');
  t.notMatch(await out.until('listed-2', 'the job list', from), /Running/, 'no job is left');
  a.stdin!.write('exit 0\n');
  t.equal((await a.done).exitCode, 0, 'exit 0 reports 0');
});

t.test('Ctrl-C on a foreground sleep in sh -i gives the shell back', { skip }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('ctrlc', { ctrlc: shell() }));
  await world.container('ctrlc');
  const a = await world.appliance.directory.attach('ctrlc', want);
  const out = transcript(a.stdout);
  a.stdin!.write('sleep 100\n');
  await foreground(sandbox, 'sleep 100');
  const from = out.mark();
  a.stdin!.write('\x03');
  a.stdin!.write('echo alive-$((2 + 3))\n');
  await out.until('alive-5', 'the shell to answer after Ctrl-C', from);
  a.stdin!.write('exit 0\n');
  t.equal((await a.done).exitCode, 0);
});

t.test('a tty session sh -c "sleep 100" interrupted by Ctrl-C reports 130', { skip }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('intr', { intr: session(['sh', '-c', 'sleep 100'], { tty: true, openStdin: true, runBlock: true }) }));
  await world.container('intr');
  const a = await world.appliance.directory.attach('intr', want);
  await foreground(sandbox, 'sleep 100');
  a.stdin!.write('\x03');
  t.equal((await a.done).exitCode, 130, 'the attach reports 130');
  t.equal((await world.container('intr', (c) => c.state === 'exited')).exitCode, 130, 'and so does the directory');
});

t.test('a resize sent right after the session starts takes effect: stty size prints the new size', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('sized', { sized: shell() }));
  await world.container('sized');
  // The attach starts the held session; the resize follows its unblock at once.
  const a = await world.appliance.directory.attach('sized', want);
  await world.appliance.directory.resize('sized', { cols: 101, rows: 37 });
  const out = transcript(a.stdout);
  a.stdin!.write('stty size\n');
  await out.until('37 101', 'the new size');
  a.stdin!.write('exit 0\n');
  t.equal((await a.done).exitCode, 0);
});
