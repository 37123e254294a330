import t from 'tap';
import { assign, createActor, createMachine, setup, type AnyActorRef } from 'xstate';
import { reportActorStates } from '../guest/stateReports.ts';
import { watchActorStates } from '../shared/actorStates.ts';
import type { ActorState } from '../shared/wire.ts';

// How an actor system's states are read: the watcher (both sides), and the
// guest's reports, which must stay cheap while its output flows.

/** A child machine that finishes on NEXT, invoked by its parent while `working`; TICK changes only the parent's context. */
const child = createMachine({ id: 'child', initial: 'a', states: { a: { on: { NEXT: 'b' } }, b: { type: 'final' } } });
const parent = setup({ actors: { child } }).createMachine({
  id: 'parent',
  context: { ticks: 0 },
  initial: 'idle',
  on: { TICK: { actions: assign({ ticks: ({ context }) => context.ticks + 1 }) } },
  states: {
    idle: { on: { GO: 'working' } },
    working: { invoke: { id: 'worker', src: 'child', onDone: 'idle' } },
  },
});

const worker = (actor: AnyActorRef) => (actor.getSnapshot() as { children: Record<string, AnyActorRef> }).children.worker!;
const line = (s: ActorState) => `${['root', ...s.path].join('/')} ${s.machine} ${JSON.stringify(s.state)} ${s.status}${s.event ? ` after ${s.event}` : ''}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('the watcher reports every live machine actor at once, then each state processed; a child its parent drops is reported stopped once', async (t) => {
  const actor = createActor(parent).start();
  actor.send({ type: 'GO' });
  const seen: string[] = [];
  const unwatch = watchActorStates(actor, (s) => seen.push(line(s)));
  t.same(seen, ['root parent "working" active', 'root/worker child "a" active'], 'the live actors, as they are, without events');
  seen.length = 0;
  actor.send({ type: 'TICK' });
  worker(actor).send({ type: 'NEXT' });
  unwatch();
  actor.send({ type: 'GO' });
  // The parent drops its finished child before xstate reports the child's done state: stopped says it all.
  t.same(seen, [
    'root parent "working" active after TICK',
    'root parent "idle" active after xstate.done.actor.worker',
    'root/worker child "b" stopped after xstate.done.actor.worker',
  ], 'a context change is a state processed; the dropped child is stopped; nothing after unwatching');
});

t.test('the guest reports only changes of state value or status, the latest per actor, at most once per interval', async (t) => {
  const actor = createActor(parent).start();
  const pushes: string[][] = [];
  const stop = reportActorStates(actor, (states) => pushes.push(states.map(line)), 30);
  await sleep(60);
  t.same(pushes, [['root parent "idle" active']], 'first everything, in one push');

  for (let i = 0; i < 1000; i++) actor.send({ type: 'TICK' });
  await sleep(60);
  t.equal(pushes.length, 1, 'a thousand context changes (the output path) push nothing');

  actor.send({ type: 'GO' });
  worker(actor).send({ type: 'NEXT' });
  actor.send({ type: 'GO' });
  await sleep(60);
  t.same(pushes.slice(1), [['root/worker child "a" active after xstate.init', 'root parent "working" active after GO']],
    'working, the worker done, idle, working again with a new worker, all within one interval: one push of how things are now');

  actor.send({ type: 'GO' });
  actor.send({ type: 'TICK' });
  stop();
  await sleep(60);
  t.equal(pushes.length, 2, 'nothing after it was stopped');
});

t.test('an actor back in the state last pushed, or one that came and went between pushes, is not pushed', async (t) => {
  const actor = createActor(parent).start();
  const pushes: string[][] = [];
  const stop = reportActorStates(actor, (states) => pushes.push(states.map(line)), 30);
  t.teardown(stop);
  await sleep(50);
  actor.send({ type: 'GO' });
  worker(actor).send({ type: 'NEXT' });
  await sleep(50);
  actor.send({ type: 'TICK' });
  await sleep(50);
  t.same(pushes, [['root parent "idle" active']], 'idle, working, idle: nothing new to tell');
});

t.test('pushes are at least one interval apart, however often states change', async (t) => {
  const actor = createActor(parent).start();
  const at: number[] = [];
  const stop = reportActorStates(actor, () => at.push(performance.now()), 30);
  t.teardown(stop);
  // States change every 2 ms until three pushes are seen (however slow a loaded machine makes the timers), or for 5 s at most.
  const until = performance.now() + 5_000;
  for (let i = 0; at.length < 3 && performance.now() < until; i++) {
    if (i % 2 === 0) actor.send({ type: 'GO' });
    else worker(actor).send({ type: 'NEXT' });
    await sleep(2);
  }
  const gaps = at.slice(1).map((time, i) => Math.round(time - at[i]!));
  t.ok(at.length >= 2, `it pushed while states changed (${at.length} pushes)`);
  // A timer's millisecond clock and performance.now() may disagree by a millisecond or two.
  t.ok(gaps.every((gap) => gap >= 28), `gaps of about 30 ms or more: ${gaps.join(', ')}`);
});
