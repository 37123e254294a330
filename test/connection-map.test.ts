import t from 'tap';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { connectionMapMachine, type ConnectionMapEmitted, type LinksCommand } from '../machines/connectionMap.ts';

/** The map with a scripted `links` actor (the links are other code) and a simulated clock. */
function harness() {
  const clock = new SimulatedClock();
  const commands: LinksCommand[] = [];
  const outcomes: ConnectionMapEmitted[] = [];
  const machine = connectionMapMachine.provide({
    actors: { links: fromCallback<LinksCommand>(({ receive }) => receive((c) => commands.push(c))) },
  });
  const actor = createActor(machine, { clock, input: { pingTimeoutMs: 100 } });
  actor.on('*', (e) => outcomes.push(e as ConnectionMapEmitted));
  actor.start();
  const at = '2026-01-01T00:00:00Z';
  return {
    actor, clock, commands, outcomes,
    /** A link of `vm` comes up with `assigned` its (by default, what it reports) and reports `ids`. */
    up: (linkId: string, vm: string, ids: string[], assigned: string[] = ids) => {
      actor.send({ type: 'LINK_UP', linkId, vm, assigned, at });
      actor.send({ type: 'LINK_IDS', linkId, ids });
    },
    down: (linkId: string, reason = 'connection reset') => actor.send({ type: 'LINK_DOWN', linkId, reason, at }),
    lookup: (requestId: string, containerId: string, timeoutMs = 1000) => actor.send({ type: 'LOOKUP', requestId, containerId, timeoutMs }),
  };
}

t.test('a lookup of an unknown ID fails at once naming the ID and the links', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.lookup('r1', 'nope');
  t.equal(h.outcomes.length, 1);
  t.match(h.outcomes[0], { type: 'FAILED', requestId: 'r1', reason: 'unknown', message: /container nope.*1 link up, 0 down/ });
});

t.test('a cached entry is handed out only after a liveness check answers', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.lookup('r1', 'c1');
  t.same(h.commands, [{ type: 'PING', linkId: 'L1', containerId: 'c1' }]);
  t.same(h.outcomes, [], 'not resolved before the check');
  h.actor.send({ type: 'PING_REPLY', linkId: 'L1', containerId: 'c1', ids: ['c1'] });
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'c1', linkId: 'L1' }]);
});

t.test('concurrent lookups of one ID share one liveness check', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.lookup('r1', 'c1');
  h.lookup('r2', 'c1');
  h.lookup('r3', 'c1');
  t.equal(h.commands.filter((c) => c.type === 'PING').length, 1);
  h.actor.send({ type: 'PING_REPLY', linkId: 'L1', containerId: 'c1', ids: ['c1'] });
  t.same(h.outcomes.map((o) => o.requestId).sort(), ['r1', 'r2', 'r3']);
  t.ok(h.outcomes.every((o) => o.type === 'RESOLVED'));
});

t.test('a failed liveness check drops the link and the waiter is served by the next connection', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.lookup('r1', 'c1');
  h.clock.increment(100);
  t.same(h.commands[1], { type: 'DROP', linkId: 'L1', reason: 'liveness check got no answer in 100 ms' });
  t.same(h.outcomes, [], 'the waiter keeps waiting');
  h.up('L2', 'vm-a', ['c1']);
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'c1', linkId: 'L2' }]);
});

t.test('waiters survive a reconnect: IDs of a dead link are dropped and the new link serves them', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1', 'e1']);
  h.down('L1');
  h.lookup('r1', 'c1');
  h.lookup('r2', 'e1');
  t.same(h.commands, [], 'no check on a dead link');
  t.same(h.outcomes, []);
  h.up('L2', 'vm-a', ['c1', 'e1']);
  t.same(h.outcomes.map((o) => [o.type, o.requestId, (o as { linkId?: string }).linkId]), [
    ['RESOLVED', 'r1', 'L2'],
    ['RESOLVED', 'r2', 'L2'],
  ]);
});

t.test('a waiter whose deadline passes gets an error saying what it waited for', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1', 'serial connection closed');
  h.lookup('r1', 'c1', 500);
  h.clock.increment(499);
  t.same(h.outcomes, []);
  h.clock.increment(1);
  t.equal(h.outcomes.length, 1);
  t.match(h.outcomes[0], {
    type: 'FAILED',
    reason: 'deadline',
    message: /waited 500 ms for a connection carrying container c1: containerVM vm-a last reported it; link L1 down: serial connection closed/,
  });
});

t.test('a served waiter never fails later when its deadline passes', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1');
  h.lookup('r1', 'c1', 500);
  h.up('L2', 'vm-a', ['c1']);
  h.clock.increment(1000);
  t.same(h.outcomes.map((o) => o.type), ['RESOLVED']);
});

t.test('one ID maps to one live link: the newest report wins', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.up('L2', 'vm-a', ['c1']);
  const { owner, links } = h.actor.getSnapshot().context;
  t.equal(owner.c1, 'L2');
  t.same(links.L1!.ids, []);
});

t.test('an ID no longer reported (an exited container) is served by its containerVM\'s live link', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1', 'e1']);
  h.actor.send({ type: 'LINK_IDS', linkId: 'L1', ids: ['c1'] });
  h.lookup('r1', 'e1');
  t.same(h.commands, [{ type: 'PING', linkId: 'L1', containerId: 'e1' }], 'the link is checked');
  h.actor.send({ type: 'PING_REPLY', linkId: 'L1', containerId: 'e1', ids: ['c1'] });
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'e1', linkId: 'L1' }]);
});

t.test('a container that exited before its containerVM\'s link came up is served by that link, which knows it from its info', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', [], ['e1']);
  h.actor.send({ type: 'LINK_INFO', linkId: 'L1', containers: [{ id: 'e1' }] });
  h.lookup('r1', 'e1');
  t.same(h.commands, [{ type: 'PING', linkId: 'L1', containerId: 'e1' }], 'the link is checked');
  h.actor.send({ type: 'PING_REPLY', linkId: 'L1', containerId: 'e1', ids: [] });
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'e1', linkId: 'L1' }]);
});

t.test('a waiter is served when its container shows up only in a link\'s info, and an unassigned one never counts', async (t) => {
  const h = harness();
  h.lookup('r0', 'e1');
  t.match(h.outcomes, [{ type: 'FAILED', reason: 'unknown' }], 'before any report, e1 is unknown');
  h.up('L1', 'vm-a', [], ['e1']);
  h.actor.send({ type: 'LINK_INFO', linkId: 'L1', containers: [{ id: 'e1' }] });
  h.down('L1');
  h.lookup('r1', 'e1');
  h.up('L2', 'vm-a', [], ['e1']);
  t.same(h.outcomes.slice(1), [{ type: 'RESOLVED', requestId: 'r1', containerId: 'e1', linkId: 'L2' }], 'e1, known from L1, is served by L2');
  h.up('L3', 'vm-b', [], ['x1']);
  h.actor.send({ type: 'LINK_INFO', linkId: 'L3', containers: [{ id: 'e1' }, { id: 'x1' }] });
  t.equal(h.actor.getSnapshot().context.lastSeen.e1, 'vm-a', 'vm-b was never assigned e1');
  t.equal(h.actor.getSnapshot().context.lastSeen.x1, 'vm-b');
});

t.test('a waiter for an exited container is served by the next link of its containerVM', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1');
  h.lookup('r1', 'c1');
  h.up('L2', 'vm-a', []);
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'c1', linkId: 'L2' }]);
});

t.test('a cancelled lookup is never answered', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1');
  h.lookup('r1', 'c1', 500);
  h.actor.send({ type: 'CANCEL', requestId: 'r1' });
  h.up('L2', 'vm-a', ['c1']);
  h.clock.increment(1000);
  t.same(h.outcomes, []);
});

t.test('a link never carries an ID not assigned to its containerVM: an impostor reporting another VM\'s container is not routed to', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.up('L2', 'vm-b', ['imp', 'c1'], ['imp']);
  const { owner, links, lastSeen } = h.actor.getSnapshot().context;
  t.equal(owner.c1, 'L1', 'c1 stays on its own containerVM\'s link');
  t.same(links.L2!.ids, ['imp'], 'the impostor\'s link carries only its own');
  t.equal(lastSeen.c1, 'vm-a');
  h.lookup('r1', 'c1');
  t.same(h.commands, [{ type: 'PING', linkId: 'L1', containerId: 'c1' }], 'the lookup checks the real link');
});

t.test('an impostor\'s liveness reply claims nothing it was not assigned', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.up('L2', 'vm-b', ['imp']);
  h.lookup('r1', 'imp');
  h.actor.send({ type: 'PING_REPLY', linkId: 'L2', containerId: 'imp', ids: ['imp', 'c1'] });
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'imp', linkId: 'L2' }]);
  t.equal(h.actor.getSnapshot().context.owner.c1, 'L1');
});

t.test('a waiter for a container whose link is down is served by its own containerVM\'s next link, never by an impostor\'s', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1');
  h.lookup('r1', 'c1');
  h.up('L2', 'vm-b', ['imp', 'c1'], ['imp']);
  t.same(h.outcomes, [], 'the impostor\'s report serves nobody');
  h.up('L3', 'vm-a', ['c1']);
  t.same(h.outcomes, [{ type: 'RESOLVED', requestId: 'r1', containerId: 'c1', linkId: 'L3' }]);
});

t.test('an exec session the appliance assigned to a containerVM is carried by its link', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.actor.send({ type: 'LINK_IDS', linkId: 'L1', ids: ['c1', 'exec-1'] });
  t.equal(h.actor.getSnapshot().context.owner['exec-1'], undefined, 'not before it was assigned');
  h.actor.send({ type: 'ASSIGN', vm: 'vm-a', ids: ['exec-1'] });
  h.actor.send({ type: 'LINK_IDS', linkId: 'L1', ids: ['c1', 'exec-1'] });
  t.equal(h.actor.getSnapshot().context.owner['exec-1'], 'L1');
});

t.test('a containerVM that connects with an ID the map had for another VM holds it from then on (the trust store gave it anew)', async (t) => {
  const h = harness();
  h.up('L1', 'vm-a', ['c1']);
  h.down('L1');
  h.up('L2', 'vm-b', ['c1']);
  const { owner, assigned } = h.actor.getSnapshot().context;
  t.equal(owner.c1, 'L2');
  t.same(assigned, { 'vm-b': ['c1'] }, 'vm-a holds it no more');
});
