import { constants } from 'node:os';
import type { ApplianceEffects, AttachEffects } from '../../appliance/composition.ts';
import type { GuestEffects } from '../../guest/composition.ts';
import type { OutputLogCommand, SshServerCommand } from '../../machines/guest.ts';
import type { ProcessInput } from '../../machines/processSession.ts';
import type { SshInput } from '../../machines/serialLink.ts';
import type { Assignments } from '../../machines/assignments.ts';
import type { ApplianceSessionInput } from '../../machines/sshSession.ts';
import type { ChannelActorInput } from '../../machines/containerChannel.ts';
import type { ProcessScript } from './scenario.ts';
import { simulated, type PostBox, type SimEvent, type SimIO } from './sim.ts';
import type { Post, SshMessage, Wire } from './world.ts';

/**
 * The simulated effects of the composed model: the same slots the bundles
 * fill with real actors (guest/composition.ts, appliance/composition.ts),
 * filled with simulations that follow the real actors' contracts (what they
 * report, in which order) over an abstract line and abstract SSH.
 *
 * `sim.*` events come from the environment (tools/check/model.ts): a port
 * opening, bytes or SSH messages arriving, a process writing or exiting.
 */

type IO = SimIO<Post>;

const text = new TextEncoder();
const untext = new TextDecoder();
/** Output chunk `n` of a session: its label is what the properties check. */
const chunk = (sessionId: string, n: number) => text.encode(`${sessionId}:${n}`);
/** Where chunk `n` of a session starts in its output log: the byte offsets the guest names. */
export const chunkStart = (sessionId: string, n: number): number => {
  let start = 0;
  for (let k = 0; k < n; k++) start += chunk(sessionId, k).length;
  return start;
};
const labelOf = (data: Uint8Array) => untext.decode(data);
/** What an SSH message looks like to a handshake scanning for its frames: noise. */
export const noiseOf = (msg: SshMessage) => text.encode(`SSH ${msg.t}`);
/** Timestamps would make every state unique: the model's clock shows in no event. */
const AT = 'T';

const ssh = (msg: SshMessage): Wire => ({ kind: 'ssh', msg });

// ---- guest -------------------------------------------------------------------

export interface ProcessSim {
  sessionId: string;
  launched: boolean;
  started: boolean;
  written: number;
  paused: boolean;
  stdin: number;
  stdinClosed: boolean;
  exited: boolean;
  /** The status it exited with: its script's, or 128 + the signal that killed it. */
  exitCode?: number;
  /** The signal that killed it. */
  signal?: string;
}

export type PortPhase = 'opening' | 'open' | 'handedOff' | 'closing' | 'closed';

export interface ServerSim {
  ready: boolean;
  ended: boolean;
  ids: string[];
  info: SshServerCommandInfo;
  /** `full`: the channel's window is full (its reader stopped reading); what is written meanwhile waits in it, as in ssh2. */
  channels: Record<string, { containerId: string; state: 'pending' | 'open' | 'ended'; full?: boolean }>;
}
type SshServerCommandInfo = Extract<SshServerCommand, { type: 'CONTAINERS' }>['info'];

interface LogRecord {
  stream: 'stdout' | 'stderr';
  data: Uint8Array;
  offset: number;
}

/** One guest's effects: `scripts`, what its processes do; `vm`, the containerVM its host key names; `view`, what the appliance unblocked on it. */
export function guestEffects(scripts: Record<string, ProcessScript>, vm: string, box: PostBox<Post>, view: () => { unblocked: Record<string, true> }): GuestEffects {
  const process = simulated<ProcessSim, ProcessInput, Post>(box, {
    init: (input) => ({ sessionId: input.sessionId, launched: false, started: false, written: 0, paused: false, stdin: 0, stdinClosed: false, exited: false }),
    receive: (s, event, io) => {
      switch (event.type) {
        case 'LAUNCH':
          if (scripts[s.sessionId]?.runBlock && !view().unblocked[s.sessionId]) {
            io.post({ kind: 'violation', property: 'run-block', message: `session ${s.sessionId} was launched before the appliance unblocked it` });
          }
          return { ...s, launched: true };
        case 'sim.start':
          io.toParent({ type: 'PROCESS_STARTED', pid: 100 });
          return { ...s, started: true };
        case 'sim.write':
          io.toParent({ type: 'PROCESS_OUTPUT', stream: 'stdout', data: chunk(s.sessionId, s.written) });
          return { ...s, written: s.written + 1 };
        case 'sim.exit': {
          const { exitCode } = scripts[s.sessionId]!;
          io.toParent({ type: 'PROCESS_EXITED', exitCode });
          return { ...s, exited: true, exitCode };
        }
        case 'STDIN':
          if (s.stdinClosed) io.post({ kind: 'violation', property: 'stdin', message: `session ${s.sessionId} got stdin after its stdin was closed` });
          return { ...s, stdin: s.stdin + 1 };
        case 'CLOSE_STDIN':
          return { ...s, stdinClosed: true };
        case 'PAUSE_OUTPUT':
          return { ...s, paused: true };
        case 'RESUME_OUTPUT':
          return { ...s, paused: false };
        case 'SIGNAL':
          return scripts[s.sessionId]?.onStop === 'exit' && event.target === 'process' ? killed(s, event.signal, io) : s;
        case 'KILL':
          return killed(s, 'KILL', io);
        default:
          return s;
      }
    },
  });

  /**
   * The process ends, killed by `signal`: its status is the shell's 128 + the
   * signal's number, from the OS's own table. A launched process is spawned,
   * so it is killed even before its start was reported (the report comes first).
   */
  function killed(s: ProcessSim, signal: string, io: IO): ProcessSim {
    if (!s.launched || s.exited) return s;
    if (!s.started) io.toParent({ type: 'PROCESS_STARTED', pid: 100 });
    io.toParent({ type: 'PROCESS_EXITED', signal });
    return { ...s, started: true, exited: true, exitCode: 128 + constants.signals[`SIG${signal}` as keyof typeof constants.signals], signal };
  }

  const port = simulated<{ phase: PortPhase }, unknown, Post>(box, {
    init: () => ({ phase: 'opening' }),
    receive: (s, event, io) => {
      switch (event.type) {
        case 'sim.opened':
          io.toParent({ type: 'PORT_OPENED', handle: 'ttyS0' });
          return { phase: 'open' };
        case 'sim.bytes':
          io.toParent({ type: 'PORT_BYTES', data: event.data });
          return s;
        case 'sim.closed':
          io.toParent({ type: 'PORT_CLOSED' });
          return { phase: 'closed' };
        case 'WRITE':
          io.post({ kind: 'toAppliance', wire: { kind: 'bytes', data: event.data } });
          return s;
        case 'HAND_OFF':
          return { phase: 'handedOff' };
        case 'CLOSE':
          if (s.phase === 'closed') {
            io.toParent({ type: 'PORT_CLOSED' });
            return s;
          }
          return { phase: 'closing' };
        default:
          return s;
      }
    },
  });

  const server = simulated<ServerSim, SshInput, Post>(box, {
    init: () => ({ ready: false, ended: false, ids: [], info: [], channels: {} }),
    receive: (s, event, io) => {
      if (s.ended) {
        if (event.type === 'sim.recv' && event.wire.kind === 'ssh' && event.wire.msg.t === 'stdin') io.post({ kind: 'stdinLost', ch: event.wire.msg.ch });
        return s;
      }
      if (event.type === 'sim.recv') return serverReceive(s, event.wire, io);
      if (event.type === 'sim.window') return serverWindow(s, event.ch as string, event.full as boolean, io);
      return serverCommand(s, event as unknown as SshServerCommand, io);
    },
  });

  function endSsh(s: ServerSim, io: IO, reason: string): ServerSim {
    io.toParent({ type: 'SSH_ENDED', reason });
    return { ...s, ended: true };
  }

  function serverReceive(s: ServerSim, wire: Wire, io: IO): ServerSim {
    if (wire.kind === 'bytes') return endSsh(s, io, 'ssh: protocol error (bytes that are not SSH)');
    const msg = wire.msg;
    const tell = (event: SimEvent) => io.toSystem('guest', event);
    const channel = 'ch' in msg ? s.channels[msg.ch] : undefined;
    switch (msg.t) {
      case 'hello':
        if (s.ready) return s;
        io.toParent({ type: 'SSH_AUTHENTICATED' });
        io.post({ kind: 'toAppliance', wire: ssh({ t: 'welcome', vm }) });
        return { ...s, ready: true };
      case 'query':
        io.post({ kind: 'toAppliance', wire: ssh(msg.what === 'ids' ? { t: 'reply', what: 'ids', ids: s.ids } : msg.what === 'info' ? { t: 'reply', what: 'info', info: s.info } : { t: 'reply', what: 'keepalive' }) });
        return s;
      case 'open':
        tell({ type: 'ATTACH_OPEN', channelId: msg.ch, containerId: msg.containerId, offset: msg.offset });
        return { ...s, channels: { ...s.channels, [msg.ch]: { containerId: msg.containerId, state: 'pending' } } };
      case 'stdin':
        if (channel?.state === 'open') tell({ type: 'CHANNEL_STDIN', channelId: msg.ch, data: msg.data });
        else io.post({ kind: 'stdinLost', ch: msg.ch });
        return s;
      case 'request':
        if (!channel || channel.state === 'ended') return s;
        if (msg.name === 'unblock') {
          io.post({ kind: 'unblocked', sessionId: channel.containerId });
          tell({ type: 'CHANNEL_UNBLOCK', channelId: msg.ch });
        } else if (msg.name === 'close-stdin') tell({ type: 'CHANNEL_CLOSE_STDIN', channelId: msg.ch });
        else if (msg.name === 'resize') tell({ type: 'CHANNEL_RESIZE', channelId: msg.ch, cols: msg.cols, rows: msg.rows });
        else tell({ type: 'CHANNEL_SIGNAL', channelId: msg.ch, signal: msg.signal });
        return s;
      case 'close':
        if (!channel || channel.state === 'ended') return s;
        tell({ type: 'CHANNEL_CLOSED', channelId: msg.ch });
        return { ...s, channels: { ...s.channels, [msg.ch]: { ...channel, state: 'ended' } } };
      default:
        return s;
    }
  }

  function serverWindow(s: ServerSim, ch: string, full: boolean, io: IO): ServerSim {
    const channel = s.channels[ch];
    if (channel?.state !== 'open') return s;
    io.toSystem('guest', { type: full ? 'CHANNEL_BLOCKED' : 'CHANNEL_READY', channelId: ch });
    return { ...s, channels: { ...s.channels, [ch]: { ...channel, full } } };
  }

  function serverCommand(s: ServerSim, command: SshServerCommand, io: IO): ServerSim {
    const send = (msg: SshMessage) => io.post({ kind: 'toAppliance', wire: ssh(msg) });
    switch (command.type) {
      // The model's API client neither kills, stops nor execs.
      case 'REQUEST_ANSWER':
        return s;
      case 'CONTAINERS':
        if (s.ready && command.pushIds) send({ t: 'push', what: 'ids', ids: command.ids });
        if (s.ready && command.pushInfo.length > 0) send({ t: 'push', what: 'info', info: command.pushInfo });
        return { ...s, ids: command.ids, info: command.info };
      case 'ATTACH_ACCEPT': {
        const channel = s.channels[command.channelId];
        if (channel?.state !== 'pending') return s;
        send({ t: 'openOk', ch: command.channelId, offset: command.offset });
        return { ...s, channels: { ...s.channels, [command.channelId]: { ...channel, state: 'open' } } };
      }
      case 'ATTACH_REJECT': {
        if (s.channels[command.channelId]?.state !== 'pending') return s;
        send({ t: 'openFail', ch: command.channelId, failure: command.failure });
        const { [command.channelId]: _, ...channels } = s.channels;
        return { ...s, channels };
      }
      case 'CHANNEL_OUTPUT': {
        const channel = s.channels[command.channelId];
        if (channel?.state === 'open') send({ t: 'data', ch: command.channelId, stream: command.stream, data: command.data });
        else if (channel?.state === 'ended') io.post({ kind: 'violation', property: 'output-after-exit', message: `the guest wrote output on channel ${command.channelId} after its exit status` });
        return s;
      }
      case 'CHANNEL_EXIT': {
        const channel = s.channels[command.channelId];
        if (channel?.state !== 'open') return s;
        send({ t: 'exit', ch: command.channelId, exitCode: command.exitCode, signal: command.signal });
        return { ...s, channels: { ...s.channels, [command.channelId]: { ...channel, state: 'ended' } } };
      }
    }
  }

  const outputLog = simulated<{ logs: Record<string, LogRecord[]> }, unknown, Post>(box, {
    init: () => ({ logs: {} }),
    receive: (s, event, io) => {
      const command = event as unknown as OutputLogCommand;
      const records = s.logs[command.sessionId] ?? [];
      if (command.type === 'APPEND') {
        const last = records[records.length - 1];
        const offset = last ? last.offset + last.data.length : 0;
        return { logs: { ...s.logs, [command.sessionId]: [...records, { stream: command.stream, data: command.data, offset }] } };
      }
      let to = command.from;
      for (const r of records) {
        if (r.offset + r.data.length <= to || to - command.from >= command.limit) continue;
        const data = r.data.subarray(to - r.offset, Math.min(r.data.length, to - r.offset + command.limit - (to - command.from)));
        io.toSystem('sshServer', { type: 'CHANNEL_OUTPUT', channelId: command.channelId, stream: r.stream, data });
        to += data.length;
      }
      io.toParent({ type: 'REPLAYED', channelId: command.channelId, to });
      return s;
    },
  });

  // Nothing outlives a simulated process: the sweep is over as soon as it starts.
  const sweeper = simulated<null, unknown, Post>(box, {
    init: () => null,
    start: (s, io) => {
      io.toParent({ type: 'SWEPT' });
      return s;
    },
    receive: (s) => s,
  });

  return { process, port, server, outputLog, sweeper };
}

// ---- appliance ---------------------------------------------------------------

export interface ConnectionSim {
  handle: string;
  handedOff: boolean;
}

export interface ClientSim {
  linkId: string;
  handle: string;
  phase: 'authenticating' | 'ready' | 'closed';
  /** A keepalive was asked for: the next message from the guest, whatever it is, answers it. */
  asking: boolean;
}

/** `trust`: the trust store, as identifyGuest reads it: each containerVM's assigned IDs. */
export function applianceEffects(box: PostBox<Post>, trust: Assignments): ApplianceEffects {
  const listener = simulated<object, unknown, Post>(box, { init: () => ({}), receive: (s) => s });

  const connection = simulated<ConnectionSim, { handle: string }, Post>(box, {
    init: (input) => ({ handle: input.handle, handedOff: false }),
    start: (s, io) => {
      io.post({ kind: 'connection', handle: s.handle });
      return s;
    },
    receive: (s, event, io) => {
      switch (event.type) {
        case 'sim.bytes':
          io.toParent({ type: 'PORT_BYTES', data: event.data });
          return s;
        case 'sim.closed':
          io.toParent({ type: 'PORT_CLOSED', error: 'the hypervisor connection dropped' });
          return s;
        case 'WRITE':
          io.post({ kind: 'toGuest', handle: s.handle, wire: { kind: 'bytes', data: event.data } });
          return s;
        case 'HAND_OFF':
          return { ...s, handedOff: true };
        default:
          return s;
      }
    },
    // The link is over: the accepted socket is destroyed.
    stop: (s, io) => void io.post({ kind: 'socketClosed', handle: s.handle }),
  });

  const client = simulated<ClientSim, ApplianceSessionInput, Post>(box, {
    init: (input) => ({ linkId: input.linkId, handle: input.handle, phase: 'authenticating', asking: false }),
    start: (s, io) => {
      io.post({ kind: 'register', handle: s.handle, linkId: s.linkId });
      io.post({ kind: 'toGuest', handle: s.handle, wire: ssh({ t: 'hello' }) });
      return s;
    },
    receive: (s, event, io) => {
      if (s.phase === 'closed') return s;
      const close = (reason: string): ClientSim => {
        io.toParent({ type: 'SSH_CLOSED', reason, at: AT });
        return { ...s, phase: 'closed' };
      };
      switch (event.type) {
        case 'sim.closed':
          return close(event.reason);
        case 'QUERY':
          io.post({ kind: 'toGuest', handle: s.handle, wire: ssh({ t: 'query', what: 'ids' }), owner: { kind: 'query' } });
          io.post({ kind: 'toGuest', handle: s.handle, wire: ssh({ t: 'query', what: 'info' }), owner: { kind: 'query' } });
          return s;
        case 'KEEPALIVE':
          io.post({ kind: 'toGuest', handle: s.handle, wire: ssh({ t: 'query', what: 'keepalive' }), owner: { kind: 'query' } });
          return { ...s, asking: true };
        case 'END':
          return close(event.reason);
        case 'sim.recv': {
          const wire = event.wire;
          if (wire.kind === 'bytes') return close('ssh: protocol error (bytes that are not SSH)');
          const msg = wire.msg;
          if (s.asking) {
            io.toParent({ type: 'SSH_ALIVE' });
            s = { ...s, asking: false };
          }
          if (msg.t === 'welcome') {
            io.toParent({ type: 'SSH_READY', vm: msg.vm, assigned: trust[msg.vm] ?? [], at: AT });
            return { ...s, phase: 'ready' };
          }
          if (msg.t === 'reply' && msg.what === 'keepalive') return s;
          if (msg.t === 'reply' || msg.t === 'push') {
            io.toParent(msg.what === 'ids' ? { type: 'SSH_IDS', ids: msg.ids } : { type: 'SSH_INFO', containers: msg.info });
          }
          return s;
        }
        default:
          return s;
      }
    },
  });

  const links = simulated<object, unknown, Post>(box, {
    init: () => ({}),
    receive: (s, event, io) => {
      if (event.type === 'PING') io.post({ kind: 'ping', linkId: event.linkId, containerId: event.containerId });
      if (event.type === 'DROP') io.post({ kind: 'endLink', linkId: event.linkId });
      return s;
    },
  });

  return { listener, connection, client, links };
}

// ---- one attach --------------------------------------------------------------

export interface ChannelSim extends ChannelActorInput {
  ch?: string;
  phase: 'opening' | 'open' | 'closed';
}

export function attachEffects(box: PostBox<Post>): AttachEffects {
  const lookup = simulated<{ containerId: string; timeoutMs: number }, { containerId: string; timeoutMs: number }, Post>(box, {
    init: (input) => ({ containerId: input.containerId, timeoutMs: input.timeoutMs }),
    start: (s, io) => {
      io.post({ kind: 'lookup', containerId: s.containerId, timeoutMs: s.timeoutMs });
      return s;
    },
    receive: (s, event, io) => {
      if (event.type === 'sim.resolved') {
        io.post({ kind: 'lookupSettled' });
        return { done: { linkId: event.linkId }, state: s };
      }
      if (event.type === 'sim.failed') {
        io.post({ kind: 'lookupSettled' });
        return { fail: event.message, state: s };
      }
      return s;
    },
    stop: (_s, io) => void io.post({ kind: 'lookupCancelled' }),
  });

  const channel = simulated<ChannelSim, ChannelActorInput, Post>(box, {
    init: (input) => ({ ...input, phase: 'opening' }),
    // The world answers with the channel's name, or nothing when the link is gone (it then reports the loss).
    start: (s, io) => ({ ...s, ch: io.post({ kind: 'openChannel', linkId: s.linkId, containerId: s.containerId, offset: s.offset }) as string | undefined }),
    receive: (s, event, io) => {
      if (s.phase === 'closed') return s;
      const send = (msg: SshMessage) => io.post({ kind: 'channel', linkId: s.linkId, msg });
      const ch = s.ch!;
      switch (event.type) {
        case 'sim.lost':
          io.toParent({ type: 'CHANNEL_LOST', reason: event.reason });
          return { ...s, phase: 'closed' };
        case 'sim.recv': {
          const msg = event.msg;
          if (msg.t === 'openOk') {
            io.post({ kind: 'opened', offset: msg.offset });
            io.toParent({ type: 'CHANNEL_OPENED', offset: msg.offset });
            return { ...s, phase: 'open' };
          }
          if (msg.t === 'openFail') {
            io.toParent({ type: 'CHANNEL_REJECTED', ...msg.failure });
            return { ...s, phase: 'closed' };
          }
          if (msg.t === 'data') io.toParent({ type: 'OUTPUT', stream: msg.stream, data: msg.data });
          if (msg.t === 'exit') {
            io.post({ kind: 'exitDelivered' });
            io.toParent({ type: 'EXIT', exitCode: msg.exitCode, ...(msg.signal ? { signal: msg.signal } : {}) });
            return { ...s, phase: 'closed' };
          }
          return s;
        }
        case 'UNBLOCK':
          send({ t: 'request', ch, name: 'unblock' });
          return s;
        case 'STDIN':
          send({ t: 'stdin', ch, data: event.data });
          return s;
        case 'CLOSE_STDIN':
          send({ t: 'request', ch, name: 'close-stdin' });
          return s;
        case 'RESIZE': {
          send({ t: 'request', ch, name: 'resize', cols: event.cols, rows: event.rows });
          return s;
        }
        case 'SIGNAL':
          send({ t: 'request', ch, name: 'signal', signal: event.signal });
          return s;
        default:
          return s;
      }
    },
    stop: (s, io) => {
      if (s.phase !== 'closed' && s.ch) io.post({ kind: 'channel', linkId: s.linkId, msg: { t: 'close', ch: s.ch } });
    },
  });

  const user = simulated<{ attached: boolean }, unknown, Post>(box, {
    init: () => ({ attached: false }),
    receive: (s, event, io) => {
      if (event.type === 'ATTACHED') return { attached: true };
      if (event.type === 'OUTPUT') io.post({ kind: 'received', label: labelOf(event.data) });
      return s;
    },
  });

  return { lookup, channel, user };
}
