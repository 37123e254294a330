import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createActor, fromPromise, SimulatedClock, waitFor } from 'xstate';
import { reaperMachine, type PassResult } from '../machines/reaper.ts';

// The reaper as the PID-1 inits (tini, dumb-init, catatonit) test theirs:
// for real, as PID 1 of a fresh PID namespace (test/fixtures/reaper/init.ts),
// plus the machine alone.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/reaper/init.ts', import.meta.url));

/** Why a PID namespace cannot be made here, or false when it can. */
function namespaceMissing(): string | false {
  if (process.getuid?.() !== 0) return `a PID namespace needs root; this runs as uid ${process.getuid?.()}`;
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', '--', 'true'], { encoding: 'utf8' });
  if (probe.error) return `unshare (util-linux) cannot be run: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare --pid --fork --mount-proc failed: ${probe.stderr.trim()}`;
  return false;
}
const skip = namespaceMissing();
if (skip) console.error(`# SKIP reaper tests as PID 1: ${skip}`);

/** Runs the fixture as PID 1 of a new PID namespace and returns what it printed. */
function asInit(scenario: string, ...flags: string[]): Promise<Record<string, any>> {
  const args = ['--pid', '--fork', '--mount-proc', '--kill-child', '--', process.execPath, '--import', 'tsx', FIXTURE, scenario, ...flags];
  return new Promise((resolve, reject) => {
    execFile('unshare', args, { cwd: ROOT, timeout: 270_000, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let result: Record<string, any>;
      try {
        result = JSON.parse(last);
      } catch {
        reject(new Error(`${scenario}: no result from the init (${err?.message ?? 'exited 0'}); stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-2000)}`));
        return;
      }
      if (result.error) reject(new Error(`${scenario} failed in the init: ${result.error}; stderr: ${stderr.slice(-2000)}`));
      else resolve(result);
    });
  });
}

const REST_MS = 10;

t.test('the machine alone', async (t) => {
  /** A pass actor whose passes the test ends by hand, in the order they started. */
  function handPasses() {
    const started: { resolve(result: PassResult): void; reject(error: Error): void }[] = [];
    const pass = fromPromise<PassResult>(() => new Promise((resolve, reject) => started.push({ resolve, reject })));
    // The rest is a delay: on a simulated clock it ends only when the test says.
    const clock = new SimulatedClock();
    const actor = createActor(reaperMachine.provide({ actors: { pass } }), { input: { restMs: REST_MS }, clock });
    actor.start();
    const reached = (ended: number, state: 'idle' | 'reaping' | 'resting') =>
      waitFor(actor, (snapshot) => snapshot.context.passes === ended && snapshot.matches(state), { timeout: 2_000 });
    /** Resting once `ended` passes have ended. */
    const inRest = (ended: number) => reached(ended, 'resting');
    /** Lets that rest run out, then how many passes have started once the machine is in `state`. */
    const startedOnce = async (ended: number, state: 'idle' | 'reaping') => {
      await inRest(ended);
      clock.increment(REST_MS);
      await reached(ended, state);
      return started.length;
    };
    return { actor, started, inRest, startedOnce };
  }
  const passed = (reaped: number, remaining: number, cutShort = false): PassResult => ({
    reaped: Array.from({ length: reaped }, (_, i) => ({ pid: 100 + i, exitCode: 0 })),
    remaining,
    cutShort,
  });

  t.test('a SIGCHLD that arrives during a pass is followed by another pass', async (t) => {
    const { actor, started, startedOnce } = handPasses();
    actor.send({ type: 'SIGCHLD' });
    t.equal(started.length, 1, 'a SIGCHLD while idle starts a pass');
    actor.send({ type: 'SIGCHLD' });
    actor.send({ type: 'SIGCHLD' });
    t.equal(started.length, 1, 'signals during a pass start nothing at once');
    started[0]!.resolve(passed(1, 3));
    t.equal(await startedOnce(1, 'reaping'), 2, 'the signals that came during the first pass brought one more');
    started[1]!.resolve(passed(2, 0));
    t.equal(await startedOnce(2, 'idle'), 2, 'and only one: no third pass without a signal');
    t.match(actor.getSnapshot().context, { children: 0, reaped: 3, passes: 2 }, 'the last count and the total reaped');
    actor.stop();
  });

  t.test('a pass with no signal during it is not followed by another', async (t) => {
    const { actor, started, startedOnce } = handPasses();
    actor.send({ type: 'SIGCHLD' });
    started[0]!.resolve(passed(1, 0));
    t.equal(await startedOnce(1, 'idle'), 1);
    actor.stop();
  });

  t.test('a SIGCHLD during the rest after a pass is followed by another pass', async (t) => {
    const { actor, started, inRest, startedOnce } = handPasses();
    actor.send({ type: 'RECOUNT' });
    started[0]!.resolve(passed(0, 1));
    await inRest(1);
    actor.send({ type: 'SIGCHLD' });
    t.equal(started.length, 1, 'nothing at once: the rest runs its course');
    t.equal(await startedOnce(1, 'reaping'), 2);
    actor.stop();
  });

  t.test('a pass cut short at its budget is followed by another', async (t) => {
    const { actor, started, startedOnce } = handPasses();
    actor.send({ type: 'RECOUNT' });
    started[0]!.resolve(passed(1000, 5, true));
    t.equal(await startedOnce(1, 'reaping'), 2);
    actor.stop();
  });

  t.test('a failed pass is recorded, and the next signal starts a pass again', async (t) => {
    const { actor, started, startedOnce } = handPasses();
    actor.send({ type: 'SIGCHLD' });
    started[0]!.reject(new Error('waitpid(12, WNOHANG) failed: EINVAL'));
    t.equal(await startedOnce(1, 'idle'), 1);
    t.equal(actor.getSnapshot().context.error, 'waitpid(12, WNOHANG) failed: EINVAL');
    actor.send({ type: 'SIGCHLD' });
    t.equal(started.length, 2);
    started[1]!.resolve(passed(0, 0));
    await startedOnce(2, 'idle');
    t.equal(actor.getSnapshot().context.error, undefined, 'cleared by the next pass that succeeds');
    actor.stop();
  });

  t.test('each successful pass is announced with what it reaped', async (t) => {
    const { actor, started, startedOnce } = handPasses();
    const seen: unknown[] = [];
    actor.on('PASSED', (event) => seen.push(event));
    actor.send({ type: 'SIGCHLD' });
    started[0]!.resolve({ reaped: [{ pid: 7, exitCode: 127 }, { pid: 8, signal: 9 }], remaining: 1, cutShort: false });
    await startedOnce(1, 'idle');
    t.same(seen, [{ type: 'PASSED', reaped: [{ pid: 7, exitCode: 127 }, { pid: 8, signal: 9 }], remaining: 1 }]);
    actor.stop();
  });
});

t.test('as PID 1 of a PID namespace', { skip }, async (t) => {
  t.test('an orphan storm of 10,000 leaves no zombie in the namespace', async (t) => {
    const result = await asInit('storm');
    t.equal(result.stormExit, 0, "the storm's shell ran to its end");
    t.equal(result.zombies, 0, 'no zombie left');
    t.equal(result.reaped, 10_000, 'every orphan reaped by the reaper');
    t.equal(result.noChildren, true, 'the init was told it has no children left');
    t.comment(`storm ${Math.round(result.stormMs)} ms, ${result.passes} passes, init CPU ${Math.round(result.initCpuMs)} ms`);
  });

  t.test('with reaping switched off the same storm leaves zombies (the zombie count can fail)', async (t) => {
    const result = await asInit('storm', '--no-reap');
    t.equal(result.stormExit, 0);
    t.ok(result.zombies > 0, `zombies found: ${result.zombies}`);
  });

  t.test('1,000 concurrent child_process children during an orphan storm each report their own exit code', async (t) => {
    const result = await asInit('spawns');
    t.equal(result.spawned, 1000);
    t.equal(result.wrongCount, 0, `children with a lost or wrong exit code, the first ones: ${JSON.stringify(result.wrong)}`);
    t.equal(result.stormExit, 0, "the storm's own exit callback fired too");
    t.equal(result.noChildren, true);
    t.equal(result.zombies, 0);
  });

  t.test("catatonit's coalesced-SIGCHLD reproducer, round after round, never hangs the init", async (t) => {
    const result = await asInit('coalesce');
    t.same(result.failures, [], 'every round: the main child reported, no child left');
    t.ok(result.signals < result.childrenEnded, `signals did coalesce: ${result.signals} SIGCHLDs for ${result.childrenEnded} children ended`);
    t.equal(result.zombies, 0);
  });

  t.test('a child exiting 127 never hangs the init, and an orphan exiting 127 is reported as such', async (t) => {
    const result = await asInit('exit127');
    t.equal(result.main, 127, "the child's exit callback got 127");
    t.equal(result.notFound, 127, 'a command not found: 127 too');
    t.same(result.orphan, { pid: result.orphan?.pid, exitCode: 127 }, 'the reaper reaped the orphan and read 127');
    t.equal(result.noChildren, true);
    t.equal(result.zombies, 0);
  });

  t.test('node-pty children claimed with claimChild keep their exit codes during an orphan storm', async (t) => {
    const result = await asInit('pty');
    t.same(result.codes, Array.from({ length: 20 }, (_, i) => i + 1));
    t.same(result.reapedByReaper, [], 'the reaper reaped none of them');
    t.equal(result.noChildren, true);
    t.equal(result.zombies, 0);
  });

  t.test('a claimed zombie is left to its owner while the zombies behind it are reaped, and is reaped once released', async (t) => {
    const result = await asInit('claims');
    t.equal(result.becameZombie, true, 'the claimed orphan ended');
    t.equal(result.othersReaped, true, 'the orphans that ended after it were reaped');
    t.same(result.whileClaimed, { state: 'Z', zombies: 1, reapedByReaper: false }, 'while claimed it stays a zombie, the only one');
    t.match(result.afterRelease, { exitCode: 0 }, 'released, the reaper reaps it');
    t.equal(result.noChildren, true);
    t.equal(result.zombies, 0);
  });
});
