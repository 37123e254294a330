import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { type AnyActorRef, type EventObject } from 'xstate';
import type { SshInput } from '../machines/serialLink.ts';
import type { GuestServerEvent } from '../machines/sshSession.ts';
import type { SshServerCommand, SshServerEvent } from '../machines/guest.ts';
import type { Log } from '../shared/log.ts';
import {
  OFFSET_LIVE,
  CHANNEL_REQ_CLOSE_STDIN,
  CHANNEL_REQ_PING,
  CHANNEL_REQ_SIGNAL,
  CHANNEL_REQ_UNBLOCK,
  CHANNEL_REQ_WINDOW_CHANGE,
  decodeInspect,
  decodeKill,
  decodeNoPayload,
  decodeSignal,
  decodeStop,
  decodeExec,
  REQ_EXEC,
  decodeWindowChange,
  encodeActorStates,
  encodeContainerIds,
  encodeContainerInfo,
  encodeRequestFailure,
  encodeVersion,
  PROTOCOL_VERSION,
  REQ_ACTOR_STATES,
  REQ_CONTAINER_IDS,
  REQ_CONTAINER_INFO,
  REQ_INSPECT,
  REQ_KILL,
  REQ_STOP,
  REQ_VERSION,
  WireError,
  type ActorState,
  type AttachFailure,
  type ContainerInfo,
  type RequestFailure,
} from '../shared/wire.ts';
import type { ResourceTable } from './resources.ts';
import type { CallbackFunction } from './lazy.ts';
import { pushGlobal, serveTether, type Refusal, type ServerAttachChannel } from './ssh/extension.ts';
import { publicKeyBlob } from './ssh/keys.ts';

const { Server } = ssh2;

/** The guest's actor states, reported only while the appliance inspects the guest (guest/stateReports.ts). */
export interface ActorStateReports {
  /** Starts handing `push` what changed; the returned function stops it. */
  watch(push: (states: ActorState[]) => void): () => void;
}

export interface SshServerOptions {
  resources: ResourceTable;
  hostKey: string;
  authorizedKeys: string[];
  actorStates: ActorStateReports;
  log: Log;
}

/**
 * The guest's SSH server over the serial line. It serves one SSH connection on
 * the stream the handshake handed over: authentication against the configured
 * appliance keys, tether's global requests, and `attach` channels. What to
 * answer is the guest machine's decision (registered as `guest`); this actor
 * carries questions there and answers back.
 */
/** The server as a callback actor's function: the guest loads it when its link first reaches SSH (actors/lazy.ts). */
export function sshServer(options: SshServerOptions): CallbackFunction<EventObject, SshInput> {
  const allowed = options.authorizedKeys.map(publicKeyBlob);
  return ({ input, receive, sendBack, system }) => {
    const guest = system.get('guest') as AnyActorRef;
    const tell = (event: SshServerEvent) => guest.send(event);
    const stream = options.resources.get<Duplex>(input.portHandle);
    if (input.leftover.length > 0) stream.unshift(Buffer.from(input.leftover));

    let ids: string[] = [];
    let info: ContainerInfo[] = [];
    let connection: ssh2.Connection | undefined;
    let ready = false;
    let nextChannel = 0;
    const channels = new Map<string, ServerAttachChannel>();
    const pending = new Map<string, { accept: () => ServerAttachChannel; reject: (failure: AttachFailure) => void }>();
    const session = (event: GuestServerEvent) => sendBack(event);
    let closed = false;
    const close = (reason: string) => {
      if (closed) return;
      closed = true;
      stopReporting();
      session({ type: 'SSH_ENDED', reason });
    };

    // The appliance's inspect@tether switches the actor-state reports on and off.
    let stopReports: (() => void) | undefined;
    const stopReporting = () => {
      stopReports?.();
      stopReports = undefined;
    };
    const inspect = (payload: Buffer): Buffer | null => {
      let on: boolean;
      try {
        on = decodeInspect(payload);
      } catch (err) {
        options.log('warn', 'malformed inspect request refused', { error: (err as Error).message });
        return null;
      }
      if (!on) stopReporting();
      else stopReports ??= options.actorStates.watch((states) => {
        try {
          pushGlobal(connection!, REQ_ACTOR_STATES, encodeActorStates(states));
        } catch (err) {
          // Reporting is a courtesy: it stops, and the session goes on.
          options.log('warn', 'actor states not sent; reporting stopped', { error: (err as Error).message });
          stopReporting();
        }
      });
      return Buffer.alloc(0);
    };

    // kill@tether, stop@tether and exec@tether are the guest machine's to
    // accept or refuse. A global request's reply must come before the next
    // one's, and this callback runs outside any actor's transition, so xstate
    // delivers the event and the machine's REQUEST_ANSWER before tell() returns.
    const answers = new Map<string, RequestFailure | undefined>();
    let nextRequest = 0;
    const control = <R>(name: string, payload: Buffer, decode: (payload: Buffer) => R, event: (request: R, requestId: string) => SshServerEvent): Buffer | Refusal => {
      let failure: RequestFailure | undefined;
      try {
        const requestId = `r${++nextRequest}`;
        tell(event(decode(payload), requestId));
        failure = answers.has(requestId) ? answers.get(requestId) : { kind: 'refused', message: `the guest machine did not answer ${name}` };
        answers.delete(requestId);
        if (!failure) return Buffer.alloc(0);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        failure = { kind: 'malformed', message: err.message };
      }
      options.log('debug', `${name} refused`, { failure: `${failure.kind}: ${failure.message}` });
      return { detail: encodeRequestFailure(failure) };
    };

    const server = new Server({ hostKeys: [options.hostKey], ident: 'tether' }, (conn) => {
      connection = conn;
      serveTether(conn, {
        globalRequest(name, payload) {
          if (name === REQ_CONTAINER_IDS) return encodeContainerIds(ids);
          if (name === REQ_CONTAINER_INFO) {
            // The appliance merges every piece into its inventory, so the ones after the first may come as pushes.
            const [reply, ...more] = infoPieces(info);
            for (const piece of more) pushGlobal(conn, REQ_CONTAINER_INFO, piece);
            return reply!;
          }
          if (name === REQ_VERSION) return encodeVersion(PROTOCOL_VERSION);
          if (name === REQ_INSPECT) return inspect(payload);
          if (name === REQ_KILL) {
            return control(name, payload, decodeKill, (r, requestId) => ({ type: 'SESSION_KILL', requestId, sessionId: r.containerId, signal: r.signal, group: r.group }));
          }
          if (name === REQ_EXEC) {
            return control(name, payload, decodeExec, (r, requestId) => ({ type: 'SESSION_ADD', requestId, containerId: r.containerId, sessionId: r.sessionId, spec: r.spec, ...(r.size === undefined ? {} : { size: r.size }) }));
          }
          if (name === REQ_STOP) {
            return control(name, payload, decodeStop, (r, requestId) => ({ type: 'SESSION_STOP', requestId, sessionId: r.containerId, ...(r.signal === undefined ? {} : { signal: r.signal }), ...(r.timeout === undefined ? {} : { timeout: r.timeout }) }));
          }
          return null;
        },
        openAttach(request, accept, reject) {
          const channelId = `ch${++nextChannel}`;
          pending.set(channelId, { accept, reject });
          options.log('debug', 'attach requested', { channelId, container: request.containerId, offset: String(request.offset) });
          tell({ type: 'ATTACH_OPEN', channelId, containerId: request.containerId, offset: offsetOf(request.offset) });
        },
      });
      conn.on('authentication', (ctx) => {
        if (ctx.method === 'publickey' && ctx.username === 'daemon' && allowed.some((blob) => blob.equals(ctx.key.data))) {
          // Without a signature this is the client asking whether the key would do.
          if (!ctx.signature || signatureValid(ctx)) return ctx.accept();
        }
        // ssh2 asks with method "none" first; only a refused credential is news.
        if (ctx.method !== 'none') session({ type: 'SSH_AUTH_REFUSED', user: ctx.username, method: ctx.method });
        ctx.reject(['publickey']);
      });
      conn.on('ready', () => {
        ready = true;
        session({ type: 'SSH_AUTHENTICATED' });
      });
      // The guest cannot see the hypervisor's TCP connection: when the appliance
      // starts over, its handshake bytes reach this session as SSH garbage. Any
      // protocol error therefore ends the session, and the link handshakes anew.
      conn.on('error', (err) => {
        options.log('warn', 'ssh session ended by an error', { error: err.message });
        close(`ssh: ${err.message}`);
      });
      conn.on('close', () => close('ssh connection closed'));
    });

    function openChannel(channelId: string, channel: ServerAttachChannel) {
      channels.set(channelId, channel);
      // Either stream may be the one that filled the window.
      channel.on('drain', () => tell({ type: 'CHANNEL_READY', channelId }));
      channel.stderr.on('drain', () => tell({ type: 'CHANNEL_READY', channelId }));
      channel.on('data', (data: Buffer) => tell({ type: 'CHANNEL_STDIN', channelId, data }));
      channel.on('request', (name: string, payload: Buffer, reply?: (ok: boolean) => void) => {
        try {
          const { ok, event } = channelRequest(channelId, name, payload);
          if (event) tell(event);
          reply?.(ok);
        } catch (err) {
          // A malformed payload is refused; the channel and the guest go on.
          options.log('warn', 'malformed channel request refused', { channelId, request: name, error: (err as Error).message });
          reply?.(false);
        }
      });
      channel.on('close', () => {
        channels.delete(channelId);
        tell({ type: 'CHANNEL_CLOSED', channelId });
      });
      channel.on('error', (err: Error) => options.log('warn', 'attach channel error', { channelId, error: err.message }));
    }

    function write(channelId: string, stream: 'stdout' | 'stderr', data: Uint8Array) {
      const channel = channels.get(channelId);
      if (!channel) return;
      const target = stream === 'stderr' && channel.stderr ? channel.stderr : channel;
      if (!target.write(data)) tell({ type: 'CHANNEL_BLOCKED', channelId });
    }

    // Commands come from the guest machine through the system (see SshServerCommand).
    // A failure here must not take the guest down: it ends this SSH session only.
    receive((event) => {
      try {
        execute(event as SshServerCommand);
      } catch (err) {
        options.log('error', 'ssh server command failed', { command: event.type, error: err as Error });
        connection?.end();
      }
    });

    function execute(command: SshServerCommand): void {
      switch (command.type) {
        case 'CONTAINERS': {
          ids = command.ids;
          info = command.info;
          if (!ready || !connection) return;
          if (command.pushIds) pushGlobal(connection, REQ_CONTAINER_IDS, encodeContainerIds(ids));
          if (command.pushInfo.length > 0) for (const piece of infoPieces(command.pushInfo)) pushGlobal(connection, REQ_CONTAINER_INFO, piece);
          return;
        }
        case 'ATTACH_ACCEPT': {
          const open = pending.get(command.channelId);
          pending.delete(command.channelId);
          if (!open) return;
          options.log('debug', 'attach accepted', { channelId: command.channelId, offset: command.offset });
          const channel = open.accept();
          openChannel(command.channelId, channel);
          channel.sendOffset(BigInt(command.offset));
          return;
        }
        case 'ATTACH_REJECT': {
          options.log('debug', 'attach refused', { channelId: command.channelId, failure: command.failure.message });
          pending.get(command.channelId)?.reject(command.failure);
          pending.delete(command.channelId);
          return;
        }
        case 'CHANNEL_OUTPUT':
          write(command.channelId, command.stream, command.data);
          return;
        case 'REQUEST_ANSWER':
          answers.set(command.requestId, command.failure);
          return;
        case 'CHANNEL_EXIT': {
          const channel = channels.get(command.channelId);
          options.log('debug', 'exit status sent', { channelId: command.channelId, exitCode: command.exitCode, open: channel !== undefined });
          if (!channel) return;
          // The appliance may have closed the channel already; then there is no one to tell.
          if (channel.writableEnded || channel.destroyed) return;
          if (command.signal) channel.exitSignal(command.signal, false, '');
          else channel.exitStatus(command.exitCode);
          channel.end();
          return;
        }
      }
    }

    watchClientVersion(stream, () => close('the first bytes from the appliance are not SSH\'s version line: it has started a new line handshake, or the line is noisy; starting the line over'));
    server.injectSocket(stream as never);
    return () => {
      stopReporting();
      for (const channel of channels.values()) channel.destroy();
      connection?.end();
      server.close();
    };
  };
}

const CLIENT_VERSION_START = Buffer.from('SSH-');

/**
 * Calls `notSsh` when the stream's first bytes cannot begin a client's
 * version line, which RFC 4253 has the client send before anything else.
 * ssh2 would wait for the end of such a line, and a line handshake's frames
 * have no end: when the handshake finished on this side only (the appliance
 * gave up on the final ACK, or the connection carrying it dropped), the
 * appliance's new SYNs would hold the link down for good.
 */
function watchClientVersion(stream: Duplex, notSsh: () => void): void {
  let seen = 0;
  const check = (chunk: Buffer) => {
    const length = Math.min(chunk.length, CLIENT_VERSION_START.length - seen);
    if (!chunk.subarray(0, length).equals(CLIENT_VERSION_START.subarray(seen, seen + length))) {
      stream.off('data', check);
      return notSsh();
    }
    seen += length;
    if (seen === CLIENT_VERSION_START.length) stream.off('data', check);
  };
  stream.on('data', check);
}

/**
 * ssh2 refuses a packet longer than 35000 bytes and ends the connection: the
 * info of a few hundred sessions is longer, and a guest that sends it in one
 * piece never gets its link up. So it goes in pieces of at most this many
 * bytes of JSON (one session's info alone is far shorter).
 */
const INFO_PIECE_BYTES = 32 * 1024;

/** Container info encoded in pieces that each fit in a packet; at least one, maybe empty. */
function infoPieces(info: ContainerInfo[]): Buffer[] {
  const pieces: Buffer[] = [];
  let piece: ContainerInfo[] = [];
  let bytes = 2;
  for (const entry of info) {
    const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (piece.length > 0 && bytes + size > INFO_PIECE_BYTES) {
      pieces.push(encodeContainerInfo(piece));
      piece = [];
      bytes = 2;
    }
    piece.push(entry);
    bytes += size;
  }
  pieces.push(encodeContainerInfo(piece));
  return pieces;
}

/** The wire's uint64 offset as the guest machine's number; beyond 2^53 is past any log's end anyway. */
function offsetOf(offset: bigint): number | 'live' {
  if (offset === OFFSET_LIVE) return 'live';
  return offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset);
}

/** A channel request as an event for the guest machine; `ping` only needs the reply. */
function channelRequest(channelId: string, name: string, payload: Buffer): { ok: boolean; event?: SshServerEvent } {
  switch (name) {
    case CHANNEL_REQ_PING:
      decodeNoPayload(name, payload);
      return { ok: true };
    case CHANNEL_REQ_UNBLOCK:
      decodeNoPayload(name, payload);
      return { ok: true, event: { type: 'CHANNEL_UNBLOCK', channelId } };
    case CHANNEL_REQ_CLOSE_STDIN:
      decodeNoPayload(name, payload);
      return { ok: true, event: { type: 'CHANNEL_CLOSE_STDIN', channelId } };
    case CHANNEL_REQ_WINDOW_CHANGE: {
      const size = decodeWindowChange(payload);
      return { ok: true, event: { type: 'CHANNEL_RESIZE', channelId, cols: size.cols, rows: size.rows } };
    }
    case CHANNEL_REQ_SIGNAL:
      return { ok: true, event: { type: 'CHANNEL_SIGNAL', channelId, signal: decodeSignal(payload) } };
    default:
      return { ok: false };
  }
}

function signatureValid(ctx: ssh2.PublicKeyAuthContext): boolean {
  const key = ssh2.utils.parseKey(ctx.key.data);
  if (key instanceof Error) return false;
  const parsed = Array.isArray(key) ? key[0] : key;
  return parsed?.verify(ctx.blob!, ctx.signature!, ctx.hashAlgo) === true;
}
