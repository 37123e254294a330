import t from 'tap';
import { assign, setup } from 'xstate';
import { canonical } from '../tools/check/canonical.ts';
import { LiveSystem } from '../tools/check/runtime.ts';
import { simulated } from '../tools/check/sim.ts';

// The checker keeps states as persisted snapshots and restores a system to
// take a step. These tests pin what that relies on in xstate (its scheduler
// and persistence): a restored system behaves as the one it was taken from,
// pending timers survive, and a re-armed timer is due from the time it was set.

const posts: unknown[] = [];
const echo = simulated<{ heard: number }, unknown, string>(
  { post: (item) => posts.push(item) },
  {
    init: () => ({ heard: 0 }),
    start: (s, io) => {
      io.post('started');
      return s;
    },
    receive: (s, event, io) => {
      if (event.type === 'PING') io.toParent({ type: 'PONG' });
      return { heard: s.heard + 1 };
    },
  },
);

const machine = setup({
  types: { context: {} as { pongs: number }, events: {} as { type: 'GO' } | { type: 'PONG' } | { type: 'AGAIN' } },
  actors: { echo },
  delays: { wait: 100 },
}).createMachine({
  context: { pongs: 0 },
  invoke: { id: 'echo', src: 'echo' },
  initial: 'idle',
  on: { PONG: { actions: assign({ pongs: ({ context }) => context.pongs + 1 }) } },
  states: {
    idle: { on: { GO: 'waiting' } },
    waiting: {
      after: { wait: 'done' },
      on: { AGAIN: { target: 'waiting', reenter: true } },
    },
    done: {},
  },
});

const logic = machine;

t.test('a restored system continues exactly as the one it was persisted from', async (t) => {
  posts.length = 0;
  const original = new LiveSystem(logic, undefined, 0, { input: undefined });
  t.same(posts, ['started'], 'a simulation starts once');
  original.send('echo', { type: 'PING' });
  const saved = original.persist();
  const restored = new LiveSystem(logic, saved, 0, {});
  t.same(posts, ['started'], 'and not again when restored');
  for (const live of [original, restored]) {
    live.send('echo', { type: 'PING' });
    live.send('', { type: 'GO' });
  }
  t.equal(canonical(restored.persist().snapshot), canonical(original.persist().snapshot));
  t.same((restored.persist().snapshot as { context: unknown }).context, { pongs: 2 });
});

t.test('a pending timer survives a restore and fires as a step', async (t) => {
  const live = new LiveSystem(logic, undefined, 0, {});
  live.send('', { type: 'GO' });
  const saved = live.persist();
  t.match(saved.timers, [{ source: '', id: /wait/, delay: 100, due: 100 }]);
  const restored = new LiveSystem(logic, saved, 50, {});
  t.same(restored.persist().timers, saved.timers, 'restored with its due time, not re-armed');
  t.ok(restored.fire('', saved.timers[0]!.id));
  const after = restored.persist();
  t.equal((after.snapshot as { value: unknown }).value, 'done');
  t.same(after.timers, []);
  t.notOk(restored.fire('', saved.timers[0]!.id), 'a fired timer is gone');
});

t.test('a state re-entered re-arms its timer from the time of the step', async (t) => {
  const live = new LiveSystem(logic, undefined, 0, {});
  live.send('', { type: 'GO' });
  const restored = new LiveSystem(logic, live.persist(), 70, {});
  restored.send('', { type: 'AGAIN' });
  t.match(restored.persist().timers, [{ due: 170 }]);
});

t.test('actors are found by their path of ids', async (t) => {
  const live = new LiveSystem(logic, undefined, 0, {});
  t.equal(live.find(''), live.root);
  t.equal(live.find('echo')?.id, 'echo');
  t.equal(live.find('echo/nothing'), undefined);
  t.notOk(live.send('missing', { type: 'PING' }), 'sending to nobody says so');
});
