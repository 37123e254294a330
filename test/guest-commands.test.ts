import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import t from 'tap';
import { createActor, fromCallback, type EventObject } from 'xstate';
import { generateKeyPair } from '../actors/ssh/keys.ts';
import { askGlobal, extendClient, requestGlobal, serveTether, type ServerHandlers } from '../actors/ssh/extension.ts';
import { applianceMachine, type ApplianceEmitted } from '../machines/appliance.ts';
import { execRefusal, killRefusal, stopRefusal } from '../machines/guestRequests.ts';
import type { SessionView } from '../machines/processSession.ts';
import { applianceSessionMachine, type ApplianceSessionInput, type GuestCommand, type SshClientCommand } from '../machines/sshSession.ts';
import { notRoot, startWorld } from './support/world.ts';
import {
  decodeContainerIds,
  decodeKill,
  decodeRequestFailure,
  decodeExec,
  decodeStop,
  encodeKill,
  encodeNoPayload,
  encodeRequestFailure,
  encodeExec,
  encodeStop,
  encodeVersion,
  MAX_STOP_TIMEOUT,
  REQ_CONTAINER_IDS,
  REQ_KILL,
  REQ_STOP,
  REQ_VERSION,
} from '../shared/wire.ts';
import { host } from './support/host.ts';

// kill@tether and stop@tether below the end-to-end tests (pid1-*.test.ts):
// their codecs, the refusal with a reason that the SSH extension carries, what
// the guest's SSH server refuses, and how the appliance's machines route a
// command to its link and make sure it is answered exactly once.

// --- codecs --------------------------------------------------------------------

t.test('kill@tether carries the ID, the signal name and the group flag, and refuses what it cannot carry', async (t) => {
  t.strictSame(decodeKill(encodeKill({ containerId: 'c1', signal: 'RTMIN+3', group: true })), { containerId: 'c1', signal: 'RTMIN+3', group: true });
  t.strictSame(decodeKill(encodeKill({ containerId: 'c1', signal: 'TERM', group: false })), { containerId: 'c1', signal: 'TERM', group: false });
  t.throws(() => encodeKill({ containerId: 'c1', signal: 'SIGTERM', group: false }), /kill@tether: signal name: "SIGTERM" is not a signal name/);
  t.throws(() => encodeKill({ containerId: 'a,b', signal: 'TERM', group: false }), /kill@tether: container ID: "a,b" is not a container ID/);
  t.throws(() => decodeKill(encodeKill({ containerId: 'c1', signal: 'TERM', group: false }).subarray(0, 14)), /kill@tether truncated: need 1 bytes for group at offset 14, have 0/);
});

t.test('stop@tether carries the ID, an optional signal and an optional timeout no longer than a guest can wait', async (t) => {
  t.strictSame(decodeStop(encodeStop({ containerId: 'c1' })), { containerId: 'c1' });
  t.strictSame(decodeStop(encodeStop({ containerId: 'c1', signal: 'INT', timeout: 3 })), { containerId: 'c1', signal: 'INT', timeout: 3 });
  t.throws(() => encodeStop({ containerId: 'c1', signal: 'SIGINT' }), /stop@tether: signal name: "SIGINT" is not a signal name/);
  t.strictSame(decodeStop(encodeStop({ containerId: 'c1', timeout: 0 })), { containerId: 'c1', timeout: 0 }, 'zero is a timeout, not its absence');
  t.strictSame(decodeStop(encodeStop({ containerId: 'c1', timeout: MAX_STOP_TIMEOUT })), { containerId: 'c1', timeout: MAX_STOP_TIMEOUT });
  t.throws(() => encodeStop({ containerId: 'c1', timeout: MAX_STOP_TIMEOUT + 1 }), /stop@tether: timeout: expected an integer 0\.\.2147483 \(seconds\), got 2147484/);
  t.throws(() => encodeStop({ containerId: 'c1', timeout: 1.5 }), /timeout: expected an integer/);
  const tooLong = Buffer.from(encodeStop({ containerId: 'c1', timeout: 1 }));
  tooLong.writeUInt32BE(MAX_STOP_TIMEOUT + 1, tooLong.length - 4);
  t.throws(() => decodeStop(tooLong), /stop@tether: timeout: 2147484 s is longer than the 2147483 s a guest can wait/);
  const unflagged = Buffer.from(encodeStop({ containerId: 'c1' }));
  unflagged.writeUInt32BE(5, unflagged.length - 4);
  t.throws(() => decodeStop(unflagged), /stop@tether: timeout: 5 sent with "timeout given" FALSE/);
});

t.test('exec@tether carries the session spec as the config spells it, and an optional terminal size', async (t) => {
  const spec = { cmd: ['sh'], env: ['A=1'], cwd: '/', tty: true, openStdin: true, runBlock: true, stopSignal: 'TERM', stopTimeout: 10, restart: { name: 'on-failure' as const, maxRetries: 3 } };
  t.strictSame(decodeExec(encodeExec({ containerId: 'c1', sessionId: 'e1', spec, size: { cols: 100, rows: 30 } })), { containerId: 'c1', sessionId: 'e1', spec, size: { cols: 100, rows: 30 } });
  t.strictSame(decodeExec(encodeExec({ containerId: 'c1', sessionId: 'e1', spec })), { containerId: 'c1', sessionId: 'e1', spec });
  const noSize = Buffer.from(encodeExec({ containerId: 'c1', sessionId: 'e1', spec, size: { cols: 5, rows: 6 } }));
  noSize.writeUInt32BE(0, 4 + 2 + 4 + 2 + 4);
  t.throws(() => decodeExec(noSize), /exec@tether: size: 5x0: give both columns and rows, or neither/);
  t.throws(() => decodeExec(encodeExec({ containerId: 'c1', sessionId: 'e1', spec: { ...spec, cmd: [] } })), /exec@tether: spec.cmd: expected a non-empty array/);
});

t.test('a refusal reason decodes to its kind and message; anything else is a refusal that says so', async (t) => {
  const reason = encodeRequestFailure({ kind: 'not-running', message: 'session c1 has exited with code 3' });
  t.strictSame(decodeRequestFailure(REQ_KILL, reason), { kind: 'not-running', message: 'session c1 has exited with code 3' });
  t.match(decodeRequestFailure(REQ_STOP, Buffer.alloc(0)), { kind: 'refused', message: /refused stop@tether without a reason/ });
  t.match(decodeRequestFailure(REQ_KILL, Buffer.from([0, 0, 0, 9, 1])), { kind: 'refused', message: /unreadable reason \(kill@tether failure truncated/ });
  t.strictSame(decodeRequestFailure(REQ_KILL, Buffer.from([0, 0, 0, 8, ...Buffer.from('busy now')])), { kind: 'refused', message: 'busy now' }, 'a reason without a known kind is kept whole');
  t.throws(() => encodeRequestFailure({ kind: 'nope' as 'refused', message: '' }), /request failure: kind: expected one of/);
});

// --- the extension: a failure with a reason ----------------------------------------

const { Client, Server } = ssh2;
const hostKeys = generateKeyPair('test-host');
const clientKeys = generateKeyPair('test-client');

async function pair(t: { teardown(fn: () => unknown): void }, globalRequest: ServerHandlers['globalRequest']) {
  const conns: Connection[] = [];
  const server = new Server({ hostKeys: [hostKeys.privateKey] }, (conn) => {
    conns.push(conn);
    serveTether(conn, { globalRequest, openAttach: (_request, _accept, reject) => reject({ kind: 'unknown-id', message: 'none' }) });
    // The key is checked in ssh-extension.test.ts; here any client will do.
    conn.on('authentication', (ctx) => ctx.accept());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = new Client();
  extendClient(client, { globalRequest: () => {} });
  client.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, username: 'daemon', privateKey: clientKeys.privateKey });
  t.teardown(() => {
    client.end();
    for (const conn of conns) conn.end();
    server.close();
  });
  await once(client, 'ready');
  return client;
}

t.test('a refusal with a reason reaches the appliance after SSH_MSG_REQUEST_FAILURE, in request order', async (t) => {
  const client = await pair(t, (name) => {
    if (name === REQ_KILL) return { detail: encodeRequestFailure({ kind: 'unknown-id', message: 'no session c9' }) };
    if (name === REQ_STOP) return null;
    return encodeVersion(4);
  });
  const [kill, version, stop, plain] = await Promise.all([
    askGlobal(client, REQ_KILL, encodeKill({ containerId: 'c9', signal: 'TERM', group: false })),
    askGlobal(client, REQ_VERSION, encodeNoPayload()),
    askGlobal(client, REQ_STOP, encodeStop({ containerId: 'c9' })),
    requestGlobal(client, REQ_KILL, encodeKill({ containerId: 'c9', signal: 'TERM', group: false })),
  ]);
  t.equal(kill.ok, false);
  t.strictSame(!kill.ok && decodeRequestFailure(REQ_KILL, kill.detail), { kind: 'unknown-id', message: 'no session c9' });
  t.strictSame(version, { ok: true, payload: encodeVersion(4) }, 'a success between refusals keeps its own reply');
  t.strictSame(stop, { ok: false, detail: Buffer.alloc(0) }, 'a plain failure carries nothing');
  t.equal(plain, null, 'requestGlobal sees a refusal with a reason as a failure');
});

// --- what the guest machine refuses ----------------------------------------------

const SESSIONS: Record<string, SessionView> = {
  run: { state: 'running', pid: 7 },
  held: { state: 'blocked' },
  born: { state: 'created' },
  gone: { state: 'exited', exitCode: 3 },
  broken: { state: 'failed', error: 'no such file' },
};

t.test('the guest refuses a kill of an unknown session, with an unknown signal, or of a session without a running process', async (t) => {
  const kill = (sessionId: string, signal = 'TERM') => killRefusal(SESSIONS, { sessionId, signal });
  t.equal(kill('run'), undefined);
  t.equal(kill('run', 'RTMAX'), undefined);
  t.match(kill('nope'), { kind: 'unknown-id', message: 'no session nope in this guest (it has 5)' });
  t.match(kill('run', 'BOGUS'), { kind: 'unknown-signal', message: 'no signal named BOGUS' });
  t.match(kill('held'), { kind: 'not-running', message: /held has not started: it waits for an attach/ });
  t.match(kill('born'), { kind: 'not-running', message: 'session born has not started yet' });
  t.match(kill('gone'), { kind: 'not-running', message: 'session gone has exited with code 3' });
  t.match(kill('broken'), { kind: 'not-running', message: 'session broken failed to launch: no such file' });
});

t.test('the guest stops any session that has not ended, one that never started included', async (t) => {
  for (const id of ['run', 'held', 'born']) t.equal(stopRefusal(SESSIONS, { sessionId: id }), undefined, id);
  t.match(stopRefusal(SESSIONS, { sessionId: 'gone' }), { kind: 'not-running' });
  t.match(stopRefusal(SESSIONS, { sessionId: 'broken' }), { kind: 'not-running' });
  t.match(stopRefusal(SESSIONS, { sessionId: 'nope' }), { kind: 'unknown-id' });
  t.match(stopRefusal(SESSIONS, { sessionId: 'run', signal: 'BOGUS' }), { kind: 'unknown-signal' });
});

t.test('the guest adds a session only to a running container, under an ID no session has', async (t) => {
  t.equal(execRefusal(SESSIONS, { containerId: 'run', sessionId: 'new' }), undefined);
  t.match(execRefusal(SESSIONS, { containerId: 'run', sessionId: 'gone' }), { kind: 'refused', message: 'a session gone exists already' });
  t.match(execRefusal(SESSIONS, { containerId: 'gone', sessionId: 'new' }), { kind: 'not-running', message: 'session gone has exited with code 3' });
  t.match(execRefusal(SESSIONS, { containerId: 'nope', sessionId: 'new' }), { kind: 'unknown-id' });
});

t.test('a real guest refuses kill@tether and stop@tether with the reason, and goes on serving', { skip: notRoot() }, async (t) => {
  const world = await startWorld(t);
  await world.sandbox({ id: 'refuser', name: 'refuser', hostname: 'refuser', sessions: { refuser: { cmd: ['cat'], openStdin: true }, ended: { cmd: ['true'] } } });
  await world.container('ended', (c) => c.state === 'exited');
  const client = world.appliance.actor.registry.get(world.appliance.actor.getSnapshot().context.containers.refuser!.linkId)!;
  const refusal = async (name: string, payload: Buffer) => {
    const answer = await askGlobal(client, name, payload);
    return answer.ok ? 'accepted' : decodeRequestFailure(name, answer.detail);
  };
  t.match(await refusal(REQ_KILL, encodeKill({ containerId: 'nobody', signal: 'TERM', group: false })), { kind: 'unknown-id', message: /no session nobody/ });
  t.match(await refusal(REQ_KILL, encodeKill({ containerId: 'refuser', signal: 'BOGUS', group: false })), { kind: 'unknown-signal', message: 'no signal named BOGUS' });
  t.match(await refusal(REQ_KILL, encodeKill({ containerId: 'ended', signal: 'TERM', group: false })), { kind: 'not-running', message: 'session ended has exited with code 0' });
  t.match(await refusal(REQ_STOP, encodeStop({ containerId: 'ended' })), { kind: 'not-running' });
  t.match(await refusal(REQ_STOP, encodeStop({ containerId: 'ended', signal: 'NOPE' })), { kind: 'unknown-signal' }, 'a stop signal the guest does not know is refused first');
  t.match(await refusal(REQ_KILL, encodeKill({ containerId: 'refuser', signal: 'TERM', group: false }).subarray(0, 9)), { kind: 'malformed', message: /^kill@tether truncated/ });
  t.match(await refusal(REQ_STOP, Buffer.alloc(0)), { kind: 'malformed', message: /^stop@tether truncated/ });
  t.same(decodeContainerIds((await requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload()))!), ['refuser'], 'the link still serves');
  t.equal(world.appliance.directory.find('refuser')!.state, 'running', 'and nothing happened to the running session');
});

// --- the appliance's machines ------------------------------------------------------------

const KILL: GuestCommand = { kind: 'kill', containerId: 'c1', signal: 'TERM', group: true };

t.test('the appliance session hands a command to its SSH client and the answer to the appliance', async (t) => {
  let report!: (e: { type: string; [key: string]: unknown }) => void;
  const commands: SshClientCommand[] = [];
  const client = fromCallback<SshClientCommand, ApplianceSessionInput>(({ sendBack, receive }) => {
    report = sendBack as typeof report;
    receive((c) => commands.push(c));
  });
  const h = host('appliance', applianceSessionMachine.provide({ actors: { client } }), { linkId: 'link1', handle: 'tcp#1', leftover: new Uint8Array() });
  report({ type: 'SSH_READY', vm: 'vm-a', assigned: ['c1'], at: 'T' });
  h.actor.getSnapshot().children.child!.send({ type: 'GUEST_COMMAND', requestId: 'r1', command: KILL });
  t.same(commands, [{ type: 'QUERY' }, { type: 'COMMAND', requestId: 'r1', command: KILL }]);
  report({ type: 'SSH_COMMAND_DONE', requestId: 'r1', result: { ok: false, failure: { kind: 'not-running', message: 'exited' } } });
  t.same(h.told().slice(1), [{ type: 'LINK_COMMAND_DONE', linkId: 'link1', requestId: 'r1', result: { ok: false, failure: { kind: 'not-running', message: 'exited' } } }]);
});

/** The appliance with links that only record the commands they get (the link machine is tested end to end). */
function appliance() {
  let accept!: (handle: string) => void;
  const listener = fromCallback(({ sendBack }) => void (accept = (handle) => sendBack({ type: 'CONNECTION_ACCEPTED', handle, remote: 'test' })));
  const carried: EventObject[] = [];
  const link = fromCallback(({ receive }) => receive((e) => carried.push(e)));
  // Stand-ins for machines: xstate types a machine slot as that machine, any logic runs in it.
  const actor = createActor(applianceMachine.provide({ actors: { listener, link: link as never, connectionMap: fromCallback(() => {}) as never } }), { input: { seed: 1 } });
  const done: ApplianceEmitted[] = [];
  actor.on('COMMAND_DONE', (e) => done.push(e));
  actor.start();
  accept('tcp#1');
  return { actor, carried, done, up: () => actor.send({ type: 'LINK_UP', linkId: 'link1', vm: 'vm-a', assigned: ['c1'], at: 'T' }) };
}

t.test('a command goes to the link the map named and its answer is emitted once', async (t) => {
  const a = appliance();
  a.up();
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r1', linkId: 'link1', command: KILL });
  t.same(a.carried, [{ type: 'GUEST_COMMAND', requestId: 'r1', command: KILL }]);
  t.same(a.done, [], 'no answer before the guest gave one');
  a.actor.send({ type: 'LINK_COMMAND_DONE', linkId: 'link1', requestId: 'r1', result: { ok: true } });
  a.actor.send({ type: 'LINK_COMMAND_DONE', linkId: 'link1', requestId: 'r1', result: { ok: true } });
  t.same(a.done, [{ type: 'COMMAND_DONE', requestId: 'r1', result: { ok: true } }]);
  t.same(a.actor.getSnapshot().context.commands, {});
});

t.test('a command for a link that is not up fails at once, naming the link', async (t) => {
  const a = appliance();
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r1', linkId: 'link1', command: KILL });
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r2', linkId: 'link7', command: KILL });
  t.same(a.carried, [], 'nothing went to a link');
  t.same(a.done, [
    { type: 'COMMAND_DONE', requestId: 'r1', result: { ok: false, failure: { kind: 'link', message: 'link link1 is not up' } } },
    { type: 'COMMAND_DONE', requestId: 'r2', result: { ok: false, failure: { kind: 'link', message: 'link link7 is not up' } } },
  ]);
});

t.test('a link that goes down fails the commands it carried, and a late answer changes nothing', async (t) => {
  const a = appliance();
  a.up();
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r1', linkId: 'link1', command: KILL });
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r2', linkId: 'link1', command: { kind: 'stop', containerId: 'c1', timeout: 3 } });
  a.actor.send({ type: 'LINK_COMMAND_DONE', linkId: 'link1', requestId: 'r1', result: { ok: true } });
  a.actor.send({ type: 'LINK_DOWN', linkId: 'link1', reason: 'ssh connection closed', at: 'T' });
  a.actor.send({ type: 'LINK_COMMAND_DONE', linkId: 'link1', requestId: 'r2', result: { ok: true } });
  t.same(a.done, [
    { type: 'COMMAND_DONE', requestId: 'r1', result: { ok: true } },
    { type: 'COMMAND_DONE', requestId: 'r2', result: { ok: false, failure: { kind: 'link', message: 'link link1 went down before the guest answered: ssh connection closed' } } },
  ]);
  a.actor.send({ type: 'GUEST_COMMAND', requestId: 'r3', linkId: 'link1', command: KILL });
  t.match(a.done[2], { requestId: 'r3', result: { ok: false, failure: { message: 'link link1 is not up' } } }, 'and the link takes no more');
});
