import { assign, enqueueActions, fromCallback, setup, type AnyActorRef } from 'xstate';
import type { GuestConfig, SessionConfig } from '../shared/config.ts';
import type { OutputStream } from '../shared/outputLog.ts';
import type { AttachFailure, ContainerInfo, RequestFailure } from '../shared/wire.ts';
import { execRefusal, killRefusal, stopRefusal } from './guestRequests.ts';
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
 *
 * Flow control (docs/PROTOCOL.md, "Backpressure"). Every byte goes to the
 * output log, which no reader holds up. A reader whose channel's window is
 * full falls behind and is fed from the log a piece at a time as its window
 * opens, until it has caught up and goes live again. A reader half a log
 * behind holds the session's output (the process blocks on its pipe, as
 * under any slow reader of a pipe), so that it loses nothing while it keeps
 * reading; one that holds it and reads nothing for STALL_LIMIT_MS is cut
 * loose: the output goes on, and it may lose what the log drops before it
 * reads it.
 */

/**
 * One attached SSH channel. It is live (each new chunk of its session goes
 * straight to it) or behind (it is owed the log's bytes from `behind`, which
 * the output log replays to it in pieces).
 */
export interface AttachedChannel {
  sessionId: string;
  /** The SSH channel's window is full: nothing more is sent to it until it drains. */
  blocked: boolean;
  /** The offset of the first byte it is owed from the log; absent while it is live. */
  behind?: number;
  /** A replay piece is out; REPLAYED tells where it ended. */
  replaying: boolean;
  /** It is half a log behind: its session's output is held for it, and its stall timer runs. */
  holding: boolean;
  /** It held the output and read nothing for STALL_LIMIT_MS: it holds nothing until it has caught up. */
  loose: boolean;
  /** Its session has ended: the status goes once the channel has every byte. */
  exit?: { exitCode: number; signal?: string };
}

/** How long a reader may hold its session's output without reading anything before it is cut loose. */
export const STALL_LIMIT_MS = 10_000;

/** A reader this far behind holds its session's output: half the log, leaving the other half for what is already on its way. */
export const holdBytes = (capacity: number) => Math.floor(capacity / 2);

/** Whether `channel` holds its session's output (see AttachedChannel.holding). */
function holds(channel: AttachedChannel, log: LogExtent, capacity: number): boolean {
  return !channel.loose && channel.behind !== undefined && log.end - channel.behind >= holdBytes(capacity);
}

/**
 * The most a channel that is behind is sent in one replay piece: an eighth
 * of its SSH window (2 MiB), so that pieces keep the window busy while a
 * reader catching up from a long log costs the guest one piece of memory,
 * not the log.
 */
export const REPLAY_PIECE_BYTES = 256 * 1024;

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
  /** Sessions whose output is held for a reader that is behind. */
  held: Record<string, true>;
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
  /**
   * The appliance's requests (kill@tether, stop@tether, exec@tether). Each is
   * answered with REQUEST_ANSWER under its `requestId`: accepted, or refused
   * with the reason (machines/guestRequests.ts).
   *
   * Kill: `signal` (any spelling parseSignal accepts) to the session's process, or to its process group.
   */
  | { type: 'SESSION_KILL'; requestId: string; sessionId: string; signal: string; group: boolean }
  /** Stop: `signal` (default: the session's stopSignal), then SIGKILL after `timeout` seconds (default: its stopTimeout). */
  | { type: 'SESSION_STOP'; requestId: string; sessionId: string; signal?: string; timeout?: number }
  /** Exec: a new session in the running container `containerId`. */
  | { type: 'SESSION_ADD'; requestId: string; containerId: string; sessionId: string; spec: SessionConfig; size?: { cols: number; rows: number } };

/** From the PID 1 entry (guest/main.ts). */
export type InitEvent =
  /** TERM or INT: stop every session, sweep, and end. */
  | { type: 'SHUTDOWN' }
  /** HUP: the config file read again. Sessions it adds start; sessions it removes stop. */
  | { type: 'RELOAD'; config: GuestConfig }
  /** From the sweeper: every process left after the sessions ended is gone (or the wait for it ran out). */
  | { type: 'SWEPT' };

/** From the output log actor: a replay piece for `channelId` has gone to the SSH server, up to offset `to`. */
export type OutputLogEvent = { type: 'REPLAYED'; channelId: string; to: number };

export type GuestEvent =
  | SessionEvent
  | SshServerEvent
  | InitEvent
  | OutputLogEvent
  | { type: 'RESTART_SESSION'; sessionId: string }
  /** A channel's stall timer: it has held its session's output for STALL_LIMIT_MS without reading. */
  | { type: 'CHANNEL_STALLED'; channelId: string };

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
  | { type: 'CHANNEL_EXIT'; channelId: string; exitCode: number; signal?: string }
  /** The answer to SESSION_KILL, SESSION_STOP or SESSION_ADD: no failure is accepted. */
  | { type: 'REQUEST_ANSWER'; requestId: string; failure?: RequestFailure };

/** To the output log actor. */
export type OutputLogCommand =
  | { type: 'APPEND'; sessionId: string; stream: OutputStream; data: Uint8Array }
  /**
   * Send the session's bytes from `from` (or its oldest, if the log no
   * longer holds `from`), at most `limit` of them, to the SSH server as
   * CHANNEL_OUTPUT for `channelId`; then tell REPLAYED with where they ended.
   */
  | { type: 'REPLAY'; sessionId: string; channelId: string; from: number; limit: number };

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
      stopTimeout: spec.stopTimeout,
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

type Enqueue = { sendTo: (target: 'outputLog', command: OutputLogCommand) => void };

const stallTimer = (channelId: string) => `stall:${channelId}`;

/** What an ended session's channels are told: its code, and the signal that ended it, if one did. */
function exitOf(view: SessionView): NonNullable<AttachedChannel['exit']> {
  return { exitCode: view.exitCode ?? 0, ...(view.signal ? { signal: view.signal } : {}) };
}

type Answer = { sendTo: (target: AnyActorRef, command: SshServerCommand & { type: string }) => void };

/** The SSH server replies to the appliance's request with this. */
function answer(enqueue: Answer, system: { get: (id: string) => AnyActorRef | undefined }, requestId: string, failure: RequestFailure | undefined): void {
  const server = system.get('sshServer');
  if (server) enqueue.sendTo(server, as<SshServerCommand>({ type: 'REQUEST_ANSWER', requestId, ...(failure ? { failure } : {}) }));
}

/** A channel that is behind, has room and has no piece out gets the next piece from the log. */
export function replayNext(enqueue: Enqueue, channelId: string, channel: AttachedChannel): AttachedChannel {
  if (channel.behind === undefined || channel.blocked || channel.replaying) return channel;
  enqueue.sendTo('outputLog', { type: 'REPLAY', sessionId: channel.sessionId, channelId, from: channel.behind, limit: REPLAY_PIECE_BYTES });
  return { ...channel, replaying: true };
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
      // A hold was the old process's: the new one starts reading freely until settleHolds says otherwise.
      const { [sessionId]: _, ...held } = context.held;
      enqueue.assign({
        restarts: { ...context.restarts, [sessionId]: (context.restarts[sessionId] ?? 0) + 1 },
        sessions: { ...context.sessions, [sessionId]: { state: 'created' } },
        held,
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
    addSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_ADD') return;
      const failure = execRefusal(context.sessions, event);
      answer(enqueue, system, event.requestId, failure);
      if (failure) return;
      const { sessionId, spec, size } = event;
      enqueue.spawnChild('session', { id: sessionRef(sessionId), systemId: sessionRef(sessionId), input: { sessionId, spec, ...size } });
      enqueue.assign({
        config: { ...context.config, sessions: { ...context.config.sessions, [sessionId]: spec } },
        sessions: { ...context.sessions, [sessionId]: { state: 'created' } },
        logs: { ...context.logs, [sessionId]: { start: 0, end: 0 } },
      });
    }),
    /** Once the container is stopping, nothing joins it. */
    refuseSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_ADD') return;
      answer(enqueue, system, event.requestId, { kind: 'not-running', message: `container ${context.config.id} is stopping or has stopped: no new sessions` });
    }),
    killSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_KILL') return;
      const failure = killRefusal(context.sessions, event);
      answer(enqueue, system, event.requestId, failure);
      const session = system.get(sessionRef(event.sessionId));
      if (!failure && session) enqueue.sendTo(session, as<ProcessSessionEvent>({ type: 'SIGNAL', signal: event.signal, target: event.group ? 'group' : 'process' }));
    }),
    stopSession: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_STOP') return;
      const failure = stopRefusal(context.sessions, event);
      answer(enqueue, system, event.requestId, failure);
      const session = system.get(sessionRef(event.sessionId));
      if (failure || !session) return;
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
      // reports the exit after the end of its output), so the status goes last:
      // now to a live channel, after its replay to one that is behind.
      const server = system.get('sshServer');
      const exit = exitOf(event.view);
      const channels = { ...context.channels };
      for (const [channelId, channel] of Object.entries(context.channels)) {
        if (channel.sessionId !== event.sessionId) continue;
        if (channel.behind !== undefined) channels[channelId] = { ...channel, exit };
        else {
          if (server) enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_EXIT', channelId, ...exit }));
          delete channels[channelId];
          enqueue.cancel(stallTimer(channelId));
        }
      }
      enqueue.assign({ channels });
    }),
    /** Logged always; sent now to each live channel with room, while a full one falls behind here. */
    sessionOutput: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'SESSION_OUTPUT') return;
      const log = context.logs[event.sessionId];
      if (!log) return;
      enqueue.assign({ logs: { ...context.logs, [event.sessionId]: grow(log, event.data.length, context.config.outputLogBytes) } });
      enqueue.sendTo('outputLog', { type: 'APPEND', sessionId: event.sessionId, stream: event.stream, data: event.data });
      const server = system.get('sshServer');
      if (!server) return;
      let fallen: Record<string, AttachedChannel> | undefined;
      for (const [channelId, channel] of Object.entries(context.channels)) {
        if (channel.sessionId !== event.sessionId || channel.behind !== undefined) continue;
        if (channel.blocked) (fallen ??= { ...context.channels })[channelId] = { ...channel, behind: log.end };
        else enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_OUTPUT', channelId, stream: event.stream, data: event.data }));
      }
      if (fallen) enqueue.assign({ channels: fallen });
    }),
    /** An accepted channel starts behind, at the offset decided: the log replays from there, then it goes live. */
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
      const view = context.sessions[event.containerId]!;
      // An exited session's status follows its replay.
      const exit = view.state === 'exited' ? { exit: exitOf(view) } : {};
      const opened: AttachedChannel = { sessionId: event.containerId, blocked: false, behind: decision.from, replaying: false, holding: false, loose: false, ...exit };
      enqueue.assign({ channels: { ...context.channels, [event.channelId]: replayNext(enqueue, event.channelId, opened) } });
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
    /** A full window stops what is sent to its channel; once it drains, a channel that fell behind is fed from the log. */
    flowControl: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CHANNEL_BLOCKED' && event.type !== 'CHANNEL_READY' && event.type !== 'CHANNEL_CLOSED') return;
      const channel = context.channels[event.channelId];
      if (!channel) return;
      const channels = { ...context.channels };
      if (event.type === 'CHANNEL_CLOSED') {
        delete channels[event.channelId];
        enqueue.cancel(stallTimer(event.channelId));
      } else if (event.type === 'CHANNEL_BLOCKED') channels[event.channelId] = { ...channel, blocked: true };
      else channels[event.channelId] = replayNext(enqueue, event.channelId, { ...channel, blocked: false });
      enqueue.assign({ channels });
    }),
    /**
     * A replay piece went out: the channel has caught up with the log (live,
     * trusted again; its status if its session ended), or is owed the next
     * piece. Reading anything restarts the stall timer of a channel that holds.
     */
    replayed: enqueueActions(({ context, event, enqueue, system }) => {
      if (event.type !== 'REPLAYED') return;
      const channel = context.channels[event.channelId];
      if (!channel?.replaying) return;
      const channels = { ...context.channels };
      if (channel.holding && event.to > channel.behind!) {
        enqueue.cancel(stallTimer(event.channelId));
        enqueue.raise({ type: 'CHANNEL_STALLED', channelId: event.channelId }, { id: stallTimer(event.channelId), delay: STALL_LIMIT_MS });
      }
      if (event.to < context.logs[channel.sessionId]!.end) {
        channels[event.channelId] = replayNext(enqueue, event.channelId, { ...channel, behind: event.to, replaying: false });
      } else if (channel.exit) {
        const server = system.get('sshServer');
        if (server) enqueue.sendTo(server, as<SshServerCommand>({ type: 'CHANNEL_EXIT', channelId: event.channelId, ...channel.exit }));
        delete channels[event.channelId];
        enqueue.cancel(stallTimer(event.channelId));
      } else {
        const { behind: _, ...live } = channel;
        channels[event.channelId] = { ...live, replaying: false, loose: false };
      }
      enqueue.assign({ channels });
    }),
    cutLoose: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CHANNEL_STALLED') return;
      const channel = context.channels[event.channelId];
      if (channel?.holding) enqueue.assign({ channels: { ...context.channels, [event.channelId]: { ...channel, loose: true } } });
    }),
    /**
     * After anything that moves a log's end or a channel's place in it: which
     * channels hold their session's output now (a stall timer starts for
     * each new one), and which sessions' output to pause or resume.
     */
    settleHolds: enqueueActions(({ context, enqueue, system }) => {
      const capacity = context.config.outputLogBytes;
      // Runs on every output chunk: context changes only when a hold does.
      let channels: Record<string, AttachedChannel> | undefined;
      const held: Record<string, true> = {};
      for (const [channelId, channel] of Object.entries(context.channels)) {
        const holding = holds(channel, context.logs[channel.sessionId]!, capacity);
        if (holding) held[channel.sessionId] = true;
        if (holding === channel.holding) continue;
        (channels ??= { ...context.channels })[channelId] = { ...channel, holding };
        if (holding) enqueue.raise({ type: 'CHANNEL_STALLED', channelId }, { id: stallTimer(channelId), delay: STALL_LIMIT_MS });
        else enqueue.cancel(stallTimer(channelId));
      }
      let heldChanged = false;
      for (const sessionId of new Set([...Object.keys(held), ...Object.keys(context.held)])) {
        if (!held[sessionId] === !context.held[sessionId]) continue;
        heldChanged = true;
        const session = system.get(sessionRef(sessionId));
        if (session) enqueue.sendTo(session, as<SessionCommand>({ type: held[sessionId] ? 'PAUSE_OUTPUT' : 'RESUME_OUTPUT' }));
      }
      if (channels) enqueue.assign({ channels });
      if (heldChanged) enqueue.assign({ held });
    }),
    /** The link is gone and with it every channel. */
    linkEnded: enqueueActions(({ context, enqueue }) => {
      for (const channelId of Object.keys(context.channels)) enqueue.cancel(stallTimer(channelId));
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
    held: {},
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
        SESSION_CHANGED: { actions: ['sessionChanged', 'announce', 'scheduleRestart', 'settleHolds'] },
        RESTART_SESSION: { actions: ['restartSession', 'settleHolds'] },
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
    SESSION_CHANGED: { actions: ['sessionChanged', 'announce', 'settleHolds'] },
    SESSION_OUTPUT: { actions: ['sessionOutput', 'settleHolds'] },
    SSH_SERVING: { actions: [assign({ announced: '' }), 'announce'] },
    SSH_ENDED: { actions: ['linkEnded', 'settleHolds'] },
    ATTACH_OPEN: { actions: ['attachOpen', 'settleHolds'] },
    CHANNEL_UNBLOCK: { actions: 'toSession' },
    CHANNEL_STDIN: { actions: 'toSession' },
    CHANNEL_CLOSE_STDIN: { actions: 'toSession' },
    CHANNEL_RESIZE: { actions: 'toSession' },
    CHANNEL_SIGNAL: { actions: 'toSession' },
    CHANNEL_BLOCKED: { actions: 'flowControl' },
    CHANNEL_READY: { actions: 'flowControl' },
    CHANNEL_CLOSED: { actions: ['flowControl', 'settleHolds'] },
    REPLAYED: { actions: ['replayed', 'settleHolds'] },
    CHANNEL_STALLED: { actions: ['cutLoose', 'settleHolds'] },
    SESSION_KILL: { actions: 'killSession' },
    SESSION_STOP: { actions: 'stopSession' },
    SESSION_ADD: { actions: 'refuseSession' },
  },
});

function sessionCommandOf(event: GuestEvent): SessionCommand | undefined {
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
