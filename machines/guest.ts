import { assign, enqueueActions, fromCallback, setup } from 'xstate';
import type { GuestConfig, SessionConfig } from '../shared/config.ts';
import type { OutputStream } from '../shared/outputLog.ts';
import type { AttachFailure, ContainerInfo } from '../shared/wire.ts';
import { processSessionMachine, type ProcessSessionEvent, type SessionView } from './processSession.ts';
import { serialLinkMachine } from './serialLink.ts';

export type { SessionView };

/**
 * The guest's root: it owns the container's sessions and the extent of their
 * output logs, and decides what the appliance may see and do over the link:
 * which IDs exist, whether an attach is accepted (and from which offset), and
 * where each output chunk and exit status goes.
 *
 * The bytes themselves are kept by the `outputLog` actor (actors/outputLog.ts):
 * this machine tells it what to append and what to replay to a channel, and
 * keeps only each log's offsets, so its context stays plain data that the
 * model checker can copy and compare.
 *
 * The SSH server actor (registered in the system as `sshServer` while a link
 * is served) asks; this machine answers. Output is fanned out to every
 * channel attached to the session, in log order, and the exit status goes
 * out only after the session's last byte.
 */

export interface AttachedChannel {
  sessionId: string;
  /** The SSH channel's window is full: the session's output is paused for it. */
  blocked: boolean;
}

/** Which bytes a session's output log holds: [start, end) by absolute offset. */
export interface LogExtent {
  start: number;
  end: number;
}

export interface GuestContext {
  config: GuestConfig;
  /** How many times each session has been started again by its restart policy. */
  restarts: Record<string, number>;
  /**
   * Sessions stopped on request, never restarted by their policy (as in
   * Docker): by the API's stop, or by a reload whose config no longer has them.
   */
  stopped: Record<string, 'request' | 'removed'>;
  /** TERM or INT reached PID 1: once the container has stopped, the guest ends. */
  shutdown: boolean;
  sessions: Record<string, SessionView>;
  logs: Record<string, LogExtent>;
  channels: Record<string, AttachedChannel>;
  /** IDs last announced to the appliance, to push only real changes. */
  announced: string;
  seed: number;
}

/** From the process sessions (machines/processSession.ts). */
export type SessionEvent =
  | { type: 'SESSION_CHANGED'; sessionId: string; view: SessionView }
  | { type: 'SESSION_OUTPUT'; sessionId: string; stream: OutputStream; data: Uint8Array; offset: number };

/** From the SSH server actor. */
export type SshServerEvent =
  | { type: 'SSH_SERVING' }
  | { type: 'SSH_ENDED' }
  | { type: 'ATTACH_OPEN'; channelId: string; containerId: string; offset: number | 'live' }
  | { type: 'CHANNEL_UNBLOCK'; channelId: string }
  | { type: 'CHANNEL_STDIN'; channelId: string; data: Uint8Array }
  | { type: 'CHANNEL_CLOSE_STDIN'; channelId: string }
  | { type: 'CHANNEL_RESIZE'; channelId: string; cols: number; rows: number }
  | { type: 'CHANNEL_SIGNAL'; channelId: string; signal: string }
  | { type: 'CHANNEL_BLOCKED'; channelId: string }
  | { type: 'CHANNEL_READY'; channelId: string }
  | { type: 'CHANNEL_CLOSED'; channelId: string }
  /** The API's kill: `signal` (any spelling parseSignal accepts) to the session's process, or to its process group. */
  | { type: 'SESSION_KILL'; sessionId: string; signal: string; group: boolean }
  /** The API's stop: `signal` (default: the session's stopSignal), then SIGKILL after `timeout` seconds (default: its stopTimeout). */
  | { type: 'SESSION_STOP'; sessionId: string; signal?: string; timeout?: number }
  /** The API's exec: a new session in the running container (refused before it gets here if the ID is taken). */
  | { type: 'SESSION_ADD'; sessionId: string; spec: SessionConfig; size?: { cols: number; rows: number } };

/** From the PID 1 entry (guest/main.ts). */
export type InitEvent =
  /** TERM or INT: stop every session, sweep, and end. */
  | { type: 'SHUTDOWN' }
  /** HUP: the config file read again. Sessions it adds start; sessions it removes stop. */
  | { type: 'RELOAD'; config: GuestConfig }
  /** From the sweeper: every process left after the sessions ended is gone (or the wait for it ran out). */
  | { type: 'SWEPT' };

export type GuestEvent = SessionEvent | SshServerEvent | InitEvent | { type: 'RESTART_SESSION'; sessionId: string };

/** What the guest ends with: the primary session's exit status. */
export interface GuestOutput {
  exitCode: number;
}

/** To the SSH server actor. */
export type SshServerCommand =
  /**
   * The current IDs and info (for replies), and what to push: the IDs when
   * they changed, and the info of the sessions that changed.
   */
  | { type: 'CONTAINERS'; ids: string[]; info: ContainerInfo[]; pushIds: boolean; pushInfo: ContainerInfo[] }
  /** The channel opens at `offset`; the output log replays what it holds from there as CHANNEL_OUTPUT. */
  | { type: 'ATTACH_ACCEPT'; channelId: string; offset: number }
  | { type: 'ATTACH_REJECT'; channelId: string; failure: AttachFailure }
  | { type: 'CHANNEL_OUTPUT'; channelId: string; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { type: 'CHANNEL_EXIT'; channelId: string; exitCode: number; signal?: string };

/** To the output log actor. */
export type OutputLogCommand =
  | { type: 'APPEND'; sessionId: string; stream: OutputStream; data: Uint8Array }
  /** Send the session's bytes from `from` to the end to the SSH server as CHANNEL_OUTPUT for `channelId`. */
  | { type: 'REPLAY'; sessionId: string; channelId: string; from: number };

/** To a process session. */
export type SessionCommand = Extract<
  ProcessSessionEvent,
  { type: 'UNBLOCK' | 'STDIN' | 'CLOSE_STDIN' | 'RESIZE' | 'SIGNAL' | 'PAUSE_OUTPUT' | 'RESUME_OUTPUT' }
>;

export interface GuestInput {
  config: GuestConfig;
  /** Seeds the handshake nonces (randomness is the assembly's job). */
  seed: number;
}

const sessionRef = (sessionId: string) => `session:${sessionId}`;

/** Docker's restart back-off: 100 ms, doubled at each restart, at most a minute. */
export function restartDelay(restarts: number): number {
  return Math.min(100 * 2 ** restarts, 60_000);
}

/** Whether a session that just finished is started again, by its policy and how often it already was. */
export function shouldRestart(config: GuestConfig, sessionId: string, view: SessionView, restarts: number, stoppedOnRequest = false): boolean {
  if (sessionId === config.id || stoppedOnRequest) return false;
  const policy = config.sessions[sessionId]?.restart;
  if (!policy || policy.name === 'no') return false;
  if (policy.name === 'always') return true;
  return (view.exitCode ?? 0) !== 0 && (policy.maxRetries === 0 || restarts < policy.maxRetries);
}

/** A log of `capacity` bytes after `bytes` more were appended: the oldest go first. */
export function grow(log: LogExtent, bytes: number, capacity: number): LogExtent {
  const end = log.end + bytes;
  return { start: Math.max(log.start, end - capacity), end };
}
/** Types a command for an actor reached through the system (whose event type xstate cannot know). */
const as = <T>(command: T) => command as T & { type: string };
const finished = (state: SessionView['state']) => state === 'exited' || state === 'failed';

/** IDs the appliance may attach to: running or waiting to start, as in the reference. */
export function liveIds(sessions: Record<string, SessionView>): string[] {
  return Object.entries(sessions)
    .filter(([, view]) => !finished(view.state))
    .map(([id]) => id);
}

export function containerInfo(config: GuestConfig, sessions: Record<string, SessionView>): ContainerInfo[] {
  return Object.entries(sessions).map(([id, view]) => {
    const spec = config.sessions[id]!;
    return {
      id,
      name: id === config.id ? config.name : `${config.name}.${id}`,
      cmd: spec.cmd,
      tty: spec.tty,
      openStdin: spec.openStdin,
      primary: id === config.id,
      hostname: config.hostname,
      ...view,
    };
  });
}

/** Whether an attach to `containerId` from `offset` is accepted, and from where. */
export function decideAttach(
  context: GuestContext,
  containerId: string,
  offset: number | 'live',
): { accept: true; from: number } | { accept: false; failure: AttachFailure } {
  const view = context.sessions[containerId];
  const log = context.logs[containerId];
  if (!view || !log) return { accept: false, failure: { kind: 'unknown-id', message: `unknown container ID ${containerId}` } };
  if (view.state === 'failed') {
    return { accept: false, failure: { kind: 'launch-failed', message: view.error ?? `container ${containerId} failed to launch` } };
  }
  // An offset past the end belongs to an earlier log (the guest restarted and
  // counts from 0 again): everything this log holds is new to the reader. An
  // offset the log no longer holds starts at its oldest byte.
  const from = offset === 'live' ? log.end : offset > log.end ? log.start : Math.max(offset, log.start);
  if (view.state === 'exited' && from >= log.end) {
    return {
      accept: false,
      failure: { kind: 'exited', message: `container ${containerId} exited with code ${view.exitCode}`, exitCode: view.exitCode ?? 0 },
    };
  }
  return { accept: true, from };
}

export const guestMachine = setup({
  types: {
    context: {} as GuestContext,
    events: {} as GuestEvent,
    input: {} as GuestInput,
    output: {} as GuestOutput,
  },
  delays: {
    /** How long the sweep may wait for what it killed to be reaped. */
    sweepLimit: 5000,
  },
  guards: {
    primaryEnded: ({ context }) => finished(context.sessions[context.config.id]!.state),
    allEnded: ({ context }) => Object.values(context.sessions).every((view) => finished(view.state)),
    shutdownRequested: ({ context }) => context.shutdown,
  },
  actors: {
    /** One process session; it tells us SESSION_CHANGED and SESSION_OUTPUT. */
    session: processSessionMachine,
    /** Keeps every session's output bytes (actors/outputLog.ts); see OutputLogCommand. */
    outputLog: fromCallback<OutputLogCommand>(() => {}),
    /** The serial link (machines/serialLink.ts with the real port and SSH server). */
    link: serialLinkMachine,
    /**
     * Once every session has ended: SIGKILL whatever processes are left (a
     * double-forked daemon, an orphan), and tell SWEPT once they are reaped.
     */
    sweeper: fromCallback(() => {}),
  },
  actions: {
    startSessions: enqueueActions(({ context, enqueue }) => {
      for (const [sessionId, spec] of Object.entries(context.config.sessions)) {
        enqueue.spawnChild('session', { id: sessionRef(sessionId), systemId: sessionRef(sessionId), input: { sessionId, spec } });
      }
    }),
    /** Every session still live gets STOP: its stop signal, then SIGKILL after its stop timeout. */
    stopSessions: enqueueActions(({ context, enqueue, system }) => {
      for (const [sessionId, view] of Object.entries(context.sessions)) {
        const session = system.get(sessionRef(sessionId));
        if (session && !finished(view.state)) enqueue.sendTo(session, as<ProcessSessionEvent>({ type: 'STOP' }));
      }
    }),
    requestShutdown: assign({ shutdown: true }),
    /** A restart policy says again: after the back-off, RESTART_SESSION. */
    scheduleRestart: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SESSION_CHANGED' || !finished(event.view.state)) return;
      const restarts = context.restarts[event.sessionId] ?? 0;
      if (!shouldRestart(context.config, event.sessionId, event.view, restarts, event.sessionId in context.stopped)) return;
      enqueue.raise({ type: 'RESTART_SESSION', sessionId: event.sessionId }, { id: `restart:${event.sessionId}`, delay: restartDelay(restarts) });
    }),
    restartSession: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RESTART_SESSION') return;
      const { sessionId } = event;
      const spec = context.config.sessions[sessionId]!;
      // The ended session's actor still holds the name; its log goes on from where it was.
      enqueue.stopChild(sessionRef(sessionId));
      enqueue.assign({
        restarts: { ...context.restarts, [sessionId]: (context.restarts[sessionId] ?? 0) + 1 },
        sessions: { ...context.sessions, [sessionId]: { state: 'created' } },
      });
      enqueue.spawnChild('session', { id: sessionRef(sessionId), systemId: sessionRef(sessionId), input: { sessionId, spec } });
    }),
    /**
     * A new config: sessions it adds start, sessions it no longer has stop
     * (and stay listed as exited, their logs kept). Sessions in both keep
     * running as they are (a changed command takes a stop and a start under
     * a new ID, as Docker's exec would); an ID added back once its session
     * has ended starts again with the new spec, its log going on. The rest
     * of the config (ID, name, hostname, keys, device) is fixed at boot.
     */
    reload: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'RELOAD') return;
      const next = event.config.sessions;
      const stopped = { ...context.stopped };
      for (const [sessionId, view] of Object.entries(context.sessions)) {
        const session = system.get(sessionRef(sessionId));
        if (!(sessionId in next) && sessionId !== context.config.id && session && !finished(view.state)) {
          enqueue.sendTo(session, as<ProcessSessionEvent>({ type: 'STOP' }));
          stopped[sessionId] = 'removed';
        }
      }
      const starting = Object.keys(next).filter((id) => !(id in context.sessions)
        || (context.stopped[id] === 'removed' && finished(context.sessions[id]!.state)));
      const sessions = { ...context.sessions };
      const logs = { ...context.logs };
      for (const sessionId of starting) {
        delete stopped[sessionId];
        sessions[sessionId] = { state: 'created' };
        logs[sessionId] ??= { start: 0, end: 0 };
        // An ended session's actor still holds the name.
        enqueue.stopChild(sessionRef(sessionId));
        enqueue.spawnChild('session', { id: sessionRef(sessionId), systemId: sessionRef(sessionId), input: { sessionId, spec: next[sessionId]! } });
      }
      const config = { ...context.config, sessions: { ...context.config.sessions, ...Object.fromEntries(starting.map((id) => [id, next[id]!])) } };
      enqueue.assign({ config, sessions, logs, stopped });
    }),
    /** An exec: its session starts now, with a log of its own, and stays listed once it has ended. */
    addSession: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SESSION_ADD' || event.sessionId in context.sessions) return;
      const { sessionId, spec, size } = event;
      enqueue.spawnChild('session', { id: sessionRef(sessionId), systemId: sessionRef(sessionId), input: { sessionId, spec, ...size } });
      enqueue.assign({
        config: { ...context.config, sessions: { ...context.config.sessions, [sessionId]: spec } },
        sessions: { ...context.sessions, [sessionId]: { state: 'created' } },
        logs: { ...context.logs, [sessionId]: { start: 0, end: 0 } },
      });
    }),
    /** The API's kill and stop, for a session that exists. */
    killSession: enqueueActions(({ event, enqueue, system }) => {
      if (event.type !== 'SESSION_KILL') return;
      const session = system.get(sessionRef(event.sessionId));
      if (session) enqueue.sendTo(session, as<ProcessSessionEvent>({ type: 'SIGNAL', signal: event.signal, target: event.group ? 'group' : 'process' }));
    }),
    stopSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_STOP') return;
      const session = system.get(sessionRef(event.sessionId));
      if (!session) return;
      enqueue.assign({ stopped: { ...context.stopped, [event.sessionId]: 'request' } });
      const { signal, timeout } = event;
      enqueue.sendTo(session, as<ProcessSessionEvent>({ type: 'STOP', ...(signal === undefined ? {} : { signal }), ...(timeout === undefined ? {} : { timeout }) }));
    }),
    /** Tells the SSH server what changed, so it answers and pushes from fresh data. */
    announce: enqueueActions(({ context, event, enqueue, system }) => {
      const server = system.get('sshServer');
      const ids = liveIds(context.sessions);
      const key = ids.join(',');
      enqueue.assign({ announced: key });
      if (!server) return;
      const info = containerInfo(context.config, context.sessions);
      // A new SSH session starts from a query, so only changes are pushed.
      const pushInfo = event.type === 'SESSION_CHANGED' ? info.filter((i) => i.id === event.sessionId) : [];
      enqueue.sendTo(server, as<SshServerCommand>({ type: 'CONTAINERS', ids, info, pushIds: event.type === 'SESSION_CHANGED' && key !== context.announced, pushInfo }));
    }),
    sessionChanged: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_CHANGED') return;
      const sessions = { ...context.sessions, [event.sessionId]: event.view };
      enqueue.assign({ sessions });
      if (!finished(event.view.state)) return;
      // The session's last byte has been fanned out already (the process actor
      // reports the exit after the end of its output), so the status goes last.
      const server = system.get('sshServer');
      const exitCode = event.view.exitCode ?? 0;
      const channels = { ...context.channels };
      for (const [channelId, channel] of Object.entries(context.channels)) {
        if (channel.sessionId !== event.sessionId) continue;
        if (server) enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_EXIT', channelId, exitCode, signal: event.view.signal }));
        delete channels[channelId];
      }
      enqueue.assign({ channels });
    }),
    sessionOutput: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_OUTPUT') return;
      const log = context.logs[event.sessionId];
      if (!log) return;
      enqueue.assign({ logs: { ...context.logs, [event.sessionId]: grow(log, event.data.length, context.config.outputLogBytes) } });
      enqueue.sendTo('outputLog', { type: 'APPEND', sessionId: event.sessionId, stream: event.stream, data: event.data });
      const server = system.get('sshServer');
      if (!server) return;
      for (const [channelId, channel] of Object.entries(context.channels)) {
        if (channel.sessionId !== event.sessionId) continue;
        enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_OUTPUT', channelId, stream: event.stream, data: event.data }));
      }
    }),
    attachOpen: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'ATTACH_OPEN') return;
      const server = system.get('sshServer');
      if (!server) return;
      const decision = decideAttach(context, event.containerId, event.offset);
      if (!decision.accept) {
        enqueue.sendTo(server, as<SshServerCommand>({ type: 'ATTACH_REJECT', channelId: event.channelId, failure: decision.failure }));
        return;
      }
      enqueue.sendTo(server, as<SshServerCommand>({ type: 'ATTACH_ACCEPT', channelId: event.channelId, offset: decision.from }));
      // The replay reaches the server before any output this machine forwards later.
      enqueue.sendTo('outputLog', { type: 'REPLAY', sessionId: event.containerId, channelId: event.channelId, from: decision.from });
      const view = context.sessions[event.containerId]!;
      if (view.state === 'exited') {
        // Everything left to say is in the replay: the status follows it.
        enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_EXIT', channelId: event.channelId, exitCode: view.exitCode ?? 0, signal: view.signal }));
        return;
      }
      enqueue.assign({ channels: { ...context.channels, [event.channelId]: { sessionId: event.containerId, blocked: false } } });
    }),
    toSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (!('channelId' in event)) return;
      const channel = context.channels[event.channelId];
      if (!channel) return;
      const session = system.get(sessionRef(channel.sessionId));
      if (!session) return;
      const command = sessionCommandOf(event);
      if (command) enqueue.sendTo(session, command);
    }),
    /** Output pauses while any attached channel of the session is full: no byte is dropped for a slow reader. */
    flowControl: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'CHANNEL_BLOCKED' && event.type !== 'CHANNEL_READY' && event.type !== 'CHANNEL_CLOSED') return;
      const channel = context.channels[event.channelId];
      if (!channel) return;
      const channels = { ...context.channels };
      if (event.type === 'CHANNEL_CLOSED') delete channels[event.channelId];
      else channels[event.channelId] = { ...channel, blocked: event.type === 'CHANNEL_BLOCKED' };
      const wasBlocked = Object.values(context.channels).some((c) => c.sessionId === channel.sessionId && c.blocked);
      const isBlocked = Object.values(channels).some((c) => c.sessionId === channel.sessionId && c.blocked);
      enqueue.assign({ channels });
      const session = system.get(sessionRef(channel.sessionId));
      if (session && wasBlocked !== isBlocked) enqueue.sendTo(session, as<SessionCommand>({ type: isBlocked ? 'PAUSE_OUTPUT' : 'RESUME_OUTPUT' }));
    }),
    /** The link is gone and with it every channel; paused sessions go on, their output is logged. */
    linkEnded: enqueueActions(({ context, enqueue, system }) => {
      const paused = new Set(Object.values(context.channels).filter((c) => c.blocked).map((c) => c.sessionId));
      for (const sessionId of paused) {
        const session = system.get(sessionRef(sessionId));
        if (session) enqueue.sendTo(session, as<SessionCommand>({ type: 'RESUME_OUTPUT' }));
      }
      enqueue.assign({ channels: {} });
    }),
  },
}).createMachine({
  id: 'guest',
  context: ({ input }) => ({
    config: input.config,
    sessions: Object.fromEntries(Object.keys(input.config.sessions).map((id) => [id, { state: 'created' as const }])),
    logs: Object.fromEntries(Object.keys(input.config.sessions).map((id) => [id, { start: 0, end: 0 }])),
    channels: {},
    announced: '',
    seed: input.seed,
    restarts: {},
    stopped: {},
    shutdown: false,
  }),
  entry: 'startSessions',
  invoke: [
    { id: 'outputLog', src: 'outputLog' },
    { id: 'link', src: 'link', input: ({ context }) => ({ device: context.config.serial.device, seed: context.seed }) },
  ],
  /**
   * The container's life. It runs until its primary session ends or PID 1
   * is told to shut down; then every other session is stopped (execs end
   * with their container, as in Docker), and once all have ended the sweeper
   * kills and reaps whatever is left. A stopped container's guest goes on
   * serving its link (status, logs) until it is shut down.
   */
  initial: 'running',
  states: {
    running: {
      always: { guard: 'primaryEnded', target: 'stopping' },
      on: {
        SHUTDOWN: { target: 'stopping', actions: 'requestShutdown' },
        SESSION_CHANGED: { actions: ['sessionChanged', 'announce', 'scheduleRestart'] },
        RESTART_SESSION: { actions: 'restartSession' },
        RELOAD: { actions: 'reload' },
        SESSION_ADD: { actions: 'addSession' },
      },
    },
    stopping: {
      entry: 'stopSessions',
      always: { guard: 'allEnded', target: 'sweeping' },
      on: { SHUTDOWN: { actions: 'requestShutdown' } },
    },
    // Bounded: a process in uninterruptible sleep must not hold the VM up forever.
    sweeping: {
      invoke: { id: 'sweeper', src: 'sweeper' },
      after: { sweepLimit: 'stopped' },
      on: {
        SWEPT: 'stopped',
        SHUTDOWN: { actions: 'requestShutdown' },
      },
    },
    stopped: {
      always: { guard: 'shutdownRequested', target: 'done' },
      on: { SHUTDOWN: 'done' },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ exitCode: context.sessions[context.config.id]!.exitCode ?? 0 }),
  on: {
    SESSION_CHANGED: { actions: ['sessionChanged', 'announce'] },
    SESSION_OUTPUT: { actions: 'sessionOutput' },
    SSH_SERVING: { actions: [assign({ announced: '' }), 'announce'] },
    SSH_ENDED: { actions: 'linkEnded' },
    ATTACH_OPEN: { actions: 'attachOpen' },
    CHANNEL_UNBLOCK: { actions: 'toSession' },
    CHANNEL_STDIN: { actions: 'toSession' },
    CHANNEL_CLOSE_STDIN: { actions: 'toSession' },
    CHANNEL_RESIZE: { actions: 'toSession' },
    CHANNEL_SIGNAL: { actions: 'toSession' },
    CHANNEL_BLOCKED: { actions: 'flowControl' },
    CHANNEL_READY: { actions: 'flowControl' },
    CHANNEL_CLOSED: { actions: 'flowControl' },
    SESSION_KILL: { actions: 'killSession' },
    SESSION_STOP: { actions: 'stopSession' },
  },
});

function sessionCommandOf(event: SshServerEvent): SessionCommand | undefined {
  switch (event.type) {
    case 'CHANNEL_UNBLOCK':
      return { type: 'UNBLOCK' };
    case 'CHANNEL_STDIN':
      return { type: 'STDIN', data: event.data };
    case 'CHANNEL_CLOSE_STDIN':
      return { type: 'CLOSE_STDIN' };
    case 'CHANNEL_RESIZE':
      return { type: 'RESIZE', cols: event.cols, rows: event.rows };
    case 'CHANNEL_SIGNAL':
      return { type: 'SIGNAL', signal: event.signal, target: 'foreground' };
    default:
      return undefined;
  }
}
