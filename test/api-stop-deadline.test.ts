import t from 'tap';
import { controlRoutes } from '../appliance/api/control.ts';
import type { ContainerControl, ContainerDirectory, ContainerRecord } from '../appliance/api/directory.ts';
import { ApiError } from '../appliance/api/errors.ts';
import { createRouter } from '../appliance/api/router.ts';
import { DEFAULT_STOP_TIMEOUT } from '../shared/config.ts';
import { MAX_STOP_TIMEOUT } from '../shared/wire.ts';
import { KILL_GRACE_SECONDS, realTimer, type Timer } from '../appliance/api/stopDeadline.ts';

// The deadline of `POST /containers/{id}/stop` where it is decided. No test
// process can be made unkillable honestly (SIGSTOP, the freezer and ptrace
// all give way to SIGKILL; D state needs a misbehaving kernel or device), so
// the stop that never ends is a stand-in's and the clock is the test's.

/** A stop that settles when the test says, and a timer that fires when the test says. */
function harness() {
  let settle!: { resolve(outcome: 'stopped' | 'not-running'): void; reject(error: unknown): void };
  const asked: Array<{ id: string; options: unknown }> = [];
  const control: ContainerControl & Pick<ContainerDirectory, 'find'> = {
    // Its guest reports a stop timeout of 7 s for `web`; `old` is from a guest too old to report one.
    find: (ref) => (ref === 'web' ? ({ stopTimeout: 7 } as ContainerRecord) : undefined),
    kill: async () => {},
    exec: async () => {
      throw new Error('not used');
    },
    stop: (id, options) => {
      asked.push({ id, options });
      return new Promise((resolve, reject) => (settle = { resolve, reject }));
    },
  };
  const timers: Array<{ ms: number; cancelled: boolean; fire(): void }> = [];
  const timer: Timer = (ms) => {
    let fire!: () => void;
    const elapsed = new Promise<void>((resolve) => (fire = resolve));
    const entry = { ms, cancelled: false, fire };
    timers.push(entry);
    return { elapsed, cancel: () => (entry.cancelled = true) };
  };
  const route = createRouter(controlRoutes(control, timer));
  const stop = (path: string) => {
    const { handler, request } = route('POST', path);
    return Promise.resolve(handler(request));
  };
  return { stop, settle: () => settle, asked, timers };
}

t.test('a stop whose exit is not reported within t plus the grace fails with 500 naming the container, what was awaited and how long', async (t) => {
  const h = harness();
  const answer = h.stop('/containers/web/stop?t=3');
  t.same(h.asked, [{ id: 'web', options: { timeout: 3 } }]);
  t.same(h.timers.map((timer) => timer.ms), [(3 + KILL_GRACE_SECONDS) * 1000], 'the deadline is the stop timeout plus the grace');
  h.timers[0]!.fire();
  await t.rejects(answer, {
    status: 500,
    message:
      'cannot stop container: web: tried to kill container, but did not receive an exit event ' +
      `(waited ${3 + KILL_GRACE_SECONDS} s for its guest to report the exit: the 3 s stop timeout, then ${KILL_GRACE_SECONDS} s after SIGKILL)`,
  });
  // The stop ending after the answer went out is harmless.
  h.settle().reject(new ApiError(504, 'link went down'));
});

t.test('a stop that ends before its deadline answers 204 and calls the deadline off', async (t) => {
  const h = harness();
  const answer = h.stop('/containers/web/stop?t=0&signal=SIGINT');
  h.settle().resolve('stopped');
  t.match(await answer, { kind: 'full', status: 204 });
  t.same(h.asked, [{ id: 'web', options: { timeout: 0, signal: 'INT' } }]);
  t.equal(h.timers.length, 1);
  t.equal(h.timers[0]!.cancelled, true);
});

t.test("a stop that fails before its deadline answers with the stop's own error", async (t) => {
  const h = harness();
  const answer = h.stop('/containers/gone/stop?t=1');
  h.settle().reject(new ApiError(404, 'No such container: gone'));
  await t.rejects(answer, { status: 404, message: 'No such container: gone' });
  t.equal(h.timers[0]!.cancelled, true);
});

t.test("a stop without t has the deadline of the container's own stop timeout, as its guest reports it", async (t) => {
  const h = harness();
  const answer = h.stop('/containers/web/stop');
  t.same(h.asked, [{ id: 'web', options: {} }], 'the guest applies its own timeout');
  t.same(h.timers.map((timer) => timer.ms), [(7 + KILL_GRACE_SECONDS) * 1000]);
  h.settle().resolve('not-running');
  t.match(await answer, { kind: 'full', status: 304 });
});

t.test('a guest too old to report its stop timeout is taken to have the default', async (t) => {
  const h = harness();
  const answer = h.stop('/containers/old/stop');
  t.same(h.timers.map((timer) => timer.ms), [(DEFAULT_STOP_TIMEOUT + KILL_GRACE_SECONDS) * 1000]);
  h.settle().resolve('stopped');
  t.match(await answer, { kind: 'full', status: 204 });
});

t.test("the real timer holds a deadline past setTimeout's 24.8-day limit (the longest stop timeout plus the grace)", async (t) => {
  // setTimeout turns a longer delay into 1 ms, which would fire before this 20 ms one.
  const deadline = realTimer((MAX_STOP_TIMEOUT + KILL_GRACE_SECONDS) * 1000);
  let fired = false;
  void deadline.elapsed.then(() => (fired = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(fired, false);
  deadline.cancel();
});
