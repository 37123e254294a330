/**
 * One process session (the container's main process or an exec): when it may
 * start, what it is doing, and how it ended.
 *
 *   configured ─┬─ runBlock ─→ blocked ──UNBLOCK──→ launching
 *               └────────────────────────────────→ launching
 *   launching ──PROCESS_STARTED──→ running ──PROCESS_EXITED──→ exited (final)
 *   launching ──PROCESS_FAILED───→ failed (final; exit code 126 or 127)
 *   blocked ────STOP─────────────→ exited (final; never started)
 *   launching, running ──STOP──→ stopping ──PROCESS_EXITED──→ exited
 *   stopping.signalled ──stop timeout──→ stopping.killed (SIGKILL to the
 *                                        group and every descendant)
 *
 * The `process` actor (actors/process.ts in the guest; a simulation in the
 * checker) is invoked for the machine's whole life but starts nothing until
 * the machine sends LAUNCH: holding a run-block session is this machine's
 * decision, not the actor's. It is stopped, killing any process group still
 * running, when the machine stops or ends.
 *
 * Notifying the outside: the machine announces SESSION_CHANGED (on entering
 * each state, with the session's view) and SESSION_OUTPUT (every chunk, with
 * its absolute offset, so a checker can verify the order) to its parent (in
 * the guest: the guest machine, which keeps the output log), and also
 * `emit()`s them for whoever holds the actor with no parent (tests, tools)
 * through `actor.on(type, handler)`. It ends in a final state whose `output`
 * is the exit status. The events are plain data and the context holds no
 * actor refs, so the session can be snapshotted and restored (the checker).
 *
 * Stdin is forwarded only for an openStdin session (others have /dev/null or
 * a pty nobody types into) and only once LAUNCH has been sent: before that
 * there is no process to receive it.
 *
 * STOP while blocked: the process never ran, so there is no status to report;
 * the session ends as `exited` with exit code 128 + the stop signal (143 for
 * TERM), no `signal` and no `pid`. That is the status the process would have
 * had had it started and honoured the stop, and it is non-zero on purpose: a
 * command that never ran must not read as a success to `docker wait` or a
 * script's `&&`.
 *
 * STOP once launched: the stop signal goes to the process (as `docker stop`
 * sends it to the container's main process); if it has not exited when the
 * stop timeout (the STOP's own, else the spec's) runs out, the actor is told
 * KILL: SIGKILL to the process group and to every remaining descendant,
 * including those that left the group (tini and dumb-init leave those
 * behind). The session still ends on PROCESS_EXITED, whose status says how
 * it ended (143 if it honoured TERM, 137 if it had to be killed).
 */
import { assign, enqueueActions, fromCallback, sendTo, setup } from 'xstate';
import type { SessionConfig } from '../shared/config.ts';
import type { ContainerInfo } from '../shared/wire.ts';
import type { OutputStream } from '../shared/outputLog.ts';
import { parseSignal, signalExitCode } from '../shared/signals.ts';

/**
 * What the process actor needs to start the process: the session's spec
 * (env: exactly these "KEY=VALUE" entries, plus PATH, HOME, TERM defaults)
 * and the terminal size of a tty session.
 */
export type ProcessInput = Pick<SessionConfig, 'cmd' | 'env' | 'cwd' | 'user' | 'tty' | 'openStdin' | 'privileged'> & {
  sessionId: string;
  cols?: number;
  rows?: number;
};

/**
 * Who a signal is for: the process itself (`docker kill`, the stop signal);
 * its whole process group; or the terminal's foreground process group, as
 * the terminal itself would send Ctrl-C (a tty session's attach: a
 * job-control shell's job, not the shell). Without a terminal, "foreground"
 * means the group.
 */
export type SignalTarget = 'process' | 'group' | 'foreground';

/** Commands from the machine to the process actor. */
export type ProcessCommand =
  | { type: 'LAUNCH' }
  | { type: 'STDIN'; data: Uint8Array }
  | { type: 'CLOSE_STDIN' }
  | { type: 'RESIZE'; cols: number; rows: number }
  /** A canonical signal name without "SIG" (shared/signals.ts), to `target` (see SignalTarget). */
  | { type: 'SIGNAL'; signal: string; target: SignalTarget }
  /** SIGKILL to the process group and to every descendant of the process, in the group or not. */
  | { type: 'KILL' }
  /** Read out what the exited process left in its pipes and report its exit, though others still hold them. */
  | { type: 'FINISH_OUTPUT' }
  /** Stop / restart reading the output: what the process writes then waits in its pipe or pty. */
  | { type: 'PAUSE_OUTPUT' }
  | { type: 'RESUME_OUTPUT' };

/**
 * What the process actor reports. `at` is when the actor saw it happen
 * (ISO 8601): machines keep no clock, so times arrive with the events.
 */
export type ProcessReport =
  | { type: 'PROCESS_STARTED'; pid: number; at?: string }
  | { type: 'PROCESS_OUTPUT'; stream: OutputStream; data: Uint8Array }
  /**
   * After all output has been reported. Exactly one of the two is set: the
   * exit code of a normal exit, or the canonical name of the killing signal.
   */
  | { type: 'PROCESS_EXITED'; exitCode?: number; signal?: string; at?: string }
  /** The process could not be started: 127 command not found, 126 found but not runnable. */
  | { type: 'PROCESS_FAILED'; error: string; exitCode: 126 | 127; at?: string }
  /**
   * The process has exited but its pipes are still open: a descendant it
   * left behind (a daemon) holds them. PROCESS_EXITED follows when they
   * close, or when FINISH_OUTPUT says not to wait for that.
   */
  | { type: 'PROCESS_REAPED' };

/** What a session looks like from outside: its part of the container info. */
export type SessionView = Pick<ContainerInfo, 'state' | 'pid' | 'exitCode' | 'signal' | 'error' | 'startedAt' | 'finishedAt'>;

export type ProcessSessionEvent =
  /** Release a run-block session (the SSH `unblock` channel request). */
  | { type: 'UNBLOCK' }
  /** Stop the session: `signal` (default: the spec's stopSignal), then after `timeout` seconds (default: its stopTimeout) KILL. */
  | { type: 'STOP'; signal?: string; timeout?: number }
  | { type: 'STDIN'; data: Uint8Array }
  | { type: 'CLOSE_STDIN' }
  | { type: 'RESIZE'; cols: number; rows: number }
  /** Any spelling parseSignal accepts; unknown names are ignored. Default target: the foreground group. */
  | { type: 'SIGNAL'; signal: string; target?: SignalTarget }
  /** An attached reader is full: hold the process's output until it has room. */
  | { type: 'PAUSE_OUTPUT' }
  | { type: 'RESUME_OUTPUT' }
  | ProcessReport;

export type ProcessSessionEmitted =
  | { type: 'SESSION_CHANGED'; sessionId: string; view: SessionView }
  | { type: 'SESSION_OUTPUT'; sessionId: string; stream: OutputStream; data: Uint8Array; offset: number };

export interface ProcessSessionInput {
  sessionId: string;
  spec: SessionConfig;
  /** Initial terminal size of a tty session. */
  cols?: number;
  rows?: number;
}

/** The session as the machine tracks it: what it announces (SessionView) but the state, and its spec. */
export interface ProcessSessionContext extends Omit<SessionView, 'state'> {
  sessionId: string;
  spec: SessionConfig;
  /** Current terminal size of a tty session, as last set. */
  size?: { cols: number; rows: number };
  /** Output bytes reported so far: the offset the next output chunk starts at. */
  outputEnd: number;
  /** The stop under way: its signal, and seconds from it to SIGKILL. */
  stopSignal: string;
  stopTimeout: number;
}

export interface ProcessSessionOutput {
  exitCode: number;
  signal?: string;
  error?: string;
}


export const processSessionMachine = setup({
  types: {} as {
    context: ProcessSessionContext;
    events: ProcessSessionEvent;
    input: ProcessSessionInput;
    emitted: ProcessSessionEmitted;
    output: ProcessSessionOutput;
  },
  actors: {
    // Typing placeholder: the assembly provides actors/process.ts, the checker a simulation.
    process: fromCallback<ProcessCommand, ProcessInput>(() => {
      throw new Error('processSessionMachine: provide the "process" actor with .provide({ actors: { process } })');
    }),
  },
  actions: {
    /** Announces the session's view; `state` is the outside name of the state being entered. */
    changed: enqueueActions(({ context, self, enqueue }, params: { state: SessionView['state'] }) => {
      announce(enqueue, self, { type: 'SESSION_CHANGED', sessionId: context.sessionId, view: viewOf(context, params.state) });
    }),
    forwardStdin: sendTo('process', ({ event }) => event as Extract<ProcessSessionEvent, { type: 'STDIN' | 'CLOSE_STDIN' }>),
    forwardSignal: sendTo('process', ({ event }) => {
      const { signal, target = 'foreground' } = event as Extract<ProcessSessionEvent, { type: 'SIGNAL' }>;
      return { type: 'SIGNAL' as const, signal: parseSignal(signal)!, target };
    }),
    sendStopSignal: sendTo('process', ({ context }) => ({ type: 'SIGNAL' as const, signal: context.stopSignal, target: 'process' as const })),
    kill: sendTo('process', { type: 'KILL' as const }),
    recordExit: assign(({ event }) => {
      const exit = event as Extract<ProcessSessionEvent, { type: 'PROCESS_EXITED' }>;
      return {
        finishedAt: exit.at,
        ...(exit.signal === undefined ? { exitCode: exit.exitCode ?? 0 } : { exitCode: signalExitCode(exit.signal), signal: exit.signal }),
      };
    }),
    recordFailure: assign(({ event }) => {
      const failure = event as Extract<ProcessSessionEvent, { type: 'PROCESS_FAILED' }>;
      return { error: failure.error, exitCode: failure.exitCode, finishedAt: failure.at };
    }),
    recordStart: assign(({ event }) => {
      const start = event as Extract<ProcessSessionEvent, { type: 'PROCESS_STARTED' }>;
      return { pid: start.pid, startedAt: start.at };
    }),
    setStop: assign(({ context, event }) => {
      const stop = event as Extract<ProcessSessionEvent, { type: 'STOP' }>;
      return {
        // A signal this machine cannot name keeps the session's own: the guest's SSH server refuses those first.
        stopSignal: (stop.signal === undefined ? undefined : parseSignal(stop.signal)) ?? context.spec.stopSignal,
        stopTimeout: stop.timeout ?? context.spec.stopTimeout,
      };
    }),
  },
  delays: {
    stopTimeout: ({ context }) => context.stopTimeout * 1000,
    /**
     * How long an exited process's pipes may stay open before its exit is
     * reported without them: what it wrote is in them already, and a daemon
     * that inherited them may hold them for good.
     */
    pipeGrace: 100,
  },
  guards: {
    runBlock: ({ context }) => context.spec.runBlock,
    tty: ({ context }) => context.spec.tty,
    openStdin: ({ context }) => context.spec.openStdin,
    knownSignal: ({ event }) => event.type === 'SIGNAL' && parseSignal(event.signal) !== undefined,
  },
}).createMachine({
  id: 'processSession',
  context: ({ input }) => ({
    sessionId: input.sessionId,
    spec: input.spec,
    ...(input.cols !== undefined && input.rows !== undefined ? { size: { cols: input.cols, rows: input.rows } } : {}),
    outputEnd: 0,
    stopSignal: input.spec.stopSignal,
    stopTimeout: input.spec.stopTimeout,
  }),
  invoke: {
    id: 'process',
    src: 'process',
    input: ({ context }) => ({
      sessionId: context.sessionId,
      cmd: context.spec.cmd,
      env: context.spec.env,
      cwd: context.spec.cwd,
      ...(context.spec.user === undefined ? {} : { user: context.spec.user }),
      tty: context.spec.tty,
      openStdin: context.spec.openStdin,
      ...(context.spec.privileged ? { privileged: true } : {}),
      ...context.size,
    }),
  },
  initial: 'configured',
  on: {
    // Handled in every state so that no chunk can be dropped by arriving early.
    PROCESS_OUTPUT: {
      actions: enqueueActions(({ context, event, self, enqueue }) => {
        announce(enqueue, self, { type: 'SESSION_OUTPUT', sessionId: context.sessionId, stream: event.stream, data: event.data, offset: context.outputEnd });
        enqueue.assign({ outputEnd: context.outputEnd + event.data.length });
      }),
    },
    PROCESS_REAPED: { actions: sendTo('process', { type: 'FINISH_OUTPUT' }, { delay: 'pipeGrace', id: 'finishOutput' }) },
    // In any state: the actor applies it to the process when there is one.
    PAUSE_OUTPUT: { actions: sendTo('process', { type: 'PAUSE_OUTPUT' }) },
    RESUME_OUTPUT: { actions: sendTo('process', { type: 'RESUME_OUTPUT' }) },
    // Also before launch: the actor remembers the size and starts the pty with it.
    RESIZE: {
      guard: 'tty',
      actions: [
        assign({ size: ({ event }) => ({ cols: event.cols, rows: event.rows }) }),
        sendTo('process', ({ event }) => event),
      ],
    },
  },
  states: {
    configured: {
      always: [{ guard: 'runBlock', target: 'blocked' }, { target: 'launching' }],
    },
    blocked: {
      entry: { type: 'changed', params: { state: 'blocked' } },
      on: {
        UNBLOCK: 'launching',
        STOP: {
          target: 'exited',
          actions: ['setStop', assign({ exitCode: ({ context }) => signalExitCode(context.stopSignal) })],
        },
      },
    },
    launching: {
      // Not yet running: to the outside it is still a created container.
      entry: [{ type: 'changed', params: { state: 'created' } }, sendTo('process', { type: 'LAUNCH' })],
      on: {
        PROCESS_STARTED: { target: 'running', actions: 'recordStart' },
        PROCESS_FAILED: { target: 'failed', actions: 'recordFailure' },
        // LAUNCH is ahead of the stop signal in the actor's queue.
        STOP: { target: 'stopping', actions: 'setStop' },
        // The actor has LAUNCH ahead of these in its queue, so they reach the
        // process even though PROCESS_STARTED has not come back yet.
        STDIN: { guard: 'openStdin', actions: 'forwardStdin' },
        CLOSE_STDIN: { guard: 'openStdin', actions: 'forwardStdin' },
        SIGNAL: { guard: 'knownSignal', actions: 'forwardSignal' },
      },
    },
    running: {
      entry: { type: 'changed', params: { state: 'running' } },
      on: {
        PROCESS_EXITED: { target: 'exited', actions: 'recordExit' },
        STOP: { target: 'stopping', actions: 'setStop' },
        STDIN: { guard: 'openStdin', actions: 'forwardStdin' },
        CLOSE_STDIN: { guard: 'openStdin', actions: 'forwardStdin' },
        SIGNAL: { guard: 'knownSignal', actions: 'forwardSignal' },
      },
    },
    // Still running to the outside, as in Docker, until the process is gone.
    stopping: {
      entry: 'sendStopSignal',
      initial: 'signalled',
      on: {
        PROCESS_STARTED: { actions: 'recordStart' },
        PROCESS_FAILED: { target: 'failed', actions: 'recordFailure' },
        PROCESS_EXITED: { target: 'exited', actions: 'recordExit' },
        SIGNAL: { guard: 'knownSignal', actions: 'forwardSignal' },
        // Another stop (a second `docker stop`, perhaps with -t 0): its signal again, and its own timeout from now.
        STOP: { target: 'stopping', reenter: true, actions: 'setStop' },
      },
      states: {
        signalled: { after: { stopTimeout: 'killed' } },
        killed: { entry: 'kill' },
      },
    },
    exited: { type: 'final', entry: { type: 'changed', params: { state: 'exited' } } },
    failed: { type: 'final', entry: { type: 'changed', params: { state: 'failed' } } },
  },
  output: ({ context }) => ({
    exitCode: context.exitCode!,
    ...(context.signal === undefined ? {} : { signal: context.signal }),
    ...(context.error === undefined ? {} : { error: context.error }),
  }),
});

/** To the parent when there is one, and to listeners on the actor. */
function announce(
  enqueue: { emit(event: ProcessSessionEmitted): void; sendParent(event: ProcessSessionEmitted): void },
  self: { _parent?: unknown },
  event: ProcessSessionEmitted,
): void {
  if (self._parent) enqueue.sendParent(event);
  enqueue.emit(event);
}

function viewOf(context: ProcessSessionContext, state: SessionView['state']): SessionView {
  const { pid, exitCode, signal, error, startedAt, finishedAt } = context;
  const known = { pid, exitCode, signal, error, startedAt, finishedAt };
  return { state, ...Object.fromEntries(Object.entries(known).filter(([, v]) => v !== undefined)) };
}
