/**
 * tether's SSH extensions on top of ssh2 1.17.0 (pinned exactly): the only
 * module that touches ssh2 internals. Everything here exists because ssh2's
 * public API cannot express it:
 *
 * - ssh2 answers every global request it does not know with failure, on both
 *   ends, so `container-ids`, `version` and `container-info@tether` need to be
 *   taken before its handler.
 * - SSH_MSG_REQUEST_FAILURE carries nothing in SSH, and ssh2 neither sends nor
 *   reads anything after it; tether's refusals of `kill@tether` and
 *   `stop@tether` append their reason, so the guest writes that message
 *   itself and the appliance reads it before ssh2's handler.
 * - ssh2's packet parser throws away the type-specific data of channel types
 *   it does not know before any per-connection handler runs, so the `attach`
 *   extra data (container ID, offset) is only visible in the raw
 *   SSH_MSG_CHANNEL_OPEN payload.
 * - ssh2's server refuses every request on a channel that is not a session,
 *   and pre-parses `signal` and `window-change` (dropping the connection if
 *   they are malformed); its client refuses every request but exit-status and
 *   exit-signal. So requests on attach channels are taken raw on both ends.
 *
 * How: ssh2 dispatches every inbound message through one shared table
 * (lib/protocol/handlers.js) that it indexes at dispatch time. We wrap four
 * of its entries once. Each wrapper asks a WeakMap whether the connection's
 * Protocol object belongs to tether; a tether hook returns true when it took
 * the message, and every other message (and every connection tether was not
 * given) goes to ssh2's original entry untouched.
 *
 * Outbound, packets are written the way Protocol.js writes its own (the
 * connection's packet writer, then ssh2's sendPacket, which queues during a
 * re-key). Replies to our global and channel requests are matched through
 * ssh2's own FIFO callback queues, so they interleave correctly with ssh2's
 * keepalives and forwarding requests.
 *
 * Two more things make attach channels trustworthy: the guest's channel
 * corrects how ssh2 resumes output after a window stall (ssh2 1.17 loses
 * stderr and duplicates stdout there; see AttachChannel), and the
 * appliance's channel holds events that arrive before its promise resolves
 * (see holdUntilHeard).
 */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import type { Client, ClientChannel, Connection } from 'ssh2';
// @ts-expect-error ssh2 ships no types for its internals; the shapes used are declared below.
import messageHandlers from 'ssh2/lib/protocol/handlers.js';
// @ts-expect-error (as above)
import protocolUtils from 'ssh2/lib/protocol/utils.js';
// @ts-expect-error (as above)
import channelModule from 'ssh2/lib/Channel.js';
// @ts-expect-error (as above)
import connectionUtils from 'ssh2/lib/utils.js';
import {
  CHANNEL_ATTACH,
  CHANNEL_REQ_EXIT_SIGNAL,
  CHANNEL_REQ_EXIT_STATUS,
  CHANNEL_REQ_OUTPUT_OFFSET,
  decodeAttachFailure,
  decodeAttachOpen,
  encodeAttachFailure,
  encodeAttachOpen,
  encodeExitSignal,
  encodeExitStatus,
  encodeOutputOffset,
  GLOBAL_REQUESTS,
  OPEN_FAILURE,
  Reader,
  WireError,
  Writer,
  type AttachFailure,
  type AttachRequest,
} from '../../shared/wire.ts';

// --- the ssh2 internals we rely on (pinned by test/ssh-extension.test.ts) ----

interface PacketWriter {
  allocStart: number;
  alloc(size: number): Buffer;
  finalize(packet: Buffer): Buffer;
}

interface Protocol {
  _packetRW: { write: PacketWriter };
  requestSuccess(data?: Buffer): void;
  requestFailure(): void;
  channelOpenConfirm(remote: number, local: number, window: number, packetSize: number): void;
  channelOpenFail(remote: number, reason: number, description: string): void;
  channelSuccess(remote: number): void;
  channelFailure(remote: number): void;
}

interface ChannelManager {
  add(value?: unknown): number;
  update(id: number, value: unknown): void;
  get(id: number): unknown;
  remove(id: number): void;
}

interface ServerInternals {
  _protocol: Protocol;
  _chanMgr: ChannelManager;
  authenticated: boolean;
}

/** ssh2's client settles global-request replies FIFO: (false, data) success, true failure, Error disconnect. */
type GlobalReply = (failed: boolean | Error, data?: Buffer | null) => void;

interface ClientInternals {
  _protocol: Protocol;
  _chanMgr: ChannelManager;
  _callbacks: GlobalReply[];
  _sock: Socket | undefined;
}

interface ChannelEnd {
  id: number;
  window: number;
  packetSize: number;
  state: 'open' | 'eof' | 'closing' | 'closed';
}

interface ChannelInfo {
  type: string;
  incoming: ChannelEnd;
  outgoing: ChannelEnd;
}

type WriteCallback = (error?: Error | null) => void;

/** lib/Channel.js: the Duplex ssh2 uses for every channel, on both ends. */
interface SshChannel extends Duplex {
  incoming: ChannelEnd;
  outgoing: ChannelEnd;
  stderr: Writable;
  /** What is left of a stdout / stderr write that ran out of window, and its callback. */
  _chunk: Buffer | undefined;
  _chunkcb: WriteCallback | undefined;
  _chunkErr: Buffer | undefined;
  _chunkcbErr: WriteCallback | undefined;
  /** Set when output ran out of window; the next WINDOW_ADJUST resumes a leftover only if it is set. */
  _waitWindow: boolean;
  /** Channel-request reply callbacks, settled FIFO by CHANNEL_SUCCESS (false) / CHANNEL_FAILURE (true). */
  _callbacks: ((failed: boolean) => void)[];
  _client: { _protocol: Protocol };
  close(): void;
}

const { Channel, MAX_WINDOW, PACKET_SIZE } = channelModule as {
  Channel: new (client: unknown, info: ChannelInfo, opts?: { server: boolean }) => SshChannel;
  MAX_WINDOW: number;
  PACKET_SIZE: number;
};
const { sendPacket } = protocolUtils as { sendPacket(proto: Protocol, packet: Buffer): void };
const { isWritable, onCHANNEL_CLOSE } = connectionUtils as {
  isWritable(socket: Socket | undefined): boolean;
  onCHANNEL_CLOSE(conn: unknown, localId: number, channel: SshChannel, err: undefined, dead: boolean): void;
};

// --- interposing on ssh2's dispatch table ------------------------------------

/** RFC 4250 §4.1.2 message numbers of the messages tether takes. */
const MSG = { GLOBAL_REQUEST: 80, REQUEST_FAILURE: 82, CHANNEL_OPEN: 90, CHANNEL_REQUEST: 98 } as const;
type Interposed = (typeof MSG)[keyof typeof MSG];

/** Returns true when it took the message; false leaves it to ssh2. */
type Hook = (proto: Protocol, payload: Buffer) => boolean;
type Hooks = Partial<Record<Interposed, Hook>>;

const hooksByProtocol = new WeakMap<Protocol, Hooks>();
let interposed = false;

function interpose(): void {
  if (interposed) return;
  const table = messageHandlers as unknown[];
  for (const type of Object.values(MSG)) {
    const original = table[type];
    if (typeof original !== 'function') {
      throw new Error(`ssh2 internals changed: ssh2/lib/protocol/handlers.js has no handler for message ${type}`);
    }
    table[type] = (proto: Protocol, payload: Buffer) => {
      if (hooksByProtocol.get(proto)?.[type]?.(proto, payload) !== true) original(proto, payload);
    };
  }
  interposed = true;
}

/** Parse a message header; a malformed one is declined so ssh2 handles it exactly as before. */
function parseOrDecline(parse: () => boolean): boolean {
  try {
    return parse();
  } catch (error) {
    if (error instanceof WireError) return false;
    throw error;
  }
}

// --- outbound messages ---------------------------------------------------------

/** The way Protocol.js sends its own messages (see Protocol.ping). */
function send(proto: Protocol, message: Buffer): void {
  const writer = proto._packetRW.write;
  const start = writer.allocStart;
  const packet = writer.alloc(message.length);
  packet.set(message, start);
  sendPacket(proto, writer.finalize(packet));
}

function sendGlobalRequest(proto: Protocol, name: string, wantReply: boolean, payload: Uint8Array): void {
  send(proto, new Writer('global request').byte(MSG.GLOBAL_REQUEST, 'type').string(name, 'request name')
    .bool(wantReply, 'want reply').raw(payload).finish());
}

function sendChannelRequest(proto: Protocol, recipient: number, name: string, wantReply: boolean, payload: Uint8Array): void {
  send(proto, new Writer('channel request').byte(MSG.CHANNEL_REQUEST, 'type').uint32(recipient, 'recipient channel')
    .string(name, 'request type').bool(wantReply, 'want reply').raw(payload).finish());
}

// --- channel requests, both ends ----------------------------------------------

export type ChannelRequestListener = (name: string, payload: Buffer, reply: ((ok: boolean) => void) | undefined) => void;

/**
 * Emits 'request' (name, payload, reply) on a channel; `reply` is undefined
 * without want-reply. Replies leave in request order (RFC 4254 §5.4)
 * whatever order they are given in, and nobody listening means failure.
 */
class RequestDelivery {
  readonly #pending: { ok?: boolean }[] = [];

  constructor(readonly channel: SshChannel) {}

  deliver(name: string, wantReply: boolean, payload: Buffer): void {
    if (!wantReply) {
      this.channel.emit('request', name, payload, undefined);
      return;
    }
    const slot: { ok?: boolean } = {};
    this.#pending.push(slot);
    const reply = (ok: boolean) => {
      if (slot.ok !== undefined) return;
      slot.ok = ok;
      this.#sendReplies();
    };
    if (this.channel.listenerCount('request') === 0) reply(false);
    else this.channel.emit('request', name, payload, reply);
  }

  #sendReplies(): void {
    const { outgoing, _client } = this.channel;
    while (this.#pending[0]?.ok !== undefined) {
      const { ok } = this.#pending.shift()!;
      if (outgoing.state !== 'open' && outgoing.state !== 'eof') continue;
      if (ok) _client._protocol.channelSuccess(outgoing.id);
      else _client._protocol.channelFailure(outgoing.id);
    }
  }
}

/** Parses a CHANNEL_REQUEST addressed to a channel `find` recognises, and hands it over. */
function channelRequestHook(find: (recipient: number) => RequestDelivery | undefined, declined: readonly string[]): Hook {
  return (_proto, payload) => parseOrDecline(() => {
    const r = new Reader(payload.subarray(1), 'channel request');
    const recipient = r.uint32('recipient channel');
    // ChannelManager.get throws on 2^32-1, a valid uint32 but never an ID it hands out.
    const requests = recipient < 0xffffffff ? find(recipient) : undefined;
    if (!requests) return false;
    const name = r.string('request type');
    const wantReply = r.bool('want reply');
    if (declined.includes(name)) return false;
    requests.deliver(name, wantReply, r.rest());
    return true;
  });
}

// --- server side (guest) -----------------------------------------------------

/**
 * An accepted attach channel. Writes are channel data (stdout or tty output)
 * and `.stderr` writes are extended data type 1; both honour the peer's
 * window and packet size, so write() returning false and 'drain' work.
 */
export interface ServerAttachChannel extends Duplex {
  readonly stderr: Writable;
  /** Tell the appliance the output-log offset of the first byte that follows: call before writing any. */
  sendOffset(offset: bigint): void;
  /** Sent after all output written so far on both streams; call before end(). */
  exitStatus(code: number): void;
  exitSignal(name: string, coreDumped?: boolean, message?: string): void;
  /** CLOSE at once, without EOF (end() sends the rest of stderr, EOF, then CLOSE). */
  close(): void;
  on(event: 'request', listener: ChannelRequestListener): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A refusal that says why: `detail` goes out after SSH_MSG_REQUEST_FAILURE (see askGlobal). */
export interface Refusal {
  detail: Uint8Array;
}

export interface ServerHandlers {
  /** A tether global request from the authenticated appliance: the reply payload, or null or a Refusal for failure. */
  globalRequest(name: string, payload: Buffer): Buffer | Refusal | null;
  /** Answer with exactly one of accept() or reject(), now or later. */
  openAttach(request: AttachRequest, accept: () => ServerAttachChannel, reject: (failure: AttachFailure) => void): void;
}

const EMPTY = Buffer.alloc(0);

/** Resolves once everything written to `stream` so far has been handed to ssh2. */
export function flushed(stream: Writable): Promise<void> {
  if (stream.writableFinished) return Promise.resolve();
  if (stream.writableEnded) return once(stream, 'finish').then(() => undefined);
  // ssh2's _write calls back only after the chunk went out, so an empty write is a barrier.
  return new Promise((resolve) => stream.write(EMPTY, () => resolve()));
}

/**
 * ssh2's own Channel (so its handlers route data, window adjusts, EOF and
 * CLOSE to it) with what an attach channel adds: ordered exit reporting,
 * an end() that cannot lose stderr, raw channel requests, and a fix for how
 * ssh2 resumes output that waited for window space.
 *
 * On SSH_MSG_CHANNEL_WINDOW_ADJUST, ssh2 1.17 calls _write again with the
 * leftover of stdout if there is one, else of stderr, but never clears a
 * leftover once it has gone out. So (a) stderr waiting behind stdout is
 * never resumed (lost), and (b) a later stderr stall makes it send stale
 * stdout bytes a second time (duplicated). Here every write clears the
 * leftover it replaces, and stdout hands any window it leaves to stderr, or
 * keeps ssh2 waiting for window on stderr's behalf.
 */
class AttachChannel extends Channel {
  readonly requests = new RequestDelivery(this);
  #exitSent: Promise<void> = Promise.resolve();

  constructor(conn: ServerInternals, info: ChannelInfo) {
    super(conn, info, { server: true });
    const stderrWrite = this.stderr._write.bind(this.stderr);
    this.stderr._write = (chunk: Buffer, encoding: BufferEncoding, callback: WriteCallback) => {
      this._chunkErr = this._chunkcbErr = undefined;
      stderrWrite(chunk, encoding, callback);
    };
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: WriteCallback): void {
    this._chunk = this._chunkcb = undefined;
    super._write(chunk, encoding, callback);
    if (this._chunk === undefined && this._chunkErr !== undefined) {
      if (this.outgoing.window > 0) this.stderr._write(this._chunkErr, encoding, this._chunkcbErr!);
      else this._waitWindow = true;
    }
  }

  sendOffset(offset: bigint): void {
    this.#send(CHANNEL_REQ_OUTPUT_OFFSET, encodeOutputOffset(offset));
  }

  exitStatus(code: number): void {
    this.#afterOutput(CHANNEL_REQ_EXIT_STATUS, encodeExitStatus(code));
  }

  exitSignal(name: string, coreDumped = false, message = ''): void {
    this.#afterOutput(CHANNEL_REQ_EXIT_SIGNAL, encodeExitSignal({ name, coreDumped, message, lang: '' }));
  }

  #send(name: string, payload: Buffer): void {
    if (this.outgoing.state === 'open' || this.outgoing.state === 'eof') {
      sendChannelRequest(this._client._protocol, this.outgoing.id, name, false, payload);
    }
  }

  /** An exit report must not overtake output still waiting for window space. */
  #afterOutput(name: string, payload: Buffer): void {
    if (this.writableEnded) throw new Error(`${name} must be sent before end()`);
    this.#exitSent = Promise.all([flushed(this), flushed(this.stderr)]).then(() => this.#send(name, payload));
  }

  /**
   * ssh2 sends EOF and CLOSE on 'prefinish', which follows this callback. By
   * default that happens once stdout is flushed, even if stderr (a separate
   * stream sharing the window) still holds data: wait for it and any exit.
   */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.stderr.writableEnded) this.stderr.end();
    Promise.all([this.#exitSent, flushed(this.stderr)]).then(() => callback(), () => callback());
  }
}

function serverInternals(conn: Connection): ServerInternals {
  const c = conn as unknown as ServerInternals;
  if (typeof c._protocol?._packetRW?.write?.alloc !== 'function' || typeof c._chanMgr?.add !== 'function') {
    throw new Error('ssh2 internals changed: server Connection lacks _protocol._packetRW or _chanMgr');
  }
  return c;
}

/**
 * Make a guest-side connection speak tether. Call it in the server's
 * 'connection' listener, before authentication, so it applies from the first
 * message. Until the appliance has authenticated, tether's requests get
 * ssh2's default refusals.
 */
export function serveTether(conn: Connection, handlers: ServerHandlers): void {
  interpose();
  const c = serverInternals(conn);
  let gone = false;
  const markGone = () => {
    gone = true;
  };
  conn.once('end', markGone).once('close', markGone);

  const globalRequest: Hook = (proto, payload) => parseOrDecline(() => {
    const r = new Reader(payload.subarray(1), 'global request');
    const name = r.string('request name');
    const wantReply = r.bool('want reply');
    if (!GLOBAL_REQUESTS.includes(name) || !c.authenticated) return false;
    // Replying synchronously keeps replies in request order: every request
    // ssh2 answers itself is answered synchronously too, as long as nobody
    // listens for its 'request' event (the guest does not).
    const reply = handlers.globalRequest(name, r.rest());
    if (wantReply) {
      if (reply === null) proto.requestFailure();
      else if (reply instanceof Uint8Array) proto.requestSuccess(reply);
      else send(proto, new Writer('request failure').byte(MSG.REQUEST_FAILURE, 'type').raw(reply.detail).finish());
    }
    return true;
  });

  const channelOpen: Hook = (proto, payload) => parseOrDecline(() => {
    const r = new Reader(payload.subarray(1), 'channel open');
    if (r.string('channel type') !== CHANNEL_ATTACH) return false;
    const sender = r.uint32('sender channel');
    const window = r.uint32('initial window size');
    const packetSize = r.uint32('maximum packet size');
    if (!c.authenticated) {
      proto.channelOpenFail(sender, OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED, '');
      return true;
    }
    let request: AttachRequest;
    try {
      request = decodeAttachOpen(r.rest());
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      proto.channelOpenFail(sender, OPEN_FAILURE.CONNECT_FAILED, error.message);
      return true;
    }
    const localId = c._chanMgr.add();
    if (localId === -1) {
      proto.channelOpenFail(sender, OPEN_FAILURE.RESOURCE_SHORTAGE, 'no free channels');
      return true;
    }

    let answered = false;
    const answer = () => {
      if (answered) throw new Error(`attach ${request.containerId} was already answered`);
      answered = true;
    };
    const accept = (): ServerAttachChannel => {
      answer();
      const channel = new AttachChannel(c, {
        type: CHANNEL_ATTACH,
        incoming: { id: localId, window: MAX_WINDOW, packetSize: PACKET_SIZE, state: 'open' },
        outgoing: { id: sender, window, packetSize, state: 'open' },
      });
      if (gone) {
        // Accepted after the connection ended: close it the way ssh2 closes
        // the channels of a dead connection, so the guest sees 'close'.
        onCHANNEL_CLOSE(conn, localId, channel, undefined, true);
      } else {
        c._chanMgr.update(localId, channel);
        proto.channelOpenConfirm(sender, localId, MAX_WINDOW, PACKET_SIZE);
      }
      return channel;
    };
    const reject = (failure: AttachFailure): void => {
      const { reason, description } = encodeAttachFailure(failure);
      answer();
      c._chanMgr.remove(localId);
      proto.channelOpenFail(sender, reason, description);
    };
    handlers.openAttach(request, accept, reject);
    return true;
  });

  const channelRequest = channelRequestHook((recipient) => {
    const channel = c._chanMgr.get(recipient);
    return channel instanceof AttachChannel ? channel.requests : undefined;
  }, []);

  hooksByProtocol.set(c._protocol, {
    [MSG.GLOBAL_REQUEST]: globalRequest,
    [MSG.CHANNEL_OPEN]: channelOpen,
    [MSG.CHANNEL_REQUEST]: channelRequest,
  });
}

/** Guest → appliance notification (want-reply false), e.g. container-ids when an exec is added. */
export function pushGlobal(conn: Connection, name: string, payload: Uint8Array): void {
  const c = serverInternals(conn);
  // Before authentication this would tell an unknown peer about our containers.
  if (!c.authenticated) throw new Error(`cannot push ${name} before the appliance has authenticated`);
  sendGlobalRequest(c._protocol, name, false, payload);
}

// --- client side (appliance) -------------------------------------------------

export interface ClientHandlers {
  /** A tether global request pushed by the guest; if it wanted a reply, it gets success. */
  globalRequest(name: string, payload: Buffer): void;
}

/**
 * ssh2's client Channel for an attach: `.stderr` is readable extended data,
 * 'exit' is emitted with (code) or (null, 'SIG' + name, coreDumped, message),
 * and the guest's other channel requests (output-offset@tether) are emitted
 * as 'request' like on the server side.
 */
export interface ClientAttachChannel extends ClientChannel {
  /** Send a channel request; resolves to whether the guest accepted it (true at once without want-reply). */
  request(name: string, payload?: Uint8Array, wantReply?: boolean): Promise<boolean>;
  on(event: 'request', listener: ChannelRequestListener): this;
  on(event: 'exit', listener: (code: number | null, signal?: string, coreDumped?: boolean, message?: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Request deliveries of the channels opened through openChannel, which are the only ones tether hooks. */
const clientRequests = new WeakMap<object, RequestDelivery>();

export class ChannelOpenError extends Error {
  constructor(readonly reason: number, readonly description: string) {
    super(`channel open failed (reason ${reason}): ${description}`);
    this.name = 'ChannelOpenError';
  }
}

export class AttachOpenError extends ChannelOpenError {
  readonly failure: AttachFailure;

  constructor(containerId: string, reason: number, description: string) {
    super(reason, description);
    this.failure = decodeAttachFailure(reason, description);
    this.message = `attach ${containerId}: ${description || this.failure.message}`;
    this.name = 'AttachOpenError';
  }
}

function clientInternals(client: Client): ClientInternals {
  return client as unknown as ClientInternals;
}

function connectedClient(client: Client, what: string): ClientInternals {
  const c = clientInternals(client);
  if (!isWritable(c._sock) || !c._protocol) throw new Error(`${what}: not connected`);
  return c;
}

/**
 * Make an appliance-side client speak tether. Call before connect(): the
 * hook is attached to each connection's protocol object on 'handshake',
 * which ssh2 emits before it dispatches any connection-layer message.
 */
export function extendClient(client: Client, handlers: ClientHandlers): void {
  interpose();
  const globalRequest: Hook = (proto, payload) => parseOrDecline(() => {
    const r = new Reader(payload.subarray(1), 'global request');
    const name = r.string('request name');
    const wantReply = r.bool('want reply');
    if (!GLOBAL_REQUESTS.includes(name)) return false;
    handlers.globalRequest(name, r.rest());
    if (wantReply) proto.requestSuccess();
    return true;
  });
  // A failure with a reason after it settles the oldest request, as ssh2's own handler would, with the reason.
  const requestFailure: Hook = (_proto, payload) => {
    if (payload.length <= 1) return false;
    clientInternals(client)._callbacks.shift()?.(true, Buffer.from(payload.subarray(1)));
    return true;
  };
  // ssh2's client turns exit-status and exit-signal into 'exit' itself.
  const channelRequest = channelRequestHook((recipient) => {
    const channel = clientInternals(client)._chanMgr.get(recipient);
    return typeof channel === 'object' && channel !== null ? clientRequests.get(channel) : undefined;
  }, [CHANNEL_REQ_EXIT_STATUS, CHANNEL_REQ_EXIT_SIGNAL]);
  client.on('handshake', () => {
    hooksByProtocol.set(clientInternals(client)._protocol, {
      [MSG.GLOBAL_REQUEST]: globalRequest,
      [MSG.REQUEST_FAILURE]: requestFailure,
      [MSG.CHANNEL_REQUEST]: channelRequest,
    });
  });
}

/** How a guest answered a global request: its reply payload, or what followed its failure (empty from a standard peer). */
export type GlobalAnswer = { ok: true; payload: Buffer } | { ok: false; detail: Buffer };

/** Send a global request that wants a reply, and resolve to the answer; rejects if the connection closes first. */
export function askGlobal(client: Client, name: string, payload: Uint8Array): Promise<GlobalAnswer> {
  return new Promise((resolve, reject) => {
    const c = connectedClient(client, name);
    c._callbacks.push((failed, data) => {
      if (failed instanceof Error) reject(new Error(`${name}: connection closed before the reply`, { cause: failed }));
      else if (failed) resolve({ ok: false, detail: data ?? Buffer.alloc(0) });
      else resolve({ ok: true, payload: data ?? Buffer.alloc(0) });
    });
    sendGlobalRequest(c._protocol, name, true, payload);
  });
}

/**
 * Send a global request; resolves to the reply payload (empty if none), null
 * on SSH_MSG_REQUEST_FAILURE or without want-reply; rejects if the connection
 * closes first.
 */
export async function requestGlobal(client: Client, name: string, payload: Uint8Array, wantReply = true): Promise<Buffer | null> {
  if (wantReply) {
    const answer = await askGlobal(client, name, payload);
    return answer.ok ? answer.payload : null;
  }
  sendGlobalRequest(connectedClient(client, name)._protocol, name, false, payload);
  return null;
}

/** ssh2's client builds its open-failure error message from this prefix and the description. */
const OPEN_FAILURE_PREFIX = '(SSH) Channel open failure: ';

/**
 * Open a channel of any type with raw extra data (attach uses it; so do the
 * tests, to send what a broken peer would).
 */
export function openChannel(client: Client, type: string, extraData: Uint8Array): Promise<ClientAttachChannel> {
  return new Promise((resolve, reject) => {
    const c = connectedClient(client, `open ${type}`);
    // ssh2 keeps this callback in its channel table; its CHANNEL_OPEN_CONFIRMATION
    // handler builds a Channel of `.type` and calls back, CHANNEL_OPEN_FAILURE
    // and disconnection call back with an error.
    const opened = Object.assign((error: (Error & { reason?: unknown }) | undefined, channel?: SshChannel) => {
      if (!error) resolve(asAttachChannel(channel!));
      else if (typeof error.reason === 'number') {
        reject(new ChannelOpenError(error.reason, error.message.replace(OPEN_FAILURE_PREFIX, '')));
      } else reject(error);
    }, { type });
    const localId = c._chanMgr.add(opened);
    if (localId === -1) throw new Error(`open ${type}: no free channels`);
    send(c._protocol, new Writer('channel open').byte(MSG.CHANNEL_OPEN, 'type').string(type, 'channel type')
      .uint32(localId, 'sender channel').uint32(MAX_WINDOW, 'initial window size')
      .uint32(PACKET_SIZE, 'maximum packet size').raw(extraData).finish());
  });
}

/**
 * ssh2 parses every packet of one socket read before any promise
 * continuation runs, so whatever the guest sends right behind the open
 * confirmation (output-offset, exit-status of a short-lived process) is
 * emitted before openChannel's caller can listen. Data waits in the stream;
 * these events are held until their first listener arrives.
 */
const HELD_EVENTS = ['request', 'exit'];

function holdUntilHeard(channel: SshChannel): void {
  const held: [string, unknown[]][] = [];
  const emit = channel.emit.bind(channel);
  channel.emit = (event: string | symbol, ...args: unknown[]) => {
    if (typeof event === 'string' && HELD_EVENTS.includes(event) && channel.listenerCount(event) === 0) {
      held.push([event, args]);
      return false;
    }
    return emit(event, ...args);
  };
  channel.on('newListener', (event: string | symbol) => {
    if (!held.some(([name]) => name === event)) return;
    // 'newListener' comes before the listener is added.
    queueMicrotask(() => {
      for (const entry of held.filter(([name]) => name === event)) {
        held.splice(held.indexOf(entry), 1);
        emit(event, ...entry[1]);
      }
    });
  });
}

function asAttachChannel(channel: SshChannel): ClientAttachChannel {
  holdUntilHeard(channel);
  clientRequests.set(channel, new RequestDelivery(channel));
  const request = (name: string, payload: Uint8Array = EMPTY, wantReply = true): Promise<boolean> =>
    new Promise((resolve, reject) => {
      const { outgoing, incoming } = channel;
      if (outgoing.state !== 'open' && outgoing.state !== 'eof') throw new Error(`${name}: channel is closed`);
      if (wantReply) {
        channel._callbacks.push((failed) => {
          // ssh2 fails outstanding callbacks when the channel closes, after marking it closed.
          if (incoming.state === 'closed') reject(new Error(`${name}: channel closed before the reply`));
          else resolve(!failed);
        });
      }
      sendChannelRequest(channel._client._protocol, outgoing.id, name, wantReply, payload);
      if (!wantReply) resolve(true);
    });
  return Object.assign(channel, { request }) as unknown as ClientAttachChannel;
}

/** Open an attach channel; rejects with AttachOpenError (`.failure`) when the guest refuses. */
export async function openAttach(client: Client, request: AttachRequest): Promise<ClientAttachChannel> {
  const extraData = encodeAttachOpen(request);
  try {
    return await openChannel(client, CHANNEL_ATTACH, extraData);
  } catch (error) {
    if (error instanceof ChannelOpenError) throw new AttachOpenError(request.containerId, error.reason, error.description);
    throw error;
  }
}
