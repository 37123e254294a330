import { assign, enqueueActions, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import type { AttachFailureKind } from '../shared/wire.ts';

/**
 * One attach, seen from the appliance: find the link carrying the container,
 * open an `attach` channel on it, release a run-block session, stream output
 * to the user and input to the process, and end with the exit status, an
 * error, or a detach.
 *
 * A link lost mid-stream is not the end: the channel goes back to resolving
 * and reopens on the next link at the offset it has reached, so the user sees
 * every byte once and in order. Output is forwarded only while streaming,
 * never after the exit status.
 */

export type Stream = 'stdout' | 'stderr';
export type { AttachFailureKind };

export interface ContainerChannelInput {
  containerId: string;
  /** Absolute output offset to start from, or 'live' for the current end. */
  offset: number | 'live';
  /** How long to wait for a link carrying the container, per (re)connection. */
  timeoutMs: number;
}

export interface ContainerChannelContext {
  containerId: string;
  timeoutMs: number;
  linkId?: string;
  /** Absolute offset of the next output byte; 'live' until the guest names it. */
  offset: number | 'live';
  /** Bytes received from the user before the channel was open, in order. */
  pendingStdin: Uint8Array[];
  stdinClosed: boolean;
  /** The user reads slower than output comes: every channel opened meanwhile starts paused. */
  userBlocked: boolean;
  size?: { cols: number; rows: number };
  reconnects: number;
  exitCode?: number;
  signal?: string;
  error?: string;
  failure?: AttachFailureKind | 'link';
  outcome?: AttachOutcome['outcome'];
}

/** Events from the user's side (the Docker API client). */
export type UserEvent =
  | { type: 'STDIN'; data: Uint8Array }
  | { type: 'CLOSE_STDIN' }
  | { type: 'RESIZE'; cols: number; rows: number }
  | { type: 'SIGNAL'; signal: string }
  | { type: 'DETACH' }
  | { type: 'USER_BLOCKED' }
  | { type: 'USER_READY' };

/** Events from the SSH channel actor. */
export type ChannelEvent =
  | { type: 'CHANNEL_OPENED'; offset: number }
  | { type: 'CHANNEL_REJECTED'; kind: AttachFailureKind; message: string; exitCode?: number }
  | { type: 'OUTPUT'; stream: Stream; data: Uint8Array }
  | { type: 'EXIT'; exitCode: number; signal?: string }
  | { type: 'CHANNEL_LOST'; reason: string }
  /** The channel's window is full of the user's input / has room again. */
  | { type: 'STDIN_FULL' }
  | { type: 'STDIN_ROOM' };

export type ContainerChannelEvent = UserEvent | ChannelEvent;

/** Commands to the SSH channel actor. */
export type ChannelCommand =
  | { type: 'UNBLOCK' }
  | { type: 'STDIN'; data: Uint8Array }
  | { type: 'CLOSE_STDIN' }
  | { type: 'RESIZE'; cols: number; rows: number }
  | { type: 'SIGNAL'; signal: string }
  | { type: 'PAUSE' }
  | { type: 'RESUME' };

/**
 * Commands to the user's side. ATTACHED also means the user may send input;
 * STDIN_HOLD asks it to send none until STDIN_GO (or the next ATTACHED): the
 * channel is full, or gone and being reopened. So the input waiting in the
 * appliance is at most what one write brings.
 */
export type UserCommand =
  | { type: 'OUTPUT'; stream: Stream; data: Uint8Array }
  | { type: 'ATTACHED' }
  | { type: 'STDIN_HOLD' }
  | { type: 'STDIN_GO' };

/** How an attach ended: the machine's output. */
export interface AttachOutcome {
  outcome: 'exited' | 'failed' | 'detached';
  exitCode?: number;
  signal?: string;
  error?: string;
  failure?: AttachFailureKind | 'link';
}

export interface ChannelActorInput {
  linkId: string;
  containerId: string;
  offset: number | 'live';
}

export const containerChannelMachine = setup({
  types: {
    context: {} as ContainerChannelContext,
    events: {} as ContainerChannelEvent,
    input: {} as ContainerChannelInput,
    output: {} as AttachOutcome,
  },
  actors: {
    /** Asks the connection map for the live link carrying the container. */
    lookup: fromPromise<{ linkId: string }, { containerId: string; timeoutMs: number }>(async () => {
      throw new Error('lookup actor not provided');
    }),
    /** One SSH `attach` channel on a link. */
    channel: fromCallback<ChannelCommand, ChannelActorInput>(() => {}),
    /** The user's stream (a Docker API attach). */
    user: fromCallback<UserCommand>(() => {}),
  },
  guards: {
    exitedOnOpen: ({ event }) => event.type === 'CHANNEL_REJECTED' && event.kind === 'exited',
  },
  actions: {
    queueStdin: assign({
      pendingStdin: ({ context, event }) => (event.type === 'STDIN' && !context.stdinClosed ? [...context.pendingStdin, event.data] : context.pendingStdin),
    }),
    closeStdin: assign({ stdinClosed: true }),
    rememberSize: assign({ size: ({ event }) => (event.type === 'RESIZE' ? { cols: event.cols, rows: event.rows } : undefined) }),
    toUser: sendTo('user', ({ event }) => event as UserCommand),
    /**
     * A (re)opened channel gets, in order: the unblock, the terminal size, the
     * input typed while no channel was open, and the stdin close if the user
     * already half-closed. The guest treats unblock and close-stdin as
     * idempotent, so a reopen after a lost link repeats them safely.
     */
    channelOpened: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CHANNEL_OPENED') return;
      enqueue.assign({ offset: event.offset, pendingStdin: [] });
      if (context.userBlocked) enqueue.sendTo('channel', { type: 'PAUSE' });
      enqueue.sendTo('channel', { type: 'UNBLOCK' });
      if (context.size) enqueue.sendTo('channel', { type: 'RESIZE', ...context.size });
      for (const data of context.pendingStdin) enqueue.sendTo('channel', { type: 'STDIN', data });
      if (context.stdinClosed) enqueue.sendTo('channel', { type: 'CLOSE_STDIN' });
      enqueue.sendTo('user', { type: 'ATTACHED' });
    }),
  },
}).createMachine({
  id: 'containerChannel',
  context: ({ input }) => ({
    containerId: input.containerId,
    timeoutMs: input.timeoutMs,
    offset: input.offset,
    pendingStdin: [],
    stdinClosed: false,
    userBlocked: false,
    reconnects: 0,
  }),
  output: ({ context }) => ({
    outcome: context.outcome!,
    exitCode: context.exitCode,
    signal: context.signal,
    error: context.error,
    failure: context.failure,
  }),
  invoke: { id: 'user', src: 'user' },
  initial: 'resolving',
  on: {
    CLOSE_STDIN: { actions: 'closeStdin' },
    RESIZE: { actions: 'rememberSize' },
    USER_BLOCKED: { actions: assign({ userBlocked: true }) },
    USER_READY: { actions: assign({ userBlocked: false }) },
  },
  states: {
    resolving: {
      invoke: {
        id: 'lookup',
        src: 'lookup',
        input: ({ context }) => ({ containerId: context.containerId, timeoutMs: context.timeoutMs }),
        onDone: { target: 'connected', actions: assign({ linkId: ({ event }) => event.output.linkId }) },
        onError: {
          target: 'failed',
          actions: assign({ failure: 'link', error: ({ event }) => (event.error instanceof Error ? event.error.message : String(event.error)) }),
        },
      },
      on: {
        STDIN: { actions: 'queueStdin' },
        DETACH: 'detached',
      },
    },
    connected: {
      invoke: {
        id: 'channel',
        src: 'channel',
        input: ({ context }) => ({ linkId: context.linkId!, containerId: context.containerId, offset: context.offset }),
      },
      on: {
        // The link died under the channel: find the next one and resume at our offset.
        CHANNEL_LOST: {
          target: 'resolving',
          actions: [assign({ reconnects: ({ context }) => context.reconnects + 1, linkId: undefined }), sendTo('user', { type: 'STDIN_HOLD' })],
        },
        // Leaving `connected` stops the channel actor, which closes the SSH channel;
        // the process and its stdin are left as they are.
        DETACH: 'detached',
      },
      initial: 'opening',
      states: {
        opening: {
          on: {
            STDIN: { actions: 'queueStdin' },
            CHANNEL_OPENED: { target: 'streaming', actions: 'channelOpened' },
            CHANNEL_REJECTED: [
              {
                guard: 'exitedOnOpen',
                target: '#containerChannel.exited',
                actions: assign({ exitCode: ({ event }) => (event.type === 'CHANNEL_REJECTED' ? event.exitCode : undefined) }),
              },
              {
                target: '#containerChannel.failed',
                actions: assign({
                  failure: ({ event }) => (event.type === 'CHANNEL_REJECTED' ? event.kind : undefined),
                  error: ({ event }) => (event.type === 'CHANNEL_REJECTED' ? event.message : undefined),
                }),
              },
            ],
          },
        },
        streaming: {
          on: {
            OUTPUT: {
              actions: [
                assign({ offset: ({ context, event }) => (context.offset as number) + (event as { data: Uint8Array }).data.length }),
                'toUser',
              ],
            },
            STDIN: {
              guard: ({ context }) => !context.stdinClosed,
              actions: sendTo('channel', ({ event }) => event as ChannelCommand),
            },
            CLOSE_STDIN: {
              guard: ({ context }) => !context.stdinClosed,
              actions: ['closeStdin', sendTo('channel', { type: 'CLOSE_STDIN' })],
            },
            RESIZE: { actions: ['rememberSize', sendTo('channel', ({ event }) => event as ChannelCommand)] },
            SIGNAL: { actions: sendTo('channel', ({ event }) => event as ChannelCommand) },
            STDIN_FULL: { actions: sendTo('user', { type: 'STDIN_HOLD' }) },
            STDIN_ROOM: { actions: sendTo('user', { type: 'STDIN_GO' }) },
            USER_BLOCKED: { actions: [assign({ userBlocked: true }), sendTo('channel', { type: 'PAUSE' })] },
            USER_READY: { actions: [assign({ userBlocked: false }), sendTo('channel', { type: 'RESUME' })] },
            EXIT: {
              target: '#containerChannel.exited',
              actions: assign({ exitCode: ({ event }) => event.exitCode, signal: ({ event }) => event.signal }),
            },
          },
        },
      },
    },
    exited: { type: 'final', entry: assign({ outcome: 'exited' }) },
    failed: { type: 'final', entry: assign({ outcome: 'failed' }) },
    detached: { type: 'final', entry: assign({ outcome: 'detached' }) },
  },
});
