import t from 'tap';
import { createActor, fromCallback, SimulatedClock, type EventObject } from 'xstate';
import { composeGuest } from '../guest/composition.ts';
import type { ProcessCommand, ProcessInput, ProcessReport } from '../machines/processSession.ts';
import { restartDelay, shouldRestart } from '../machines/guest.ts';
import type { GuestConfig, SessionConfig } from '../shared/config.ts';
import { DEFAULT_SECURITY } from '../shared/security.ts';

// The container's life as the guest machine decides it, with processes that
// do what each test tells them: when the primary ends, the other sessions are
// stopped and the rest swept; TERM to PID 1 stops everything and ends the
// guest with the primary's status; restart policies; HUP's reload; the API's
// kill and stop reach the right session.

function session(extra: Partial<SessionConfig> = {}): SessionConfig {
  return { cmd: ['x'], env: [], cwd: '/', tty: false, openStdin: false, runBlock: false, stopSignal: 'TERM', stopTimeout: 10, restart: { name: 'no' }, ...extra };
}

function config(sessions: Record<string, SessionConfig>): GuestConfig {
  return {
    id: 'main', name: 'demo', hostname: 'demo', sessions,
    ssh: { hostKey: 'unused', authorizedKeys: [] }, serial: { device: '/dev/null' },
    outputLogBytes: 1 << 16, rootfs: 'host', logDir: '/unused', hide: [], security: DEFAULT_SECURITY,
  };
}

/** A guest whose processes start at LAUNCH and exit when the test says; the line never opens. */
function guest(sessions: Record<string, SessionConfig>) {
  const commands: Array<{ sessionId: string; command: ProcessCommand }> = [];
  const report = new Map<string, (event: ProcessReport) => void>();
  const launches = new Map<string, number>();
  let sweeps = 0;
  const process = fromCallback<ProcessCommand, ProcessInput>(({ input, sendBack, receive }) => {
    report.set(input.sessionId, sendBack);
    receive((command) => {
      commands.push({ sessionId: input.sessionId, command });
      if (command.type === 'LAUNCH') {
        launches.set(input.sessionId, (launches.get(input.sessionId) ?? 0) + 1);
        sendBack({ type: 'PROCESS_STARTED', pid: 100 });
      }
      if (command.type === 'KILL') sendBack({ type: 'PROCESS_EXITED', signal: 'KILL' });
    });
  });
  const idle = fromCallback<EventObject>(() => {});
  const sweeper = fromCallback<EventObject>(({ sendBack }) => {
    sweeps++;
    sendBack({ type: 'SWEPT' });
  });
  const clock = new SimulatedClock();
  const actor = createActor(composeGuest({ process, port: idle, server: idle, outputLog: idle, sweeper }), {
    input: { config: config(sessions), seed: 1 },
    clock,
  }).start();
  return {
    actor,
    clock,
    commands,
    launches,
    sweeps: () => sweeps,
    exit: (sessionId: string, exitCode: number) => report.get(sessionId)!({ type: 'PROCESS_EXITED', exitCode }),
    stateOf: (sessionId: string) => actor.getSnapshot().context.sessions[sessionId]!.state,
  };
}

t.test('when the primary ends, the other sessions get their stop signal, then the rest is swept', async (t) => {
  const g = guest({ main: session(), exec1: session({ stopSignal: 'QUIT' }) });
  g.exit('main', 3);
  t.same(g.commands.filter((c) => c.sessionId === 'exec1').map((c) => c.command).slice(1), [{ type: 'SIGNAL', signal: 'QUIT', target: 'process' }]);
  t.equal(g.actor.getSnapshot().value, 'stopping', 'waits for the exec to end');
  g.exit('exec1', 131);
  t.equal(g.sweeps(), 1);
  t.equal(g.actor.getSnapshot().value, 'stopped', 'a stopped container still serves its link');
  t.equal(g.actor.getSnapshot().status, 'active');
});

t.test('an exec that ignores its stop signal is killed after its stop timeout', async (t) => {
  const g = guest({ main: session(), exec1: session({ stopTimeout: 2 }) });
  g.exit('main', 0);
  g.clock.increment(2000);
  t.same(g.commands.at(-1), { sessionId: 'exec1', command: { type: 'KILL' } });
  t.equal(g.actor.getSnapshot().value, 'stopped');
});

t.test("SHUTDOWN stops every session and ends the guest with the primary's status", async (t) => {
  const g = guest({ main: session(), exec1: session() });
  g.actor.send({ type: 'SHUTDOWN' });
  t.ok(g.commands.some((c) => c.sessionId === 'main' && c.command.type === 'SIGNAL'));
  t.ok(g.commands.some((c) => c.sessionId === 'exec1' && c.command.type === 'SIGNAL'));
  g.exit('exec1', 143);
  g.exit('main', 143);
  t.equal(g.actor.getSnapshot().status, 'done');
  t.same(g.actor.getSnapshot().output, { exitCode: 143 });
});

t.test('SHUTDOWN of a container that has already stopped ends the guest at once', async (t) => {
  const g = guest({ main: session() });
  g.exit('main', 7);
  t.equal(g.actor.getSnapshot().value, 'stopped');
  g.actor.send({ type: 'SHUTDOWN' });
  t.same(g.actor.getSnapshot().output, { exitCode: 7 });
});

t.test('restart policies: always restarts after the back-off, on-failure only after a failure and up to its limit', async (t) => {
  const g = guest({ main: session(), always: session({ restart: { name: 'always' } }), twice: session({ restart: { name: 'on-failure', maxRetries: 2 } }) });
  g.exit('always', 0);
  t.equal(g.stateOf('always'), 'exited');
  g.clock.increment(99);
  t.equal(g.launches.get('always'), 1, 'not before the back-off');
  g.clock.increment(1);
  t.equal(g.launches.get('always'), 2);
  t.equal(g.stateOf('always'), 'running');
  for (let run = 1; run <= 3; run++) {
    g.exit('twice', 1);
    g.clock.increment(60_000);
  }
  t.equal(g.launches.get('twice'), 3, 'started once and restarted twice');
  t.equal(g.stateOf('twice'), 'exited');
  t.same(g.actor.getSnapshot().context.restarts, { always: 1, twice: 2 });
});

t.test('no restart once the container is stopping', async (t) => {
  const g = guest({ main: session(), always: session({ restart: { name: 'always' } }) });
  g.exit('main', 0);
  g.exit('always', 143);
  g.clock.increment(60_000);
  t.equal(g.launches.get('always'), 1);
});

t.test('the restart decision and its back-off', async (t) => {
  const c = config({ main: session(), e: session({ restart: { name: 'on-failure', maxRetries: 0 } }) });
  t.notOk(shouldRestart(c, 'main', { state: 'exited', exitCode: 1 }, 0), 'never the primary');
  t.notOk(shouldRestart(c, 'e', { state: 'exited', exitCode: 0 }, 0), 'on-failure skips a success');
  t.ok(shouldRestart(c, 'e', { state: 'failed', exitCode: 127 }, 1000), 'on-failure:0 has no limit');
  t.same([0, 1, 2, 10, 20].map(restartDelay), [100, 200, 400, 60_000, 60_000]);
});

t.test('RELOAD starts the sessions it adds and stops those it removes, keeping the rest', async (t) => {
  const g = guest({ main: session(), old: session(), kept: session() });
  g.actor.send({ type: 'RELOAD', config: config({ main: session(), kept: session({ cmd: ['changed'] }), fresh: session() }) });
  t.equal(g.launches.get('fresh'), 1);
  t.same(g.commands.filter((c) => c.sessionId === 'old').map((c) => c.command.type), ['LAUNCH', 'SIGNAL']);
  t.same(g.commands.filter((c) => c.sessionId === 'kept').map((c) => c.command.type), ['LAUNCH'], 'a session in both is left alone');
  t.equal(g.actor.getSnapshot().context.logs.fresh?.end, 0);
  t.same(g.actor.getSnapshot().context.config.sessions.fresh?.cmd, ['x']);
});

t.test("the API's kill reaches the process or its group, and stop uses the stop's own timeout", async (t) => {
  const g = guest({ main: session(), exec1: session() });
  g.actor.send({ type: 'SESSION_KILL', requestId: 'r1', sessionId: 'exec1', signal: 'USR1', group: false });
  g.actor.send({ type: 'SESSION_KILL', requestId: 'r2', sessionId: 'exec1', signal: 'SIGHUP', group: true });
  g.actor.send({ type: 'SESSION_STOP', requestId: 'r3', sessionId: 'exec1', timeout: 1 });
  g.clock.increment(1000);
  t.same(g.commands.filter((c) => c.sessionId === 'exec1').map((c) => c.command).slice(1), [
    { type: 'SIGNAL', signal: 'USR1', target: 'process' },
    { type: 'SIGNAL', signal: 'HUP', target: 'group' },
    { type: 'SIGNAL', signal: 'TERM', target: 'process' },
    { type: 'KILL' },
  ]);
  t.equal(g.stateOf('exec1'), 'exited');
  t.equal(g.actor.getSnapshot().value, 'running', 'an exec ending leaves the container running');
});

t.test('a session stopped on request is never restarted by its policy, as in Docker', async (t) => {
  const g = guest({ main: session(), always: session({ restart: { name: 'always' } }) });
  g.actor.send({ type: 'SESSION_STOP', requestId: 'r1', sessionId: 'always' });
  g.exit('always', 143);
  g.clock.increment(60_000);
  t.equal(g.launches.get('always'), 1);
  t.equal(g.stateOf('always'), 'exited');
});

t.test('a session a reload removed is not restarted, and starts again when a later reload adds it back', async (t) => {
  const g = guest({ main: session(), always: session({ restart: { name: 'always' } }) });
  g.actor.send({ type: 'RELOAD', config: config({ main: session() }) });
  g.exit('always', 143);
  g.clock.increment(60_000);
  t.equal(g.launches.get('always'), 1, 'removed: not restarted');
  g.actor.send({ type: 'RELOAD', config: config({ main: session(), always: session({ cmd: ['y'], restart: { name: 'always' } }) }) });
  t.equal(g.launches.get('always'), 2, 'added back: started again');
  t.same(g.actor.getSnapshot().context.config.sessions.always?.cmd, ['y'], 'with the spec it came back with');
  g.exit('always', 0);
  g.clock.increment(100);
  t.equal(g.launches.get('always'), 3, 'and its policy applies again');
});
