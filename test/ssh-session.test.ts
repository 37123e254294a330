import t from 'tap';
import { fromCallback, SimulatedClock, waitFor, type EventObject } from 'xstate';
import type { SshInput } from '../machines/serialLink.ts';
import {
  applianceSessionMachine, DEFAULT_READY_TIMEOUT_MS, guestSessionMachine, type ApplianceSessionInput, type SshClientCommand,
} from '../machines/sshSession.ts';
import { host } from './support/host.ts';

// The session machines with scripted SSH actors: the machines are under test,
// ssh2 is other code (tested in ssh-extension.test.ts and end to end).

t.test('guest session: authenticated → tells the guest it serves; ended → tells the guest and the serial link', async (t) => {
  let report!: (e: { type: string; [key: string]: unknown }) => void;
  const server = fromCallback<EventObject, SshInput>(({ sendBack }) => void (report = sendBack as typeof report));
  const h = host('guest', guestSessionMachine.provide({ actors: { server } }), { portHandle: 'serial#1', leftover: new Uint8Array() });
  const session = () => h.actor.getSnapshot().children.child!;
  report({ type: 'SSH_AUTH_REFUSED', user: 'root', method: 'publickey' });
  t.equal(session().getSnapshot().context.refusals, 1, 'a refused key is counted');
  t.same(h.told(), [], 'nothing to tell before authentication');
  report({ type: 'SSH_AUTHENTICATED' });
  t.same(h.told(), [{ type: 'SSH_SERVING' }]);
  report({ type: 'SSH_ENDED', reason: 'ssh: Bad packet length' });
  t.same(h.told(), [{ type: 'SSH_SERVING' }, { type: 'SSH_ENDED' }, { type: 'SSH_CLOSED', reason: 'ssh: Bad packet length' }]);
});

t.test('guest session: no client authenticated within the ready timeout → the session ends and the serial link starts over; an authenticated one stays', async (t) => {
  const start = () => {
    let report!: (e: { type: string }) => void;
    const server = fromCallback<EventObject, SshInput>(({ sendBack }) => void (report = sendBack as typeof report));
    const clock = new SimulatedClock();
    const h = host('guest', guestSessionMachine.provide({ actors: { server } }), { portHandle: 'serial#1', leftover: new Uint8Array() }, clock);
    return { h, clock, report: (e: { type: string }) => report(e) };
  };
  // The appliance's handshake gave up before this side's final ACK reached it: its SYNs reach ssh2 as a version line that never ends.
  const stuck = start();
  stuck.clock.increment(DEFAULT_READY_TIMEOUT_MS - 1);
  t.same(stuck.h.told(), [], 'still waiting just before the deadline');
  stuck.clock.increment(1);
  t.same(stuck.h.told(), [{ type: 'SSH_ENDED' }, { type: 'SSH_CLOSED', reason: `no SSH client authenticated within ${DEFAULT_READY_TIMEOUT_MS} ms: starting the line over` }]);

  const live = start();
  live.report({ type: 'SSH_AUTHENTICATED' });
  live.clock.increment(10 * DEFAULT_READY_TIMEOUT_MS);
  t.same(live.h.told(), [{ type: 'SSH_SERVING' }], 'an authenticated session has no deadline');
});

t.test('appliance session: ready → link up and one query; pushes relayed; closed → link down', async (t) => {
  let report!: (e: { type: string; [key: string]: unknown }) => void;
  const commands: SshClientCommand[] = [];
  const client = fromCallback<SshClientCommand, ApplianceSessionInput>(({ sendBack, receive }) => {
    report = sendBack as typeof report;
    receive((c) => commands.push(c));
  });
  const h = host('appliance', applianceSessionMachine.provide({ actors: { client } }), { linkId: 'link1', handle: 'tcp#1', leftover: new Uint8Array() });
  const at = '2026-11-29T00:00:00Z';
  report({ type: 'SSH_READY', vm: 'vm-a', assigned: ['c1'], at });
  t.same(commands, [{ type: 'QUERY' }], 'the full picture is asked for once');
  report({ type: 'SSH_IDS', ids: ['c1'] });
  report({ type: 'SSH_CLOSED', reason: 'ssh connection closed', at });
  t.same(h.told(), [
    { type: 'LINK_UP', linkId: 'link1', vm: 'vm-a', assigned: ['c1'], at },
    { type: 'LINK_IDS', linkId: 'link1', ids: ['c1'] },
    { type: 'LINK_DOWN', linkId: 'link1', reason: 'ssh connection closed', at },
  ]);
  const child = h.actor.getSnapshot().children.child!;
  t.equal(child.getSnapshot().status, 'done');
  t.same(child.getSnapshot().output, { reason: 'ssh connection closed' });
});

t.test('appliance session: a guest that never authenticated is never reported', async (t) => {
  let report!: (e: { type: string; [key: string]: unknown }) => void;
  const client = fromCallback<SshClientCommand, ApplianceSessionInput>(({ sendBack }) => void (report = sendBack as typeof report));
  const h = host('appliance', applianceSessionMachine.provide({ actors: { client } }), { linkId: 'link2', handle: 'tcp#2', leftover: new Uint8Array() });
  report({ type: 'SSH_CLOSED', reason: 'unknown host key', at: '' });
  await waitFor(h.actor.getSnapshot().children.child!, (s) => s.status === 'done');
  t.same(h.told(), []);
});

t.test('appliance session: a quiet session is asked for a keepalive; an answer keeps it, silence ends it', async (t) => {
  let report!: (e: { type: string; [key: string]: unknown }) => void;
  const commands: SshClientCommand[] = [];
  const client = fromCallback<SshClientCommand, ApplianceSessionInput>(({ sendBack, receive }) => {
    report = sendBack as typeof report;
    receive((c) => commands.push(c));
  });
  host('appliance', applianceSessionMachine.provide({ actors: { client } }), {
    linkId: 'link3',
    handle: 'tcp#3',
    leftover: new Uint8Array(),
    keepaliveMs: 20,
    keepaliveTimeoutMs: 30,
  });
  report({ type: 'SSH_READY', vm: 'vm-a', assigned: [], at: '' });
  const asked = async (n: number) => {
    while (commands.filter((c) => c.type === 'KEEPALIVE').length < n) await new Promise((r) => setTimeout(r, 5));
  };
  await asked(1);
  report({ type: 'SSH_ALIVE' });
  await asked(2);
  t.notOk(commands.some((c) => c.type === 'END'), 'an answered keepalive ends nothing');
  while (!commands.some((c) => c.type === 'END')) await new Promise((r) => setTimeout(r, 5));
  t.same(commands.find((c) => c.type === 'END'), { type: 'END', reason: 'the guest did not answer a keepalive within 30 ms' });
});
