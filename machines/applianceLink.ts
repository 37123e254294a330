import { assign, fromCallback, sendTo, setup } from 'xstate';
import { handshakeMachine, type HandshakeOutput } from './handshake.ts';
import type { PortCommand, PortEvent } from './serialLink.ts';
import { applianceSessionMachine, type GuestCommandEvent } from './sshSession.ts';

/**
 * One serial-over-TCP connection accepted by the appliance: resync the line
 * (the appliance is the handshake initiator), then run the SSH session over
 * it (machines/sshSession.ts), which tells the connection map and the
 * inventory what the guest reports, and carries the appliance's commands
 * to the guest. When the session ends the link is over; the guest
 * reconnects as a new one.
 */

export interface ApplianceLinkInput {
  linkId: string;
  /** ResourceTable handle of the accepted socket. */
  handle: string;
  /** Seed for the handshake's nonces (randomness is the assembly's job). */
  seed: number;
}

export interface ApplianceLinkContext {
  linkId: string;
  handle: string;
  seed: number;
  leftover?: Uint8Array;
  closeReason?: string;
}

/**
 * GUEST_COMMAND comes from the appliance, which sends one only to a link
 * whose session it knows is up and fails it itself when the link goes down.
 */
export type ApplianceLinkEvent = PortEvent | { type: 'LINE_WRITE'; data: Uint8Array } | GuestCommandEvent;

export const applianceLinkMachine = setup({
  types: {
    context: {} as ApplianceLinkContext,
    events: {} as ApplianceLinkEvent,
    input: {} as ApplianceLinkInput,
  },
  actors: {
    /** The accepted socket: PORT_BYTES / PORT_CLOSED out, WRITE / HAND_OFF in. */
    connection: fromCallback<PortCommand, { handle: string }>(() => {}),
    handshake: handshakeMachine,
    /** The SSH session (machines/sshSession.ts) over the handed-off socket. */
    ssh: applianceSessionMachine,
  },
}).createMachine({
  id: 'applianceLink',
  context: ({ input }) => ({ linkId: input.linkId, handle: input.handle, seed: input.seed }),
  invoke: { id: 'connection', src: 'connection', input: ({ context }) => ({ handle: context.handle }) },
  initial: 'handshaking',
  states: {
    handshaking: {
      invoke: {
        id: 'handshake',
        src: 'handshake',
        input: ({ context }) => ({ role: 'initiator', seed: context.seed }),
        onDone: {
          target: 'session',
          actions: [
            assign({ leftover: ({ event }) => (event.output as HandshakeOutput).leftover }),
            sendTo('connection', { type: 'HAND_OFF' }),
          ],
        },
      },
      on: {
        PORT_BYTES: { actions: sendTo('handshake', ({ event }) => ({ type: 'LINE_BYTES', data: event.data })) },
        LINE_WRITE: { actions: sendTo('connection', ({ event }) => ({ type: 'WRITE', data: event.data })) },
        PORT_CLOSED: { target: 'closed', actions: assign({ closeReason: ({ event }) => event.error ?? 'serial connection closed during the handshake' }) },
      },
    },
    session: {
      invoke: {
        id: 'ssh',
        src: 'ssh',
        input: ({ context }) => ({ linkId: context.linkId, handle: context.handle, leftover: context.leftover ?? new Uint8Array() }),
        // The socket now belongs to ssh2, which reports its end as the session's end.
        onDone: { target: 'closed', actions: assign({ closeReason: ({ event }) => event.output.reason }) },
      },
      on: {
        GUEST_COMMAND: { actions: sendTo('ssh', ({ event }) => event) },
      },
    },
    closed: { type: 'final' },
  },
});
