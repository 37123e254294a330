import { assign, fromCallback, setup, type EventObject } from 'xstate';
import { DEFAULT_BACKOFF, backoffDelay, type Backoff } from './serialLink.ts';

/**
 * A hypervisor's network serial port in client mode, as the sandbox launcher
 * plays it: keep a TCP connection to the appliance, and when it drops or is
 * refused, wait and connect again, doubling the wait up to a cap and starting
 * over once a connection is made. The connection actor copies bytes between
 * the pty master and the socket; while there is no connection it discards
 * what the guest writes, as a real line with nobody listening does.
 */

export type SerialBridgeEvent = { type: 'CONNECTED' } | { type: 'DISCONNECTED'; error: string };

export interface SerialBridgeInput {
  host: string;
  port: number;
  backoff?: Backoff;
}

export interface ConnectionInput {
  host: string;
  port: number;
}

export interface SerialBridgeContext {
  host: string;
  port: number;
  backoff: Backoff;
  /** Retries since the last connection was made; sets the next delay. */
  attempts: number;
  /** Connections made so far. */
  connections: number;
  delayMs: number;
  lastError?: string;
}

export const serialBridgeMachine = setup({
  types: {
    context: {} as SerialBridgeContext,
    events: {} as SerialBridgeEvent,
    input: {} as SerialBridgeInput,
  },
  actors: {
    /** Connects to the appliance and copies bytes while connected; reports SerialBridgeEvent. */
    connection: fromCallback<EventObject, ConnectionInput>(() => {}),
  },
  delays: {
    backoff: ({ context }) => context.delayMs,
  },
}).createMachine({
  id: 'serialBridge',
  context: ({ input }) => ({
    host: input.host,
    port: input.port,
    backoff: input.backoff ?? DEFAULT_BACKOFF,
    attempts: 0,
    connections: 0,
    delayMs: 0,
  }),
  initial: 'connection',
  states: {
    connection: {
      invoke: { id: 'connection', src: 'connection', input: ({ context }) => ({ host: context.host, port: context.port }) },
      initial: 'connecting',
      states: {
        connecting: {
          on: {
            CONNECTED: { target: 'connected', actions: assign({ attempts: 0, connections: ({ context }) => context.connections + 1 }) },
          },
        },
        connected: {},
      },
      on: {
        DISCONNECTED: { target: 'waiting', actions: assign({ lastError: ({ event }) => event.error }) },
      },
    },
    waiting: {
      entry: assign(({ context }) => ({
        attempts: context.attempts + 1,
        delayMs: backoffDelay(context.attempts + 1, context.backoff),
      })),
      after: { backoff: 'connection' },
    },
  },
});
