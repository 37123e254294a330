import t from 'tap';
import { createActor, fromCallback, type EventObject } from 'xstate';
import { applianceMachine, type ApplianceEmitted } from '../machines/appliance.ts';
import type { GuestCommand } from '../machines/sshSession.ts';
import type { ContainerInfo } from '../shared/wire.ts';

// The appliance machine's side of "a guest is untrusted": its inventory and
// its commands keep to the containers assigned to each link's containerVM.

const info = (id: string, state: ContainerInfo['state'] = 'running'): ContainerInfo => ({ id, name: id, cmd: ['sh'], tty: false, openStdin: false, primary: true, state });

/** The appliance with two links (link1 of vm-a, holding c1; link2 of vm-b, holding imp), whose links and map only record what they get. */
function appliance() {
  let accept!: (handle: string) => void;
  const listener = fromCallback(({ sendBack }) => void (accept = (handle) => sendBack({ type: 'CONNECTION_ACCEPTED', handle, remote: 'test' })));
  const carried: Array<EventObject & { link: string }> = [];
  const link = fromCallback<EventObject, { linkId: string }>(({ receive, input }) => receive((e) => carried.push({ ...e, link: input.linkId })));
  const toMap: EventObject[] = [];
  const map = fromCallback(({ receive }) => receive((e) => toMap.push(e)));
  // Stand-ins for machines: xstate types a machine slot as that machine, any logic runs in it.
  const actor = createActor(applianceMachine.provide({ actors: { listener, link: link as never, connectionMap: map as never } }), { input: { seed: 1 } });
  const emitted: ApplianceEmitted[] = [];
  actor.on('*', (e) => emitted.push(e as ApplianceEmitted));
  actor.start();
  accept('tcp#1');
  accept('tcp#2');
  actor.send({ type: 'LINK_UP', linkId: 'link1', vm: 'vm-a', assigned: ['c1'], at: 'T' });
  actor.send({ type: 'LINK_UP', linkId: 'link2', vm: 'vm-b', assigned: ['imp'], at: 'T' });
  return { actor, carried, toMap, emitted, containers: () => actor.getSnapshot().context.containers };
}

t.test('the inventory takes from a guest only its own containerVM\'s containers; another VM\'s container it reports is refused and announced', async (t) => {
  const a = appliance();
  a.actor.send({ type: 'LINK_INFO', linkId: 'link1', vm: 'vm-a', containers: [info('c1')] });
  a.actor.send({ type: 'LINK_INFO', linkId: 'link2', vm: 'vm-b', containers: [info('imp'), info('c1', 'exited')] });
  t.match(a.containers(), { c1: { vm: 'vm-a', linkId: 'link1', info: { state: 'running' } }, imp: { vm: 'vm-b', linkId: 'link2' } });
  t.same(a.emitted, [{ type: 'GUEST_REFUSED', linkId: 'link2', vm: 'vm-b', report: 'container-info', containerIds: ['c1'] }]);
});

t.test('a container an impostor reports first is not listed, and its own VM\'s report is', async (t) => {
  const a = appliance();
  a.actor.send({ type: 'LINK_INFO', linkId: 'link2', vm: 'vm-b', containers: [info('c1')] });
  t.same(Object.keys(a.containers()), []);
  a.actor.send({ type: 'LINK_INFO', linkId: 'link1', vm: 'vm-a', containers: [info('c1')] });
  t.match(a.containers(), { c1: { vm: 'vm-a' } });
});

t.test('a container-ids report naming another VM\'s container is announced, and handed to the connection map, which decides the routing', async (t) => {
  const a = appliance();
  a.actor.send({ type: 'LINK_IDS', linkId: 'link2', ids: ['imp', 'c1'] });
  t.same(a.emitted, [{ type: 'GUEST_REFUSED', linkId: 'link2', vm: 'vm-b', report: 'container-ids', containerIds: ['c1'] }]);
  t.same(a.toMap.at(-1), { type: 'LINK_IDS', linkId: 'link2', ids: ['imp', 'c1'] });
});

t.test('a command is never carried to a link whose containerVM does not hold its container', async (t) => {
  const a = appliance();
  const stop: GuestCommand = { kind: 'stop', containerId: 'c1' };
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r1', linkId: 'link2', command: stop });
  t.same(a.carried, []);
  t.same(a.emitted, [
    { type: 'COMMAND_DONE', requestId: 'r1', result: { ok: false, failure: { kind: 'refused', message: 'stop c1: container c1 is not assigned to containerVM vm-b (link link2)' } } },
  ]);
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r2', linkId: 'link1', command: stop });
  t.same(a.carried, [{ type: 'GUEST_COMMAND', requestId: 'r2', command: stop, link: 'link1' }]);
});

t.test('an exec assigns its session to the containerVM it starts on: listed from then on, and the connection map is told', async (t) => {
  const a = appliance();
  a.actor.send({ type: 'LINK_INFO', linkId: 'link1', vm: 'vm-a', containers: [info('exec-1')] });
  t.same(Object.keys(a.containers()), [], 'not before the appliance started it');
  const exec: GuestCommand = { kind: 'exec', containerId: 'c1', sessionId: 'exec-1', spec: { cmd: ['sh'], env: [], cwd: '/', tty: false, openStdin: false, runBlock: false, stopSignal: 'TERM', stopTimeout: 10, restart: { name: 'no' } } };
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r1', linkId: 'link1', command: exec });
  t.same(a.toMap.at(-1), { type: 'ASSIGN', vm: 'vm-a', ids: ['exec-1'] });
  a.actor.send({ type: 'LINK_INFO', linkId: 'link1', vm: 'vm-a', containers: [info('exec-1')] });
  t.match(a.containers(), { 'exec-1': { vm: 'vm-a' } });
});
