import t from 'tap';
import { api, docker, dockerMissing, eventually, notRoot, sandboxProcesses, startWorld, stillThere, transcript, type GuestProcess } from './support/world.ts';

// Signals from the Docker API to the processes of sandboxed guests, end to
// end: POST /containers/{id}/kill and /stop (and the real docker CLI) through
// the appliance, kill@tether and stop@tether over the serial link, the guest
// signalling its processes. What the processes saw is read from their own
// output and from the host's /proc.

const skip = notRoot();
if (skip) console.error(`# SKIPPING test/pid1-signals.test.ts: ${skip}`);

const session = (cmd: string[], extra: Record<string, unknown> = {}) => ({ cmd, ...extra });
const vm = (id: string, sessions: Record<string, unknown>) => ({ id, name: id, hostname: id, sessions });
const want = { stdin: false, stdout: true, stderr: true, stream: true, logs: false };

/** Signal numbers a process can catch: all of 1–31 but KILL (9) and STOP (19). */
const CATCHABLE = Array.from({ length: 31 }, (_, i) => i + 1).filter((n) => n !== 9 && n !== 19);

/** Traps every catchable signal and prints `got <number>` for each; prints `ready` once the traps are set. */
const TRAP_ALL = `
use Config;
$| = 1;
my @names = split ' ', $Config{sig_name};
for my $n (${CATCHABLE.join(', ')}) {
  my $k = $n;
  $SIG{$names[$n]} = sub { print "got $k\\n" };
}
print "ready\\n";
sleep 60 while 1;
`;
const trapAll = (extra: Record<string, unknown> = {}) => session(['perl', '-e', TRAP_ALL], { runBlock: true, ...extra });

t.test('every catchable signal 1–31 sent through POST /containers/{id}/kill reaches the process', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('trap', { trap: trapAll() }));
  await world.container('trap');
  const a = await world.appliance.directory.attach('trap', want);
  const out = transcript(a.stdout);
  await out.until('ready\n', 'the traps to be set');
  const statuses: number[] = [];
  const missing: number[] = [];
  for (const n of CATCHABLE) {
    const from = out.mark();
    statuses.push((await api(world, 'POST', `/containers/trap/kill?signal=${n}`)).status);
    await out.until(`got ${n}\n`, `the trap of signal ${n}`, from).catch(() => missing.push(n));
  }
  t.same(missing, [], 'every signal reached the process');
  t.ok(statuses.every((s) => s === 204), `every kill answered 204 (got ${[...new Set(statuses)].join(', ')})`);

  t.equal((await api(world, 'POST', '/containers/trap/kill')).status, 204, 'a kill without a signal is SIGKILL');
  t.equal((await a.done).exitCode, 137, 'and the process died of it');
  t.equal((await world.container('trap', (c) => c.state === 'exited')).exitCode, 137, 'the directory reports 137');
});

t.test('processes killed through the API by TERM, HUP, QUIT, INT and KILL report 143, 129, 131, 130 and 137', { skip }, async (t) => {
  const world = await startWorld(t);
  const signals = { TERM: 143, HUP: 129, QUIT: 131, INT: 130, KILL: 137 };
  const sessions: Record<string, unknown> = { victims: session(['cat'], { openStdin: true }) };
  // No core file for QUIT: the limit is the process's own.
  for (const name of Object.keys(signals)) sessions[`by-${name}`] = session(['sh', '-c', 'ulimit -c 0; exec sleep 1000']);
  await world.sandbox(vm('victims', sessions));
  for (const name of Object.keys(signals)) await world.container(`by-${name}`, (c) => c.state === 'running');
  const answers = await Promise.all(Object.keys(signals).map((name) => api(world, 'POST', `/containers/by-${name}/kill?signal=SIG${name}`)));
  t.same(answers.map((a) => a.status), [204, 204, 204, 204, 204]);
  const codes = Object.fromEntries(
    await Promise.all(Object.keys(signals).map(async (name) => [name, (await world.container(`by-${name}`, (c) => c.state === 'exited')).exitCode])),
  );
  t.same(codes, signals);
});

t.test('kill and stop answer as Docker does: 404 unknown, 400 bad signal, 409 kill of a stopped container, 304 stop of one', { skip }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('answers', { answers: session(['cat'], { openStdin: true }), done: session(['sh', '-c', 'exit 3']) }));
  await world.container('done', (c) => c.state === 'exited');

  const unknown = await api(world, 'POST', '/containers/nothing-here/kill');
  t.equal(unknown.status, 404);
  t.match(unknown.body, { message: /^Cannot kill container: nothing-here: No such container: nothing-here/ });
  t.equal((await api(world, 'POST', '/containers/nothing-here/stop')).status, 404);

  const bad = await api(world, 'POST', '/containers/answers/kill?signal=NOPE');
  t.same([bad.status, bad.body], [400, { message: 'Invalid signal: NOPE' }]);
  t.equal((await api(world, 'POST', '/containers/answers/stop?signal=SIGNOPE')).status, 400);
  t.equal((await api(world, 'POST', '/containers/answers/stop?t=soon')).status, 400);

  const stopped = await api(world, 'POST', '/containers/done/kill?signal=TERM');
  t.same([stopped.status, stopped.body], [409, { message: 'Cannot kill container: done: Container done is not running' }]);
  t.equal((await api(world, 'POST', '/containers/done/stop')).status, 304);
  t.equal(world.appliance.directory.find('answers')!.state, 'running', 'none of it touched the running container');
});

t.test('the real docker CLI: docker kill -s delivers the signal, docker stop -t kills what ignores the stop signal', { skip: skip || dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox(vm('cli', { cli: trapAll() }));
  await world.container('cli');
  const a = await world.appliance.directory.attach('cli', want);
  const out = transcript(a.stdout);
  await out.until('ready\n', 'the traps to be set');

  const usr1 = await docker(world, ['kill', '-s', 'USR1', 'cli']);
  t.same([usr1.code, usr1.stdout], [0, 'cli\n']);
  await out.until('got 10\n', 'USR1');
  const hup = await docker(world, ['kill', '--signal', 'SIGHUP', 'cli']);
  t.equal(hup.code, 0);
  await out.until('got 1\n', 'HUP');
  const bad = await docker(world, ['kill', '-s', 'NOPE', 'cli']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /Invalid signal: NOPE/);

  // The process traps TERM, so only the SIGKILL after the timeout ends it.
  const stop = await docker(world, ['stop', '-t', '1', 'cli']);
  t.same([stop.code, stop.stdout], [0, 'cli\n'], 'docker stop returns once the container has stopped');
  t.match(out.text(), /got 15\n/, 'the stop signal came first');
  const inspect = await docker(world, ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'cli']);
  t.equal(inspect.stdout.trim(), 'exited 137');
  t.equal((await a.done).exitCode, 137);

  const again = await docker(world, ['stop', 'cli']);
  t.equal(again.code, 0, 'stopping a stopped container succeeds (304)');
  const late = await docker(world, ['kill', 'cli']);
  t.not(late.code, 0);
  t.match(late.stderr, /Container cli is not running/);
});

t.test('docker stop -s sends that signal instead, and ends the container when it is enough', { skip: skip || dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  // USR2 is trapped, INT is not: a stop with INT ends it at once.
  await world.sandbox(vm('stops', { stops: session(['sh', '-c', 'trap "echo got TERM" TERM; echo ready; while :; do sleep 1; done'], { runBlock: true }) }));
  await world.container('stops');
  const a = await world.appliance.directory.attach('stops', want);
  const out = transcript(a.stdout);
  await out.until('ready\n', 'the shell to be ready');
  const stop = await docker(world, ['stop', '-s', 'INT', '-t', '100', 'stops']);
  t.same([stop.code, stop.stdout], [0, 'stops\n']);
  t.notMatch(out.text(), /got TERM/, 'the container\'s own stop signal was not sent');
  t.equal((await world.container('stops', (c) => c.state === 'exited')).exitCode, 130);
});

/**
 * A call that may hang when the guest never reports an exit: failing it after
 * a minute, well past any stop timeout here, lets the other tests run.
 */
function returns<T>(call: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not return within 60 s`)), 60_000)));
  return Promise.race([call, hung]).finally(() => clearTimeout(timer));
}

/** The processes of the sandbox in process group `pgrp` (host PID). */
const inGroup = (others: GuestProcess[], pgrp: number) => others.filter((p) => p.pgrp === pgrp);

t.test('a kill with group signals the whole process group: no process of the group survives', { skip }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('herd', {
    herd: session(['cat'], { openStdin: true }),
    flock: session(['sh', '-c', 'sleep 1001 & sleep 1002 & (sleep 1003; echo never) & wait']),
  }));
  const flock = await world.container('flock', (c) => c.state === 'running');
  const leader = await eventually(() => sandboxProcesses(sandbox).others.find((p) => p.nsPid === flock.pid), 'the session leader in /proc');
  const members = await eventually(() => {
    const group = inGroup(sandboxProcesses(sandbox).others, leader.pid);
    return group.length >= 5 ? group : undefined;
  }, 'the shell, its subshell and three sleeps in one group');

  await world.appliance.directory.kill('flock', 'TERM', { group: true });
  t.equal((await world.container('flock', (c) => c.state === 'exited')).exitCode, 143, 'the leader died of TERM');
  const group = () => inGroup(sandboxProcesses(sandbox).others, leader.pid);
  const living = () => group().filter((p) => p.state !== 'Z');
  const survivors = await eventually(() => (living().length === 0 ? [] : undefined), 'every member of the group to die').catch(living);
  t.same(survivors.map((p) => p.cmdline), [], `none of the ${members.length} members survived`);
  // The members outlived their parent, so they are PID 1's to reap.
  const unreaped = await eventually(() => (group().length === 0 ? [] : undefined), 'PID 1 to reap the members').catch(group);
  t.same(unreaped.map((p) => `${p.nsPid} ${p.state}`), [], 'PID 1 reaped every member');
  t.equal(world.appliance.directory.find('herd')!.state, 'running', 'the other session was left alone');
});

t.test('docker stop -t 1 ends a double-forked daemon that ignores TERM: only PID 1 remains', { skip: skip || dockerMissing() }, async (t) => {
  const world = await startWorld(t);
  const sandbox = await world.sandbox(vm('daemon', {
    daemon: session(['sh', '-c', '(setsid sh -c "trap \\"\\" TERM; while :; do sleep 1; done" &) ; exec sleep 1000']),
  }));
  await world.container('daemon', (c) => c.state === 'running');
  const before = await eventually(() => {
    const { others } = sandboxProcesses(sandbox);
    return others.some((p) => p.cmdline.includes('while :')) && others.some((p) => p.cmdline === 'sleep 1000') ? others : undefined;
  }, 'the daemon and the main process');

  const stop = await returns(docker(world, ['stop', '-t', '1', 'daemon']), 'docker stop -t 1 daemon (it returns once the guest reports the exit)');
  t.same([stop.code, stop.stdout], [0, 'daemon\n']);
  t.equal((await world.container('daemon')).state, 'exited');

  const remaining = () => {
    const alive = before.filter(stillThere);
    let now: GuestProcess[] = [];
    try {
      now = sandboxProcesses(sandbox).others;
    } catch {
      // The guest is gone, and its namespace with it: what it had must be gone too.
    }
    return [...alive.filter((p) => !now.some((q) => q.pid === p.pid)), ...now];
  };
  const living = () => remaining().filter((p) => p.state !== 'Z');
  const alive = await eventually(() => (living().length === 0 ? [] : undefined), 'every process but PID 1 to die').catch(living);
  t.same(alive.map((p) => `${p.nsPid} ${p.cmdline}`), [], 'no process of the sandbox but PID 1 is left running');
  const left = await eventually(() => (remaining().length === 0 ? [] : undefined), 'PID 1 to reap them').catch(remaining);
  t.same(left.map((p) => `${p.nsPid} ${p.state} ${p.cmdline}`), [], 'and none is left unreaped');
});

t.test('kill and stop of a container whose link is down fail with 504, naming the container and the link', { skip }, async (t) => {
  const world = await startWorld(t, { attachTimeoutMs: 500 });
  const sandbox = await world.sandbox(vm('cut', { cut: session(['cat'], { openStdin: true }) }));
  await world.container('cut', (c) => c.state === 'running');
  // cat ends at the EOF its pipe gets when the guest is gone.
  sandbox.guest.kill('SIGKILL');
  await world.container('cut', (c) => !c.link.up);
  for (const what of ['kill', 'stop']) {
    const answer = await api(world, 'POST', `/containers/cut/${what}`);
    t.equal(answer.status, 504, `${what}: 504`);
    t.match(answer.body, { message: new RegExp(`^Cannot ${what} container cut: waited 500 ms for a connection carrying container cut: .*link link\\d+ down`) }, `${what}: says what it waited for`);
  }
});
