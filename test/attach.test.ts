import t from 'tap';
import { collect, docker, dockerMissing, readUntil, startWorld } from './support/world.ts';
import { shellGate } from './support/gate.ts';

// End to end: a real appliance, sandboxed guests on real ptys bridged to its
// real TCP listener, real processes, attached through the appliance's directory
// (the layer under the Docker API) and through the real docker CLI.

const session = (cmd: string[], extra: Record<string, unknown> = {}) => ({ cmd, ...extra });
const vm = (id: string, sessions: Record<string, unknown>) => ({ id, name: `vm-${id}`, hostname: id, sessions });
const want = { stdin: true, stdout: true, stderr: true, stream: true, logs: false };

t.test('bytes round-trip through an attached cat and stdin close ends it with status 0', async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('cat1', { cat1: session(['cat'], { openStdin: true }) }));
  await world.container('cat1');
  const a = await world.appliance.directory.attach('cat1', want);
  const output = collect(a.stdout);
  const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, ...Buffer.from('hello\n')]);
  a.stdin!.write(bytes);
  a.stdin!.end();
  t.same(await output, bytes, 'the same bytes come back, binary included');
  t.same(await a.done, { exitCode: 0, signal: undefined, detached: false }, 'cat saw EOF and exited 0');
});

t.test('non-tty stdout and stderr arrive separately, and the exit code arrives', async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('split', { split: session(['sh', '-c', 'echo out; echo err >&2; echo out2; exit 42'], { runBlock: true }) }));
  await world.container('split');
  const a = await world.appliance.directory.attach('split', want);
  const [stdout, stderr] = await Promise.all([collect(a.stdout), collect(a.stderr)]);
  t.equal(stdout.toString(), 'out\nout2\n');
  t.equal(stderr.toString(), 'err\n');
  t.equal((await a.done).exitCode, 42);
});

t.test('a tty session follows window-change', async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('tty1', { tty1: session(['sh'], { tty: true, openStdin: true, env: ['PS1=$ '] }) }));
  await world.container('tty1');
  const a = await world.appliance.directory.attach('tty1', want);
  t.equal(a.stderr, undefined, 'a tty has one output stream');
  await world.appliance.directory.resize('tty1', { cols: 123, rows: 45 });
  a.stdin!.write('stty size\n');
  await readUntil(a.stdout, '45 123', 'the new size');
  await world.appliance.directory.resize('tty1', { cols: 80, rows: 24 });
  a.stdin!.write('stty size; exit 7\n');
  await readUntil(a.stdout, '24 80', 'the second size');
  t.equal((await a.done).exitCode, 7);
});

t.test('a run-block session delivers its output and exit code on every one of 200 runs', async (t) => {
  const world = await startWorld(t);
  const runs = 200;
  const sessions: Record<string, unknown> = {};
  for (let i = 0; i < runs; i++) sessions[`rb${i}`] = session(['sh', '-c', 'echo hi; exit 3'], { runBlock: true });
  // The held sessions are execs of a container that stays up: execs end with their container's primary.
  await world.sandbox(vm('rbhost', { rbhost: session(['sleep', '1000']), ...sessions }));
  // Their info comes in several pieces, in no promised order: every one must have arrived.
  for (const id of Object.keys(sessions)) await world.container(id);
  const results = new Map<string, string>();
  // Four attaches at a time: each releases its own held session.
  const ids = Object.keys(sessions);
  await Promise.all(
    [0, 1, 2, 3].map(async (lane) => {
      for (let i = lane; i < ids.length; i += 4) {
        const a = await world.appliance.directory.attach(ids[i]!, { ...want, stdin: false });
        const out = await collect(a.stdout);
        results.set(ids[i]!, `${out.toString()}|${(await a.done).exitCode}`);
      }
    }),
  );
  const wrong = [...results].filter(([, r]) => r !== 'hi\n|3');
  t.equal(results.size, runs);
  t.same(wrong, [], 'every run printed hi and exited 3');
});

t.test('the real docker CLI attaches: stdin in, output out, the end of its input is EOF while output goes on, the exit status returned', { skip: dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('dcat', { dcat: session(['sh', '-c', 'cat; echo after the end of input; exit 5'], { openStdin: true }) }));
  await world.container('dcat');
  const result = await docker(world, ['attach', 'dcat'], 'abc\n');
  t.equal(result.stdout, 'abc\nafter the end of input\n', 'the CLI half-closed: cat saw EOF, and what followed still arrived');
  t.equal(result.code, 5, 'docker attach returns the process exit status');
  const inspect = await docker(world, ['inspect', '-f', '{{.Config.Hostname}} {{.State.Status}} {{.State.ExitCode}}', 'dcat']);
  t.equal(inspect.stdout.trim(), 'dcat exited 5', 'docker inspect shows the guest-reported hostname and exit');
});

t.test('docker attach to an unknown ID fails at once naming the ID', { skip: dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['attach', 'no-such-thing']);
  t.not(result.code, 0);
  t.match(result.stderr, /No such container: no-such-thing \(no containerVM has reported it yet \(0 links up, 0 down\)\)/);
});

t.test('several clients attached at once each get all the output and the exit status', async (t) => {
  const world = await startWorld(t);
  const gate = shellGate();
  await world.sandbox(vm('multi', { multi: session(['sh', '-c', `${gate.wait}; for i in 1 2 3; do echo line $i; done; exit 4`]) }));
  await world.container('multi', (c) => c.state === 'running');
  const clients = await Promise.all([0, 1, 2].map(() => world.appliance.directory.attach('multi', { ...want, stdin: false })));
  const outputs = clients.map((a) => collect(a.stdout));
  await gate.open();
  for (const [i, a] of clients.entries()) {
    t.equal((await outputs[i]!).toString(), 'line 1\nline 2\nline 3\n', `client ${i}: every line`);
    t.equal((await a.done).exitCode, 4, `client ${i}: the exit status`);
  }
});
