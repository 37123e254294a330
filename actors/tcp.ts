import net from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { createActor, fromCallback, type Actor, type EventObject } from 'xstate';
import { serialBridgeMachine, type ConnectionInput, type SerialBridgeEvent } from '../machines/serialBridge.ts';
import type { Backoff } from '../machines/serialLink.ts';
import type { ResourceTable } from './resources.ts';
import { lineActor, socketLine } from './serialPort.ts';

/**
 * Serial over TCP, both ends: the appliance's listener and its accepted
 * connections, and the hypervisor's side (the network serial port in client
 * mode) that the sandbox launcher plays with `bridge`.
 */

export type TcpListenerEvent =
  | { type: 'LISTENING'; address: string }
  | { type: 'LISTEN_FAILED'; error: string }
  /** `handle` names the accepted socket in the ResourceTable. */
  | { type: 'CONNECTION_ACCEPTED'; handle: string; remote: string };

export interface ListenAddress {
  host: string;
  port: number;
}

/** The appliance's serial listener: one CONNECTION_ACCEPTED per hypervisor connection. */
export function createTcpListenerActor(table: ResourceTable, address: ListenAddress) {
  return fromCallback<EventObject>(({ sendBack }) => {
    const report = (event: TcpListenerEvent) => sendBack(event);
    const server = net.createServer({ noDelay: true }, (socket) => {
      // Until its connection actor takes it, an error must not crash the
      // appliance; that actor sees the socket already closed and reports it.
      socket.on('error', () => {});
      report({ type: 'CONNECTION_ACCEPTED', handle: table.put('tcp', socket), remote: `${socket.remoteAddress}:${socket.remotePort}` });
    });
    let listening = false;
    // Before listening an error means no listener; after, it is one failed
    // accept (out of descriptors, say) and the listener goes on.
    server.on('error', (err) => {
      if (!listening) report({ type: 'LISTEN_FAILED', error: `cannot listen on ${address.host}:${address.port}: ${err.message}` });
    });
    server.listen(address.port, address.host, () => {
      listening = true;
      const bound = server.address() as net.AddressInfo;
      report({ type: 'LISTENING', address: `${bound.address}:${bound.port}` });
    });
    return () => server.close();
  });
}

/**
 * One accepted connection with the port contract of machines/serialLink.ts
 * (PORT_BYTES, PORT_CLOSED out; WRITE, HAND_OFF, CLOSE in), so the
 * appliance's link runs the initiator handshake over it exactly as the guest
 * runs the responder over its serial port. It owns the socket from now on.
 */
export function createTcpConnectionActor(table: ResourceTable) {
  return lineActor<{ handle: string }>(table, async ({ handle }) => {
    const socket = table.get<net.Socket>(handle);
    return { line: socketLine(`${socket.remoteAddress}:${socket.remotePort}`, socket), handle, announce: false };
  });
}

export interface BridgeOptions {
  /** The pty master (actors/ptyPair.ts): the VM side of the serial port. */
  master: Duplex;
  /** The appliance's serial listener. */
  host: string;
  port: number;
  backoff?: Backoff;
}

export interface Bridge {
  /** The reconnect machine (machines/serialBridge.ts), for logs and the visualizer. */
  actor: Actor<typeof serialBridgeMachine>;
  /** Breaks the current connection, as a hypervisor losing it would; the bridge reconnects. */
  drop(): void;
  /** Stops reconnecting and closes the connection; the master stays open, paused so nothing is lost. */
  close(): Promise<void>;
}

/**
 * Plays the hypervisor's network serial port in client mode: copies bytes
 * between the pty master and a TCP connection to the appliance, reconnecting
 * as machines/serialBridge.ts decides. The master is read all the time, so
 * what the guest writes while there is no connection is discarded rather than
 * left to fill the pty and block the guest.
 */
export function bridge(options: BridgeOptions): Bridge {
  const { master } = options;
  let current: net.Socket | undefined;
  const sockets = new Set<net.Socket>();

  const fromGuest = (chunk: Buffer) => {
    if (!current || current.write(chunk)) return;
    master.pause();
    current.once('drain', () => master.resume());
  };
  master.on('data', fromGuest);
  // A master an earlier bridge let go of was paused by it, and a paused stream
  // stays paused when a 'data' listener comes.
  master.resume();

  const connection = fromCallback<EventObject, ConnectionInput>(({ input, sendBack }) => {
    const report = (event: SerialBridgeEvent) => sendBack(event);
    const socket = net.connect({ host: input.host, port: input.port, noDelay: true });
    sockets.add(socket);
    let error = 'connection closed';
    const toGuest = (chunk: Buffer) => {
      if (master.write(chunk)) return;
      socket.pause();
      master.once('drain', () => socket.resume());
    };
    socket.once('connect', () => {
      current = socket;
      socket.on('data', toGuest);
      report({ type: 'CONNECTED' });
    });
    socket.on('error', (err) => (error = `${input.host}:${input.port}: ${err.message}`));
    socket.once('close', () => {
      sockets.delete(socket);
      report({ type: 'DISCONNECTED', error });
    });
    return () => {
      if (current === socket) current = undefined;
      socket.destroy();
      // It may have been waiting for this socket to drain.
      master.resume();
    };
  });

  const actor = createActor(serialBridgeMachine.provide({ actors: { connection } }), {
    input: { host: options.host, port: options.port, backoff: options.backoff },
  }).start();

  return {
    actor,
    drop: () => current?.destroy(),
    close: async () => {
      actor.stop();
      master.off('data', fromGuest);
      master.pause();
      await Promise.all([...sockets].map((socket) => once(socket, 'close')));
    },
  };
}
