import { assign, fromCallback, sendTo, setup, type AnyActorLogic, type EventObject } from 'xstate';
import { nextRandom } from '../shared/handshake.ts';
import { handshakeMachine, type HandshakeOutput } from './handshake.ts';

/**
 * The guest's end of the serial line: open the port, resync the line as the
 * handshake responder, hand the port's stream to the SSH server, and when
 * that ends (or the port dies, or will not open) close the port completely,
 * back off and start over. The appliance runs the other end; it cannot reach
 * the guest in any other way, so this loop never gives up.
 *
 *   line.opening → line.handshaking → line.serving → line.lost → backoff → line.opening
 *
 * The port actor is invoked on `line` so that one live port spans opening,
 * handshaking and serving, and leaving `line` always stops it. `line.lost`
 * waits until the port reports it is closed: a new open of the same device
 * while the old descriptor still reads would split the line's bytes between
 * two readers.
 */

/** What a port (serial device, TCP connection) tells its parent. */
export type PortEvent =
  /** `handle` names the live Duplex stream in the ResourceTable. */
  | { type: 'PORT_OPENED'; handle: string }
  | { type: 'PORT_BYTES'; data: Uint8Array }
  /** The port is closed completely; `error` says why, when it was not asked to close. */
  | { type: 'PORT_CLOSED'; error?: string };

/** What a port takes from its parent. */
export type PortCommand =
  | { type: 'WRITE'; data: Uint8Array }
  /** Stop reading: the stream now belongs to SSH, which reads what was not reported. */
  | { type: 'HAND_OFF' }
  /** Close completely, then answer PORT_CLOSED (at once if already closed). */
  | { type: 'CLOSE' };

export interface PortInput {
  /** A tty device path, or `tcp://HOST:PORT` for a line that is a plain TCP connection. */
  device: string;
}

export interface SshInput {
  portHandle: string;
  /** The appliance's first SSH bytes, read with the handshake's last ones. */
  leftover: Uint8Array;
}

export type SshEvent = { type: 'SSH_CLOSED'; reason: string };

export type SerialLinkEvent = PortEvent | SshEvent | { type: 'LINE_WRITE'; data: Uint8Array };

export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 10, maxMs: 1000 };

/** Delay before retry number `attempt` (1-based): doubling from `initialMs`, capped at `maxMs`. */
export const backoffDelay = (attempt: number, { initialMs, maxMs }: Backoff): number =>
  Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));

export interface SerialLinkInput {
  device: string;
  /** Seeds the handshake nonces. */
  seed: number;
  backoff?: Backoff;
  /** Responder stall timeout (machines/handshake.ts). */
  stallMs?: number;
}

export interface SerialLinkContext {
  device: string;
  random: number;
  backoff: Backoff;
  stallMs?: number;
  /** Retries since the link last reached `serving`; sets the next delay. */
  attempts: number;
  /** Times a port that had opened was lost. */
  reconnects: number;
  /** The delay of the current (or last) backoff. */
  delayMs: number;
  /** Why the port last closed or failed to open, or why SSH ended. */
  lastError?: string;
  portHandle?: string;
  leftover?: Uint8Array;
}

export const serialLinkMachine = setup({
  types: {
    context: {} as SerialLinkContext,
    events: {} as SerialLinkEvent,
    input: {} as SerialLinkInput,
  },
  actors: {
    /** Opens `device`; see PortEvent and PortCommand. */
    port: fromCallback<PortCommand, PortInput>(() => {}),
    handshake: handshakeMachine,
    // Any logic that takes SshInput and reports SshEvent: the guest's SSH
    // session machine (machines/sshSession.ts), or a stand-in in tests.
    ssh: fromCallback<EventObject, SshInput>(() => {}) as AnyActorLogic,
  },
  delays: {
    backoff: ({ context }) => context.delayMs,
  },
  actions: {
    recordPortError: assign({
      lastError: ({ context, event }) => (event.type === 'PORT_CLOSED' ? (event.error ?? 'port closed') : context.lastError),
    }),
  },
}).createMachine({
  id: 'serialLink',
  context: ({ input }) => ({
    device: input.device,
    random: input.seed >>> 0,
    backoff: input.backoff ?? DEFAULT_BACKOFF,
    stallMs: input.stallMs,
    attempts: 0,
    reconnects: 0,
    delayMs: 0,
  }),
  initial: 'line',
  states: {
    line: {
      invoke: { id: 'port', src: 'port', input: ({ context }) => ({ device: context.device }) },
      initial: 'opening',
      states: {
        opening: {
          on: {
            PORT_OPENED: { target: 'handshaking', actions: assign({ portHandle: ({ event }) => event.handle }) },
            // Nothing was opened, so there is nothing to close.
            PORT_CLOSED: { target: '#serialLink.backoff', actions: 'recordPortError' },
          },
        },
        handshaking: {
          entry: assign({ random: ({ context }) => nextRandom(context.random) }),
          invoke: {
            id: 'handshake',
            src: 'handshake',
            input: ({ context }) => ({ role: 'responder' as const, seed: context.random, stallMs: context.stallMs }),
            onDone: { target: 'serving', actions: assign({ leftover: ({ event }) => (event.output as HandshakeOutput).leftover }) },
          },
          on: {
            PORT_BYTES: { actions: sendTo('handshake', ({ event }) => ({ type: 'LINE_BYTES' as const, data: event.data })) },
            LINE_WRITE: { actions: sendTo('port', ({ event }) => ({ type: 'WRITE' as const, data: event.data })) },
            PORT_CLOSED: { target: 'lost', actions: 'recordPortError' },
          },
        },
        serving: {
          // HAND_OFF is sent before the ssh actor starts (entry actions run
          // before invocations), so SSH is the stream's only reader.
          entry: [sendTo('port', { type: 'HAND_OFF' }), assign({ attempts: 0 })],
          invoke: {
            id: 'ssh',
            src: 'ssh',
            input: ({ context }: { context: SerialLinkContext }): SshInput => ({ portHandle: context.portHandle!, leftover: context.leftover! }),
          },
          on: {
            SSH_CLOSED: { target: 'lost', actions: assign({ lastError: ({ event }) => event.reason }) },
            PORT_CLOSED: { target: 'lost', actions: 'recordPortError' },
          },
        },
        lost: {
          entry: [
            assign({ reconnects: ({ context }) => context.reconnects + 1, portHandle: undefined, leftover: undefined }),
            sendTo('port', { type: 'CLOSE' }),
          ],
          on: { PORT_CLOSED: '#serialLink.backoff' },
        },
      },
    },
    backoff: {
      entry: assign(({ context }) => ({
        attempts: context.attempts + 1,
        delayMs: backoffDelay(context.attempts + 1, context.backoff),
      })),
      after: { backoff: 'line' },
    },
  },
});
