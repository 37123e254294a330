import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import t, { type Test } from 'tap';
import { assign, createActor, fromCallback, fromPromise, sendTo, setup, SimulatedClock, spawnChild, type Actor, type AnyActorRef, type EventObject } from 'xstate';
import { openPtyPair } from '../actors/ptyPair.ts';
import { ResourceTable } from '../actors/resources.ts';
import { createSerialPortActor } from '../actors/serialPort.ts';
import { bridge, createTcpConnectionActor, createTcpListenerActor } from '../actors/tcp.ts';
import { handshakeMachine, type HandshakeOutput } from '../machines/handshake.ts';
import { serialBridgeMachine, type ConnectionInput, type SerialBridgeEvent } from '../machines/serialBridge.ts';
import { serialLinkMachine, type PortCommand, type PortEvent, type SshInput } from '../machines/serialLink.ts';
import { SYN } from '../shared/handshake.ts';

/** Generous: every wait here is for local I/O and a few handshake rounds of 100 ms. */
const DEADLINE_MS = 20_000;

function eventually<T>(subscribe: (check: () => void) => { unsubscribe(): void }, ready: () => T | undefined, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    let subscription: { unsubscribe(): void } | undefined;
    const timer = setTimeout(() => {
      subscription?.unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, DEADLINE_MS);
    const check = () => {
      const value = ready();
      if (value === undefined) return;
      clearTimeout(timer);
      subscription?.unsubscribe();
      resolve(value);
    };
    subscription = subscribe(check);
    check();
  });
}

const leaf = (value: unknown): string => (typeof value === 'string' ? value : leaf(Object.values(value as object)[0]));

/**
 * The stand-in for the guest's SSH server: echoes what the appliance sends.
 * A SYN means the appliance started a new handshake (after its connection
 * dropped); a real SSH server fails on such bytes, so this one ends there.
 */
function echoSsh(table: ResourceTable) {
  return fromCallback<EventObject, SshInput>(({ input, sendBack }) => {
    const stream = table.get<Duplex>(input.portHandle);
    const onData = (chunk: Buffer) => {
      if (chunk.includes(SYN)) sendBack({ type: 'SSH_CLOSED', reason: 'the appliance started a new handshake' });
      else stream.write(chunk);
    };
    if (input.leftover.length > 0) onData(Buffer.from(input.leftover));
    stream.on('data', onData);
    return () => stream.off('data', onData);
  });
}

/** The appliance's end of one accepted connection, reduced to the handshake: the appliance link is other code. */
function applianceEnd(table: ResourceTable) {
  return setup({
    types: {
      context: {} as { handle: string; seed: number; leftover?: Uint8Array },
      input: {} as { handle: string; seed: number },
      events: {} as PortEvent | { type: 'LINE_WRITE'; data: Uint8Array },
    },
    actors: { connection: createTcpConnectionActor(table), handshake: handshakeMachine },
  }).createMachine({
    context: ({ input }) => input,
    invoke: { id: 'connection', src: 'connection', input: ({ context }) => ({ handle: context.handle }) },
    initial: 'handshaking',
    states: {
      handshaking: {
        invoke: {
          id: 'handshake',
          src: 'handshake',
          input: ({ context }) => ({ role: 'initiator' as const, seed: context.seed }),
          onDone: {
            target: 'synced',
            actions: [assign({ leftover: ({ event }) => (event.output as HandshakeOutput).leftover }), sendTo('connection', { type: 'HAND_OFF' } satisfies PortCommand)],
          },
        },
        on: {
          PORT_BYTES: { actions: sendTo('handshake', ({ event }) => ({ type: 'LINE_BYTES', data: event.data })) },
          LINE_WRITE: { actions: sendTo('connection', ({ event }) => ({ type: 'WRITE', data: event.data }) satisfies PortCommand) },
          PORT_CLOSED: 'closed',
        },
      },
      synced: { on: { PORT_CLOSED: 'closed' } },
      closed: { type: 'final' },
    },
  });
}

/** A listener on 127.0.0.1:0 that runs an applianceEnd per accepted connection. */
function appliance(table: ResourceTable) {
  const machine = setup({
    types: {
      context: {} as { address?: string; ends: number },
      events: {} as { type: 'LISTENING'; address: string } | { type: 'CONNECTION_ACCEPTED'; handle: string; remote: string },
    },
    actors: { listener: createTcpListenerActor(table, { host: '127.0.0.1', port: 0 }), end: applianceEnd(table) },
  }).createMachine({
    context: { ends: 0 },
    invoke: { id: 'listener', src: 'listener' },
    on: {
      LISTENING: { actions: assign({ address: ({ event }) => event.address }) },
      CONNECTION_ACCEPTED: {
        actions: [
          assign({ ends: ({ context }) => context.ends + 1 }),
          spawnChild('end', { id: ({ context }) => `end${context.ends}`, input: ({ context, event }) => ({ handle: (event as { handle: string }).handle, seed: context.ends * 7919 }) }),
        ],
      },
    },
  });
  // The connection ends are children: their changes reach the root's
  // subscribers only through inspection.
  const changed = new Set<() => void>();
  const actor = createActor(machine, { inspect: () => changed.forEach((c) => c()) }).start();
  const watch = (c: () => void) => (changed.add(c), { unsubscribe: () => changed.delete(c) });
  return {
    actor,
    port: async () => Number((await eventually(watch, () => actor.getSnapshot().context.address, 'LISTENING')).split(':').at(-1)),
    /** Resolves with the socket of connection n once its handshake is done, and the bytes read with its last handshake byte. */
    synced: (n: number) =>
      eventually(
        watch,
        () => {
          const end = actor.getSnapshot().children[`end${n}`] as AnyActorRef | undefined;
          const snapshot = end?.getSnapshot();
          if (!snapshot || snapshot.value !== 'synced') return undefined;
          return { socket: table.get<net.Socket>(snapshot.context.handle), leftover: snapshot.context.leftover as Uint8Array };
        },
        `appliance connection ${n} synced`,
      ),
  };
}

function guestLink(table: ResourceTable, device: string) {
  const machine = serialLinkMachine.provide({ actors: { port: createSerialPortActor(table), ssh: echoSsh(table) } });
  const actor = createActor(machine, { input: { device, seed: 42 } });
  const states: string[] = [];
  actor.subscribe((snapshot) => {
    const state = leaf(snapshot.value);
    if (states.at(-1) !== state) states.push(state);
  });
  actor.start();
  const reach = (state: string, count = 1) =>
    eventually((c) => actor.subscribe(c), () => (states.filter((s) => s === state).length >= count ? true : undefined), `guest ${state} #${count}`);
  return { actor, states, reach };
}

/** Payload without SYN bytes, which the echo stand-in takes for a new handshake. */
const payload = (n: number) => Buffer.from(randomBytes(n).map((b) => (b === SYN ? 0 : b)));

/** Sends `data` over the synced socket and resolves with as many bytes echoed back. */
async function echo(socket: net.Socket, leftover: Uint8Array, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [Buffer.from(leftover)];
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    for (const l of listeners) l();
  };
  socket.on('data', onData);
  socket.write(data);
  const all = await eventually(
    (c) => (listeners.add(c), { unsubscribe: () => listeners.delete(c) }),
    () => (Buffer.concat(chunks).length >= data.length ? Buffer.concat(chunks) : undefined),
    `${data.length} echoed bytes`,
  );
  socket.off('data', onData);
  return all;
}

/** Everything a test needs for the full path: guest link on a pty, bridge, appliance listener. */
async function sandbox(t: Test, options: { beforeBridge?: (pair: ReturnType<typeof openPtyPair>, guest: ReturnType<typeof guestLink>) => Promise<void> } = {}) {
  const table = new ResourceTable();
  const pair = openPtyPair();
  const app = appliance(table);
  const guest = guestLink(table, pair.slavePath);
  await options.beforeBridge?.(pair, guest);
  const line = bridge({ master: pair.master, host: '127.0.0.1', port: await app.port() });
  t.teardown(async () => {
    guest.actor.stop();
    app.actor.stop();
    await line.close();
    await pair.close();
  });
  return { table, pair, app, guest, line };
}

t.test('over a real pty bridged to TCP, the guest link and the appliance sync and then carry bytes both ways', async (t) => {
  const { app, guest } = await sandbox(t);
  const { socket, leftover } = await app.synced(1);
  await guest.reach('serving');
  const data = payload(64 * 1024);
  t.ok((await echo(socket, leftover, data)).equals(data), '64 KiB went to the guest and came back intact');
  t.same(guest.states, ['opening', 'handshaking', 'serving']);
});

t.test('garbage on the pty before the handshake is discarded', async (t) => {
  const { app, guest } = await sandbox(t, {
    // The port flushes its input when it opens, so inject once it is open.
    beforeBridge: async (pair, guest) => {
      await guest.reach('handshaking');
      const garbage = Buffer.concat([randomBytes(16 * 1024), Buffer.from([SYN, 1, SYN, 0x06, 0x15, SYN]), randomBytes(1024)]);
      await new Promise<void>((resolve) => pair.master.write(garbage, () => resolve()));
    },
  });
  const { socket, leftover } = await app.synced(1);
  const data = payload(4096);
  t.ok((await echo(socket, leftover, data)).equals(data));
  t.same(guest.states, ['opening', 'handshaking', 'serving'], 'the guest never left its first handshake');
});

t.test('when the TCP connection drops, the bridge reconnects and the guest re-handshakes', async (t) => {
  const { app, guest, line } = await sandbox(t);
  const first = await app.synced(1);
  t.ok((await echo(first.socket, first.leftover, payload(1000))).length >= 1000);

  first.socket.destroy();
  const second = await app.synced(2);
  await guest.reach('serving', 2);
  const data = payload(32 * 1024);
  t.ok((await echo(second.socket, second.leftover, data)).equals(data), 'bytes flow over the new connection');
  t.same(guest.states, ['opening', 'handshaking', 'serving', 'lost', 'backoff', 'opening', 'handshaking', 'serving']);
  t.equal(guest.actor.getSnapshot().context.reconnects, 1);
  t.match(guest.actor.getSnapshot().context.lastError, /new handshake/);
  t.equal(line.actor.getSnapshot().context.connections, 2);
});

t.test('a tcp:// device is the same line without a pty', async (t) => {
  const table = new ResourceTable();
  const app = appliance(table);
  const guest = guestLink(table, `tcp://127.0.0.1:${await app.port()}`);
  t.teardown(() => {
    guest.actor.stop();
    app.actor.stop();
  });
  const { socket, leftover } = await app.synced(1);
  const data = payload(64 * 1024);
  t.ok((await echo(socket, leftover, data)).equals(data));
});

t.test('the listener reports a port it cannot take, naming the address', async (t) => {
  const table = new ResourceTable();
  const first = appliance(table);
  const port = await first.port();
  const events: EventObject[] = [];
  const second = createActor(
    setup({ actors: { listener: createTcpListenerActor(table, { host: '127.0.0.1', port }) } }).createMachine({
      invoke: { src: 'listener' },
      on: { '*': { actions: ({ event }) => events.push(event) } },
    }),
  ).start();
  t.teardown(() => {
    second.stop();
    first.actor.stop();
  });
  const failed = await eventually((c) => second.subscribe(c), () => events.find((e) => e.type === 'LISTEN_FAILED') as { error: string } | undefined, 'LISTEN_FAILED');
  t.match(failed.error, `127.0.0.1:${port}`);
});

/** The link machine alone, with scripted actors and a simulated clock. */
function scriptedLink(failOpens: number) {
  const clock = new SimulatedClock();
  let opens = 0;
  const port = fromCallback<PortCommand, { device: string }>(({ input, sendBack, receive }) => {
    if (++opens <= failOpens) sendBack({ type: 'PORT_CLOSED', error: `cannot open ${input.device}: ENOENT` } satisfies PortEvent);
    else sendBack({ type: 'PORT_OPENED', handle: `serial#${opens}` } satisfies PortEvent);
    receive((command) => {
      if (command.type === 'CLOSE') sendBack({ type: 'PORT_CLOSED' } satisfies PortEvent);
    });
  });
  const machine = serialLinkMachine.provide({
    actors: {
      port,
      handshake: fromPromise(async () => ({ leftover: new Uint8Array(0) })) as never,
      ssh: fromCallback<EventObject, SshInput>(() => {}),
    },
  });
  const actor: Actor<typeof serialLinkMachine> = createActor(machine, { clock, input: { device: '/dev/ttyS0', seed: 1 } });
  const delays: number[] = [];
  let previous: unknown;
  actor.subscribe((s) => {
    if (s.value === 'backoff' && previous !== 'backoff') delays.push(s.context.delayMs);
    previous = s.value;
  });
  actor.start();
  return { actor, clock, delays };
}

t.test('a port that will not open is retried with delays doubling from 10 ms to 1 s; a serve resets them', async (t) => {
  const { actor, clock, delays } = scriptedLink(9);
  for (let i = 0; i < 9; i++) clock.increment(1000);
  t.same(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
  t.match(actor.getSnapshot().context, { attempts: 9, lastError: 'cannot open /dev/ttyS0: ENOENT' });

  await new Promise((resolve) => setImmediate(resolve)); // the scripted handshake resolves
  t.equal(leaf(actor.getSnapshot().value), 'serving');
  t.equal(actor.getSnapshot().context.attempts, 0);
  actor.send({ type: 'SSH_CLOSED', reason: 'ssh connection closed' });
  t.equal(leaf(actor.getSnapshot().value), 'backoff', 'lost waited for the port to close, then backed off');
  t.equal(actor.getSnapshot().context.delayMs, 10);
  t.match(actor.getSnapshot().context, { reconnects: 1, lastError: 'ssh connection closed' });
  actor.stop();
});

t.test('the bridge retries a refused connection with doubling delays and starts over once connected', async (t) => {
  const clock = new SimulatedClock();
  let tries = 0;
  const connection = fromCallback<EventObject, ConnectionInput>(({ input, sendBack }) => {
    const report = (event: SerialBridgeEvent) => sendBack(event);
    if (++tries <= 4) report({ type: 'DISCONNECTED', error: `${input.host}:${input.port}: connect ECONNREFUSED` });
    else report({ type: 'CONNECTED' });
  });
  const actor = createActor(serialBridgeMachine.provide({ actors: { connection } }), { clock, input: { host: '127.0.0.1', port: 2377 } });
  const delays: number[] = [];
  let previous: unknown;
  actor.subscribe((s) => {
    if (s.value === 'waiting' && previous !== 'waiting') delays.push(s.context.delayMs);
    previous = s.value;
  });
  actor.start();
  for (let i = 0; i < 4; i++) clock.increment(1000);
  t.same(delays, [10, 20, 40, 80]);
  t.match(actor.getSnapshot(), { value: { connection: 'connected' }, context: { attempts: 0, connections: 1, lastError: /127.0.0.1:2377.*ECONNREFUSED/ } });
  actor.send({ type: 'DISCONNECTED', error: 'connection closed' });
  t.equal(actor.getSnapshot().context.delayMs, 10, 'a drop after a connection waits the shortest delay');
  actor.stop();
});
