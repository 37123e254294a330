import { assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { ContainerInfo } from '../shared/wire.ts';
import { handshakeMachine, type HandshakeOutput } from './handshake.ts';
import type { PortCommand, PortEvent } from './serialLink.ts';

/**
 * One serial-over-TCP connection accepted by the appliance: resync the line
 * (the appliance is the handshake initiator), run the SSH client over it,
 * and tell the connection map and the inventory what the guest reports.
 * When the connection ends the link is over; the guest reconnects as a new one.
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
  vm?: string;
  closeReason?: string;
}

export type ApplianceLinkEvent =
  | PortEvent
  | { type: 'LINE_WRITE'; data: Uint8Array }
  | { type: 'SSH_READY'; vm: string; at: string }
  | { type: 'SSH_IDS'; ids: string[] }
  | { type: 'SSH_INFO'; containers: ContainerInfo[] }
  | { type: 'SSH_CLOSED'; reason: string; at: string }
  | { type: 'DROP'; reason: string };

/** What a link tells the rest of the appliance (connection map and inventory). */
export type LinkReport =
  | { type: 'LINK_UP'; linkId: string; vm: string; at: string }
  | { type: 'LINK_IDS'; linkId: string; ids: string[] }
  | { type: 'LINK_INFO'; linkId: string; vm: string; containers: ContainerInfo[] }
  | { type: 'LINK_DOWN'; linkId: string; reason: string; at: string };

export type SshClientCommand = { type: 'QUERY' } | { type: 'CLOSE'; reason: string };
export interface SshClientInput {
  linkId: string;
  handle: string;
  leftover: Uint8Array;
}

function reportOf(linkId: string, vm: string | undefined, event: ApplianceLinkEvent): LinkReport | undefined {
  switch (event.type) {
    case 'SSH_READY':
      return { type: 'LINK_UP', linkId, vm: event.vm, at: event.at };
    case 'SSH_IDS':
      return { type: 'LINK_IDS', linkId, ids: event.ids };
    case 'SSH_INFO':
      return { type: 'LINK_INFO', linkId, vm: vm!, containers: event.containers };
    case 'SSH_CLOSED':
      // A link that never came up was never reported, so there is nothing to take back.
      return vm ? { type: 'LINK_DOWN', linkId, reason: event.reason, at: event.at } : undefined;
    default:
      return undefined;
  }
}

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
    /** ssh2 client over the handed-off socket. */
    ssh: fromCallback<SshClientCommand, SshClientInput>(() => {}),
  },
  actions: {
    /** Tells the appliance (connection map and inventory) what the guest reported. */
    report: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type === 'SSH_READY') enqueue.assign({ vm: event.vm });
      const vm = event.type === 'SSH_READY' ? event.vm : context.vm;
      const report = reportOf(context.linkId, vm, event);
      if (report) enqueue.sendTo(system.get('appliance'), report);
    }),
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
      },
      initial: 'authenticating',
      on: {
        // The socket now belongs to ssh2, which reports its end as SSH_CLOSED.
        SSH_CLOSED: { target: 'closed', actions: [assign({ closeReason: ({ event }) => event.reason }), 'report'] },
        DROP: { actions: sendTo('ssh', ({ event }) => ({ type: 'CLOSE', reason: event.reason })) },
      },
      states: {
        authenticating: {
          on: {
            SSH_READY: { target: 'ready', actions: 'report' },
          },
        },
        ready: {
          // Ask for the full picture once; after that the guest pushes changes.
          entry: sendTo('ssh', { type: 'QUERY' }),
          on: {
            SSH_IDS: { actions: 'report' },
            SSH_INFO: { actions: 'report' },
          },
        },
      },
    },
    closed: { type: 'final' },
  },
});
