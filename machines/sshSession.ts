import { assign, enqueueActions, fromCallback, sendParent, sendTo, setup, type EventObject } from 'xstate';
import type { ContainerInfo, RequestFailureKind } from '../shared/wire.ts';
import type { SshInput } from './serialLink.ts';
import type { SessionConfig } from '../shared/config.ts';

/**
 * One SSH session over a resynced line, at each end. The ssh2 server and
 * client are actors; these machines hold the session's life (authenticating,
 * serving, closed) and decide whom to tell what.
 */

/** The same silence can strike before SSH is up: the line handshake proved a live peer, so SSH's own takes well under this. */
export const DEFAULT_READY_TIMEOUT_MS = 10_000;

// ---- guest: the SSH server ----------------------------------------------------

/** What the guest's SSH server actor reports. */
export type GuestServerEvent =
  | { type: 'SSH_AUTHENTICATED' }
  /** A client offered a key or user the config does not authorize. */
  | { type: 'SSH_AUTH_REFUSED'; user: string; method: string }
  | { type: 'SSH_ENDED'; reason: string };

export interface GuestSessionContext extends SshInput {
  refusals: number;
  reason?: string;
}

/**
 * The guest's session: it tells the guest machine when it serves (so the
 * guest hands it the container IDs) and when it ended (so the guest forgets
 * the channels), and tells the serial link when to start over.
 *
 * A client that has not authenticated within DEFAULT_READY_TIMEOUT_MS ends
 * the session too: whatever holds a line that handshook on this side only
 * (the server actor already ends one whose first bytes are not SSH), the
 * guest never waits for good on an appliance that is not there.
 */
export const guestSessionMachine = setup({
  types: {
    context: {} as GuestSessionContext,
    events: {} as GuestServerEvent,
    input: {} as SshInput,
  },
  actors: {
    /** actors/sshServer.ts: ssh2 over the handed-off line; the guest machine addresses it as `sshServer`. */
    server: fromCallback<EventObject, SshInput>(() => {}),
  },
  delays: {
    authentication: () => DEFAULT_READY_TIMEOUT_MS,
  },
  actions: {
    tellGuest: enqueueActions(({ enqueue, system }, params: { type: 'SSH_SERVING' | 'SSH_ENDED' }) => {
      const guest = system.get('guest');
      if (guest) enqueue.sendTo(guest, params);
    }),
  },
}).createMachine({
  id: 'guestSession',
  context: ({ input }) => ({ ...input, refusals: 0 }),
  invoke: {
    id: 'server',
    src: 'server',
    // The guest machine reaches the SSH server of the current link by this name.
    systemId: 'sshServer',
    input: ({ context }) => ({ portHandle: context.portHandle, leftover: context.leftover }),
  },
  initial: 'authenticating',
  on: {
    SSH_ENDED: { target: '.closed', actions: assign({ reason: ({ event }) => event.reason }) },
  },
  states: {
    authenticating: {
      on: {
        SSH_AUTHENTICATED: 'serving',
        SSH_AUTH_REFUSED: { actions: assign({ refusals: ({ context }) => context.refusals + 1 }) },
      },
      after: {
        authentication: {
          target: 'closed',
          actions: assign({ reason: `no SSH client authenticated within ${DEFAULT_READY_TIMEOUT_MS} ms: starting the line over` }),
        },
      },
    },
    serving: {
      entry: { type: 'tellGuest', params: { type: 'SSH_SERVING' } },
    },
    closed: {
      type: 'final',
      entry: [
        { type: 'tellGuest', params: { type: 'SSH_ENDED' } },
        sendParent(({ context }) => ({ type: 'SSH_CLOSED', reason: context.reason ?? 'ssh session ended' })),
      ],
    },
  },
});

// ---- appliance: the SSH client ------------------------------------------------

export interface ApplianceSessionInput {
  linkId: string;
  /** ResourceTable handle of the handed-off socket. */
  handle: string;
  leftover: Uint8Array;
  /** How long a quiet session waits before asking the guest whether it is there. */
  keepaliveMs?: number;
  /** How long the guest has to answer before the session is given up. */
  keepaliveTimeoutMs?: number;
  /** How long SSH's own handshake and authentication may take. */
  readyTimeoutMs?: number;
}

/**
 * A serial line carries no hang-up: a guest whose SSH session ended (noise
 * on the line broke it) waits for a new handshake while this end still
 * believes in the session, and nothing but a question finds out. Asked every
 * 2 s, given 3 s to answer, a dead session is noticed within 5 s.
 */
export const DEFAULT_KEEPALIVE_MS = 2000;
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 3000;

/** What the Docker API asks of a guest: `kill@tether`, `stop@tether` and `exec@tether` (docs/PROTOCOL.md). */
export type GuestCommand =
  | { kind: 'kill'; containerId: string; signal: string; group: boolean }
  | { kind: 'stop'; containerId: string; signal?: string; timeout?: number }
  | { kind: 'exec'; containerId: string; sessionId: string; spec: SessionConfig; size?: { cols: number; rows: number } };

/** Why a command was not done: the guest's refusal, or `link` when no answer could come. */
export interface CommandFailure {
  kind: RequestFailureKind | 'link';
  message: string;
}

export type GuestCommandResult = { ok: true } | { ok: false; failure: CommandFailure };

/** What the appliance's SSH client actor reports. */
export type ApplianceClientEvent =
  /**
   * The guest's host key named containerVM `vm`, and authentication
   * succeeded; `assigned`: the container and session IDs the trust store
   * assigned to that VM (appliance/trust.ts), the only ones it may report.
   */
  | { type: 'SSH_READY'; vm: string; assigned: string[]; at: string }
  /** The trust store now assigns the VM these IDs, more than it did: its launcher assigned some since (a reloaded config's new sessions). */
  | { type: 'SSH_ASSIGNED'; assigned: string[] }
  /** The guest answered a keepalive. */
  | { type: 'SSH_ALIVE' }
  | { type: 'SSH_IDS'; ids: string[] }
  | { type: 'SSH_INFO'; containers: ContainerInfo[] }
  /** How the guest answered a COMMAND. */
  | { type: 'SSH_COMMAND_DONE'; requestId: string; result: GuestCommandResult }
  | { type: 'SSH_CLOSED'; reason: string; at: string };

/** A command for the guest on this session's link, from the appliance (through the link machine). */
export type GuestCommandEvent = { type: 'GUEST_COMMAND'; requestId: string; command: GuestCommand };

export type ApplianceSessionEvent = ApplianceClientEvent | GuestCommandEvent;

export type SshClientCommand =
  | { type: 'QUERY' }
  /** Send the command to the guest; the answer comes back as SSH_COMMAND_DONE. */
  | { type: 'COMMAND'; requestId: string; command: GuestCommand }
  /** Ask the guest anything that needs an answer; any answer is SSH_ALIVE. */
  | { type: 'KEEPALIVE' }
  /** End the connection; it is reported as SSH_CLOSED with this reason. */
  | { type: 'END'; reason: string };

/** What a session tells the rest of the appliance (connection map and inventory). */
export type LinkReport =
  | { type: 'LINK_UP'; linkId: string; vm: string; assigned: string[]; at: string }
  | { type: 'LINK_IDS'; linkId: string; ids: string[] }
  | { type: 'LINK_ASSIGNED'; linkId: string; vm: string; assigned: string[] }
  | { type: 'LINK_INFO'; linkId: string; vm: string; containers: ContainerInfo[] }
  | { type: 'LINK_COMMAND_DONE'; linkId: string; requestId: string; result: GuestCommandResult }
  | { type: 'LINK_DOWN'; linkId: string; reason: string; at: string };

export interface ApplianceSessionContext {
  linkId: string;
  handle: string;
  leftover: Uint8Array;
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  readyTimeoutMs: number;
  vm?: string;
  reason?: string;
}

function reportOf(linkId: string, vm: string | undefined, event: ApplianceClientEvent): LinkReport | undefined {
  switch (event.type) {
    case 'SSH_READY':
      return { type: 'LINK_UP', linkId, vm: event.vm, assigned: event.assigned, at: event.at };
    case 'SSH_IDS':
      return { type: 'LINK_IDS', linkId, ids: event.ids };
    case 'SSH_ASSIGNED':
      return { type: 'LINK_ASSIGNED', linkId, vm: vm!, assigned: event.assigned };
    case 'SSH_INFO':
      return { type: 'LINK_INFO', linkId, vm: vm!, containers: event.containers };
    case 'SSH_COMMAND_DONE':
      return { type: 'LINK_COMMAND_DONE', linkId, requestId: event.requestId, result: event.result };
    case 'SSH_CLOSED':
      // A link that never came up was never reported, so there is nothing to take back.
      return vm ? { type: 'LINK_DOWN', linkId, reason: event.reason, at: event.at } : undefined;
    case 'SSH_ALIVE':
      return undefined;
  }
}

/**
 * The appliance's session: once the guest is authenticated (its host key
 * names the containerVM), ask for the full picture once, then relay what the
 * guest pushes to the appliance; while it is ready, carry the appliance's
 * commands to the guest and their answers back, ask the guest for a
 * keepalive answer when the session is quiet and end the session when none
 * comes; on the end, take the link back (the appliance fails the commands
 * still unanswered then).
 */
export const applianceSessionMachine = setup({
  types: {
    context: {} as ApplianceSessionContext,
    events: {} as ApplianceSessionEvent,
    input: {} as ApplianceSessionInput,
    output: {} as { reason: string },
  },
  actors: {
    /** actors/sshClient.ts: ssh2 client over the handed-off socket. */
    client: fromCallback<SshClientCommand, ApplianceSessionInput>(() => {}),
  },
  delays: {
    keepalive: ({ context }) => context.keepaliveMs,
    keepaliveTimeout: ({ context }) => context.keepaliveTimeoutMs,
    readyTimeout: ({ context }) => context.readyTimeoutMs,
  },
  actions: {
    report: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type === 'GUEST_COMMAND') return;
      if (event.type === 'SSH_READY') enqueue.assign({ vm: event.vm });
      const report = reportOf(context.linkId, event.type === 'SSH_READY' ? event.vm : context.vm, event);
      if (report) enqueue.sendTo(system.get('appliance'), report);
    }),
  },
}).createMachine({
  id: 'applianceSession',
  context: ({ input }) => ({
    ...input,
    keepaliveMs: input.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
    keepaliveTimeoutMs: input.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    readyTimeoutMs: input.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
  }),
  invoke: { id: 'client', src: 'client', input: ({ context }) => ({ linkId: context.linkId, handle: context.handle, leftover: context.leftover }) },
  initial: 'authenticating',
  on: {
    SSH_CLOSED: { target: '.closed', actions: [assign({ reason: ({ event }) => event.reason }), 'report'] },
  },
  states: {
    authenticating: {
      on: { SSH_READY: { target: 'ready', actions: 'report' } },
      after: {
        readyTimeout: {
          actions: sendTo('client', ({ context }): SshClientCommand => ({
            type: 'END',
            reason: `SSH was not up within ${context.readyTimeoutMs} ms`,
          })),
        },
      },
    },
    ready: {
      entry: sendTo('client', { type: 'QUERY' }),
      on: {
        SSH_IDS: { actions: 'report' },
        SSH_ASSIGNED: { actions: 'report' },
        SSH_INFO: { actions: 'report' },
        GUEST_COMMAND: {
          actions: sendTo('client', ({ event }): SshClientCommand => ({ type: 'COMMAND', requestId: event.requestId, command: event.command })),
        },
        SSH_COMMAND_DONE: { actions: 'report' },
      },
      initial: 'quiet',
      states: {
        quiet: {
          after: { keepalive: 'asking' },
        },
        asking: {
          entry: sendTo('client', { type: 'KEEPALIVE' }),
          on: { SSH_ALIVE: 'quiet' },
          after: {
            keepaliveTimeout: {
              actions: sendTo('client', ({ context }): SshClientCommand => ({
                type: 'END',
                reason: `the guest did not answer a keepalive within ${context.keepaliveTimeoutMs} ms`,
              })),
            },
          },
        },
      },
    },
    closed: { type: 'final' },
  },
  output: ({ context }) => ({ reason: context.reason ?? 'ssh session ended' }),
});
