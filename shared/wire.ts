/**
 * tether's SSH wire protocol: the payloads of its global requests, its
 * `attach` channel open and its channel requests, as pure codecs over SSH's
 * primitive types (RFC 4251 §5).
 *
 * Decoders take any bytes and either return a value or throw a WireError
 * whose message names what was being decoded and what was wrong; they never
 * throw anything else. Encoders refuse (with a WireError) any value that
 * would not decode back to itself, so a bad value fails at its source rather
 * than on the far side of the serial line.
 */

import type { StateValue } from 'xstate';
import { ConfigError, parseSessionConfig, sessionDocument, type SessionConfig } from './config.ts';

export const PROTOCOL_VERSION = 1;

/** Global requests (appliance → guest; the guest also pushes container-ids and container-info). */
export const REQ_CONTAINER_IDS = 'container-ids';
export const REQ_VERSION = 'version';
export const REQ_CONTAINER_INFO = 'container-info@tether';
/** Appliance → guest: start or stop reporting actor states. */
export const REQ_INSPECT = 'inspect@tether';
/** Guest → appliance only, while inspected: the actor states that changed. */
export const REQ_ACTOR_STATES = 'actor-states@tether';
/** Appliance → guest: a signal to a session's process or process group (the API's kill). */
export const REQ_KILL = 'kill@tether';
/** Appliance → guest: stop a session, with SIGKILL after a timeout (the API's stop). */
export const REQ_STOP = 'stop@tether';
export const REQ_EXEC = 'exec@tether';
export const GLOBAL_REQUESTS: readonly string[] = [REQ_CONTAINER_IDS, REQ_VERSION, REQ_CONTAINER_INFO, REQ_INSPECT, REQ_ACTOR_STATES, REQ_KILL, REQ_STOP, REQ_EXEC];

/** The channel type that carries one container process's console. */
export const CHANNEL_ATTACH = 'attach';

/** Channel requests on an attach channel (appliance → guest). */
export const CHANNEL_REQ_PING = 'ping';
export const CHANNEL_REQ_UNBLOCK = 'unblock';
export const CHANNEL_REQ_WINDOW_CHANGE = 'window-change';
export const CHANNEL_REQ_CLOSE_STDIN = 'close-stdin';
export const CHANNEL_REQ_SIGNAL = 'signal';
/** Channel requests guest → appliance: exit reports (RFC 4254 §6.10) and where the output starts. */
export const CHANNEL_REQ_EXIT_STATUS = 'exit-status';
export const CHANNEL_REQ_EXIT_SIGNAL = 'exit-signal';
export const CHANNEL_REQ_OUTPUT_OFFSET = 'output-offset@tether';

/** Attach offset meaning "from the current end of the output log". */
export const OFFSET_LIVE = 2n ** 64n - 1n;

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = {
  ADMINISTRATIVELY_PROHIBITED: 1,
  CONNECT_FAILED: 2,
  UNKNOWN_CHANNEL_TYPE: 3,
  RESOURCE_SHORTAGE: 4,
} as const;

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** A short rendering of an offending value for error messages. */
function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return `${value}n`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** A lone surrogate would be replaced by U+FFFD in UTF-8, so it cannot round-trip. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Reads SSH primitives from a payload, naming the field whenever the bytes run out or are invalid. */
export class Reader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  /** `what` prefixes every error: the payload being decoded, e.g. "attach open: extra data". */
  constructor(bytes: Uint8Array, readonly what: string) {
    this.#bytes = bytes;
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  fail(problem: string): never {
    throw new WireError(`${this.what}: ${problem}`);
  }

  #take(n: number, field: string): Uint8Array {
    if (this.remaining < n) {
      throw new WireError(
        `${this.what} truncated: need ${n} bytes for ${field} at offset ${this.#offset}, have ${this.remaining}`,
      );
    }
    const out = this.#bytes.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  byte(field: string): number {
    return this.#take(1, field)[0]!;
  }

  uint32(field: string): number {
    const b = this.#take(4, field);
    return b[0]! * 0x1000000 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!);
  }

  uint64(field: string): bigint {
    const b = this.#take(8, field);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }

  /** RFC 4251: any non-zero byte is TRUE. */
  bool(field: string): boolean {
    return this.byte(field) !== 0;
  }

  /** An SSH `string` as raw bytes (a view, not a copy). */
  bytes(field: string): Buffer {
    const length = this.uint32(`${field} length`);
    const b = this.#take(length, field);
    return Buffer.from(b.buffer, b.byteOffset, b.length);
  }

  /** An SSH `string` holding UTF-8 text. */
  string(field: string): string {
    const b = this.bytes(field);
    try {
      return strictUtf8.decode(b);
    } catch {
      return this.fail(`${field} is not valid UTF-8`);
    }
  }

  /** An SSH `name-list` (RFC 4251 §5): comma-separated, names non-empty. */
  nameList(field: string): string[] {
    const text = this.string(field);
    if (text === '') return [];
    const names = text.split(',');
    const empty = names.indexOf('');
    if (empty !== -1) this.fail(`${field} has an empty name at position ${empty}`);
    return names;
  }

  /** Everything not yet read (a view). */
  rest(): Buffer {
    const b = this.#take(this.remaining, 'the rest');
    return Buffer.from(b.buffer, b.byteOffset, b.length);
  }

  /** Insist the payload has been read completely. */
  end(): void {
    if (this.remaining > 0) this.fail(`${this.remaining} unexpected trailing bytes at offset ${this.#offset}`);
  }
}

/** Builds a payload from SSH primitives, refusing values the type cannot carry. */
export class Writer {
  readonly #parts: Uint8Array[] = [];
  #length = 0;

  constructor(readonly what: string) {}

  fail(problem: string): never {
    throw new WireError(`${this.what}: ${problem}`);
  }

  raw(bytes: Uint8Array): this {
    this.#parts.push(bytes);
    this.#length += bytes.length;
    return this;
  }

  byte(value: number, field: string): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) this.fail(`${field}: expected an integer 0..255, got ${show(value)}`);
    return this.raw(Uint8Array.of(value));
  }

  uint32(value: number, field: string): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      this.fail(`${field}: expected an integer 0..4294967295, got ${show(value)}`);
    }
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value);
    return this.raw(b);
  }

  uint64(value: bigint, field: string): this {
    if (typeof value !== 'bigint' || value < 0n || value > OFFSET_LIVE) {
      this.fail(`${field}: expected a bigint 0..2^64-1, got ${show(value)}`);
    }
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(value);
    return this.raw(b);
  }

  bool(value: boolean, field: string): this {
    if (typeof value !== 'boolean') this.fail(`${field}: expected boolean, got ${show(value)}`);
    return this.raw(Uint8Array.of(value ? 1 : 0));
  }

  bytes(value: Uint8Array, field: string): this {
    return this.uint32(value.length, `${field} length`).raw(value);
  }

  string(value: string, field: string): this {
    if (typeof value !== 'string') this.fail(`${field}: expected string, got ${show(value)}`);
    if (LONE_SURROGATE.test(value)) this.fail(`${field}: contains a lone surrogate, which UTF-8 cannot carry`);
    return this.bytes(Buffer.from(value, 'utf8'), field);
  }

  nameList(names: readonly string[], field: string): this {
    names.forEach((name, i) => {
      if (typeof name !== 'string' || name === '' || name.includes(',')) {
        this.fail(`${field}[${i}]: a name must be a non-empty string without commas, got ${show(name)}`);
      }
    });
    return this.string(names.join(','), field);
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts, this.#length);
  }
}

// --- container IDs ---------------------------------------------------------

/** Visible ASCII except the comma, which separates name-list entries. */
const CONTAINER_ID = /^[\x21-\x2b\x2d-\x7e]+$/;
const CONTAINER_ID_RULE = 'non-empty printable ASCII without spaces or commas';

function checkContainerId(id: unknown, path: string, fail: (problem: string) => never): string {
  if (typeof id !== 'string') return fail(`${path}: expected string, got ${show(id)}`);
  if (!CONTAINER_ID.test(id)) fail(`${path}: ${show(id)} is not a container ID (${CONTAINER_ID_RULE})`);
  return id;
}

/** `container-ids` reply / push: one name-list of the IDs running or waiting to start. */
export function encodeContainerIds(ids: readonly string[]): Buffer {
  const w = new Writer(REQ_CONTAINER_IDS);
  ids.forEach((id, i) => checkContainerId(id, `ID ${i}`, (p) => w.fail(p)));
  return w.nameList(ids, 'ID list').finish();
}

export function decodeContainerIds(payload: Uint8Array): string[] {
  const r = new Reader(payload, REQ_CONTAINER_IDS);
  const ids = r.nameList('ID list');
  r.end();
  ids.forEach((id, i) => checkContainerId(id, `ID ${i}`, (p) => r.fail(p)));
  return ids;
}

// --- version -----------------------------------------------------------------

export function encodeVersion(version: number): Buffer {
  return new Writer(REQ_VERSION).uint32(version, 'version').finish();
}

export function decodeVersion(payload: Uint8Array): number {
  const r = new Reader(payload, REQ_VERSION);
  const version = r.uint32('version');
  r.end();
  return version;
}

// --- container info ----------------------------------------------------------

export type ContainerState = 'created' | 'blocked' | 'running' | 'exited' | 'failed';
export const CONTAINER_STATES: readonly ContainerState[] = ['created', 'blocked', 'running', 'exited', 'failed'];

export interface ContainerInfo {
  id: string;
  name: string;
  cmd: string[];
  tty: boolean;
  openStdin: boolean;
  primary: boolean;
  state: ContainerState;
  pid?: number;
  exitCode?: number;
  /** Name without "SIG", as in exit-signal. */
  signal?: string;
  error?: string;
  /** ISO 8601 timestamps. */
  startedAt?: string;
  finishedAt?: string;
  /** The containerVM's host name. */
  hostname?: string;
  /** Seconds a stop waits after the stop signal before SIGKILL (the session's stopTimeout). */
  stopTimeout?: number;
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Checks one untrusted value against ContainerInfo and returns a copy holding
 * only the known fields (unknown ones are dropped so a newer guest can add
 * fields without breaking an older appliance).
 */
function checkContainerInfo(value: unknown, path: string): ContainerInfo {
  const fail = (problem: string): never => {
    throw new WireError(problem);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${path}: expected object, got ${show(value)}`);
  }
  const o = value as Record<string, unknown>;
  const expect = (key: string, type: 'string' | 'boolean'): void => {
    if (typeof o[key] !== type) fail(`${path}.${key}: expected ${type}, got ${show(o[key])}`);
  };
  const optional = (key: string, check: (v: unknown) => boolean, expected: string): void => {
    if (key in o && o[key] !== undefined && !check(o[key])) fail(`${path}.${key}: expected ${expected}, got ${show(o[key])}`);
  };

  checkContainerId(o.id, `${path}.id`, fail);
  expect('name', 'string');
  if (!Array.isArray(o.cmd)) fail(`${path}.cmd: expected array of strings, got ${show(o.cmd)}`);
  (o.cmd as unknown[]).forEach((arg, i) => {
    if (typeof arg !== 'string') fail(`${path}.cmd[${i}]: expected string, got ${show(arg)}`);
  });
  expect('tty', 'boolean');
  expect('openStdin', 'boolean');
  expect('primary', 'boolean');
  if (!CONTAINER_STATES.includes(o.state as ContainerState)) {
    fail(`${path}.state: expected one of ${CONTAINER_STATES.join('|')}, got ${show(o.state)}`);
  }
  optional('pid', (v) => Number.isSafeInteger(v) && (v as number) > 0, 'positive integer');
  optional('exitCode', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 255, 'integer 0..255');
  optional('signal', (v) => typeof v === 'string' && isSignalName(v), 'signal name like TERM');
  optional('error', (v) => typeof v === 'string', 'string');
  const timestamp = (v: unknown) => typeof v === 'string' && ISO_TIMESTAMP.test(v) && !Number.isNaN(Date.parse(v));
  optional('startedAt', timestamp, 'ISO 8601 timestamp');
  optional('finishedAt', timestamp, 'ISO 8601 timestamp');
  optional('hostname', (v) => typeof v === 'string', 'string');
  optional('stopTimeout', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_STOP_TIMEOUT, `integer 0..${MAX_STOP_TIMEOUT}`);

  const info: ContainerInfo = {
    id: o.id as string,
    name: o.name as string,
    cmd: [...(o.cmd as string[])],
    tty: o.tty as boolean,
    openStdin: o.openStdin as boolean,
    primary: o.primary as boolean,
    state: o.state as ContainerState,
  };
  for (const key of ['pid', 'exitCode', 'signal', 'error', 'startedAt', 'finishedAt', 'hostname', 'stopTimeout'] as const) {
    if (o[key] !== undefined) (info as unknown as Record<string, unknown>)[key] = o[key];
  }
  return info;
}

/** Error paths read like the data: container-info[2].tty */
const INFO = 'container-info';

function checkContainerInfoList(value: unknown): ContainerInfo[] {
  if (!Array.isArray(value)) throw new WireError(`${INFO}: expected an array, got ${show(value)}`);
  return value.map((item, i) => checkContainerInfo(item, `${INFO}[${i}]`));
}

/** `container-info@tether` reply / push: one string holding a JSON array of ContainerInfo. */
export function encodeContainerInfo(list: readonly ContainerInfo[]): Buffer {
  const json = JSON.stringify(checkContainerInfoList(list));
  return new Writer(INFO).string(json, 'JSON').finish();
}

export function decodeContainerInfo(payload: Uint8Array): ContainerInfo[] {
  return checkContainerInfoList(parseJsonString(new Reader(payload, INFO)));
}

/** A payload that is one SSH string of JSON text, parsed. */
function parseJsonString(r: Reader): unknown {
  const json = r.string('JSON');
  r.end();
  try {
    return JSON.parse(json);
  } catch (error) {
    return r.fail(`invalid JSON: ${(error as Error).message}`);
  }
}

// --- inspection ------------------------------------------------------------------

/** `inspect@tether`: one boolean, whether the guest is to report its actor states from now on. */
export function encodeInspect(on: boolean): Buffer {
  return new Writer(REQ_INSPECT).bool(on, 'on').finish();
}

export function decodeInspect(payload: Uint8Array): boolean {
  const r = new Reader(payload, REQ_INSPECT);
  const on = r.bool('on');
  r.end();
  return on;
}

export type ActorStatus = 'active' | 'done' | 'stopped';
export const ACTOR_STATUSES: readonly ActorStatus[] = ['active', 'done', 'stopped'];

/** One machine actor's state, as a guest reports it and the appliance's inspect feed shows it. */
export interface ActorState {
  /** The actor ids from the system's root down, the root excluded: [] is the root, ['link', 'ssh'] its link's SSH session. */
  path: string[];
  /** The machine's id: its key in machines/index.ts. */
  machine: string;
  /** xstate's state value: a state's name, or an object of child state values. */
  state: StateValue;
  status: ActorStatus;
  /** The event whose processing led to this state; absent for a state read as it was when watching began. */
  event?: string;
}

/** Deeper than any machine nests its states; a value deeper than this is not a state value. */
const MAX_STATE_DEPTH = 16;

function checkStateValue(value: unknown, path: string, fail: (problem: string) => never, depth = 0): StateValue {
  if (typeof value === 'string') return value;
  if (depth >= MAX_STATE_DEPTH) fail(`${path}: nested deeper than ${MAX_STATE_DEPTH} levels`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(`${path}: expected a state name or an object of state values, got ${show(value)}`);
  }
  // fromEntries defines each key as its own property, even one named __proto__.
  return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, checkStateValue(child, `${path}.${key}`, fail, depth + 1)]));
}

/** Checks one untrusted value against ActorState and returns a copy holding only the known fields. */
function checkActorState(value: unknown, path: string): ActorState {
  const fail = (problem: string): never => {
    throw new WireError(problem);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`${path}: expected object, got ${show(value)}`);
  const o = value as Record<string, unknown>;
  const nonEmpty = (v: unknown, at: string): string => (typeof v === 'string' && v !== '' ? v : fail(`${at}: expected a non-empty string, got ${show(v)}`));
  if (!Array.isArray(o.path)) fail(`${path}.path: expected array of actor ids, got ${show(o.path)}`);
  const state: ActorState = {
    path: (o.path as unknown[]).map((id, i) => nonEmpty(id, `${path}.path[${i}]`)),
    machine: nonEmpty(o.machine, `${path}.machine`),
    state: checkStateValue(o.state, `${path}.state`, fail),
    status: ACTOR_STATUSES.includes(o.status as ActorStatus) ? (o.status as ActorStatus) : fail(`${path}.status: expected one of ${ACTOR_STATUSES.join('|')}, got ${show(o.status)}`),
  };
  if (o.event !== undefined) state.event = typeof o.event === 'string' ? o.event : fail(`${path}.event: expected string, got ${show(o.event)}`);
  return state;
}

const STATES = 'actor-states';

function checkActorStates(value: unknown): ActorState[] {
  if (!Array.isArray(value)) throw new WireError(`${STATES}: expected an array, got ${show(value)}`);
  return value.map((item, i) => checkActorState(item, `${STATES}[${i}]`));
}

/** `actor-states@tether` push: one string holding a JSON array of ActorState. */
export function encodeActorStates(states: readonly ActorState[]): Buffer {
  return new Writer(STATES).string(JSON.stringify(checkActorStates(states)), 'JSON').finish();
}

export function decodeActorStates(payload: Uint8Array): ActorState[] {
  return checkActorStates(parseJsonString(new Reader(payload, STATES)));
}

// --- kill and stop ---------------------------------------------------------------

export interface KillRequest {
  containerId: string;
  /** A canonical signal name without "SIG" (shared/signals.ts). */
  signal: string;
  /** To the session's whole process group rather than its process alone. */
  group: boolean;
}

/** `kill@tether`: string container ID, string signal name, boolean group. */
export function encodeKill(request: KillRequest): Buffer {
  const w = new Writer(REQ_KILL);
  checkContainerId(request.containerId, 'container ID', (p) => w.fail(p));
  checkSignalName(request.signal, 'signal name', (p) => w.fail(p));
  return w.string(request.containerId, 'container ID').string(request.signal, 'signal name').bool(request.group, 'group').finish();
}

export function decodeKill(payload: Uint8Array): KillRequest {
  const r = new Reader(payload, REQ_KILL);
  const containerId = r.string('container ID');
  const signal = r.string('signal name');
  const group = r.bool('group');
  r.end();
  checkContainerId(containerId, 'container ID', (p) => r.fail(p));
  checkSignalName(signal, 'signal name', (p) => r.fail(p));
  return { containerId, signal, group };
}

// --- exec -----------------------------------------------------------------------

export interface ExecRequest {
  /** The container (its primary session) the new session joins. */
  containerId: string;
  /** The new session's ID, chosen by the appliance. */
  sessionId: string;
  /** As a session in the guest config (docs/CONFIG.md), defaults filled in. */
  spec: SessionConfig;
  /** A tty session's terminal size from its first byte (Docker's ConsoleSize). */
  size?: { cols: number; rows: number };
}

/**
 * `exec@tether`: string container ID, string session ID, uint32 columns and
 * uint32 rows (both 0: no size given), then string JSON of the session's
 * spec as the config document spells it.
 */
export function encodeExec(request: ExecRequest): Buffer {
  const w = new Writer(REQ_EXEC);
  checkContainerId(request.containerId, 'container ID', (p) => w.fail(p));
  checkContainerId(request.sessionId, 'session ID', (p) => w.fail(p));
  return w.string(request.containerId, 'container ID').string(request.sessionId, 'session ID')
    .uint32(request.size?.cols ?? 0, 'columns').uint32(request.size?.rows ?? 0, 'rows')
    .string(JSON.stringify(sessionDocument(request.spec)), 'spec').finish();
}

export function decodeExec(payload: Uint8Array): ExecRequest {
  const r = new Reader(payload, REQ_EXEC);
  const containerId = r.string('container ID');
  const sessionId = r.string('session ID');
  const cols = r.uint32('columns');
  const rows = r.uint32('rows');
  const spec = parseJsonString(r);
  checkContainerId(containerId, 'container ID', (p) => r.fail(p));
  checkContainerId(sessionId, 'session ID', (p) => r.fail(p));
  if ((cols === 0) !== (rows === 0)) r.fail(`size: ${cols}x${rows}: give both columns and rows, or neither`);
  try {
    return { containerId, sessionId, spec: parseSessionConfig(spec, 'spec', REQ_EXEC), ...(cols === 0 ? {} : { size: { cols, rows } }) };
  } catch (err) {
    return r.fail(err instanceof ConfigError ? err.problems.join('; ') : (err as Error).message);
  }
}

/**
 * The longest stop timeout, in seconds: the guest waits it out with a timer,
 * and a timer longer than 2^31-1 ms fires at once.
 */
export const MAX_STOP_TIMEOUT = 2_147_483;

export interface StopRequest {
  containerId: string;
  /** The signal that asks the process to stop; absent: the session's own stopSignal. */
  signal?: string;
  /** Seconds from the stop signal to SIGKILL; absent: the session's own stopTimeout. */
  timeout?: number;
}

/**
 * `stop@tether`: string container ID, string signal name (empty: the
 * session's own), boolean timeout given, uint32 timeout in seconds (0 when
 * not given).
 */
export function encodeStop(request: StopRequest): Buffer {
  const w = new Writer(REQ_STOP);
  checkContainerId(request.containerId, 'container ID', (p) => w.fail(p));
  if (request.signal !== undefined) checkSignalName(request.signal, 'signal name', (p) => w.fail(p));
  const { timeout } = request;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 0 || timeout > MAX_STOP_TIMEOUT)) {
    w.fail(`timeout: expected an integer 0..${MAX_STOP_TIMEOUT} (seconds), got ${show(timeout)}`);
  }
  return w.string(request.containerId, 'container ID').string(request.signal ?? '', 'signal name')
    .bool(timeout !== undefined, 'timeout given').uint32(timeout ?? 0, 'timeout').finish();
}

export function decodeStop(payload: Uint8Array): StopRequest {
  const r = new Reader(payload, REQ_STOP);
  const containerId = r.string('container ID');
  const signal = r.string('signal name');
  const given = r.bool('timeout given');
  const timeout = r.uint32('timeout');
  r.end();
  checkContainerId(containerId, 'container ID', (p) => r.fail(p));
  if (signal !== '') checkSignalName(signal, 'signal name', (p) => r.fail(p));
  if (!given && timeout !== 0) r.fail(`timeout: ${timeout} sent with "timeout given" FALSE`);
  if (timeout > MAX_STOP_TIMEOUT) r.fail(`timeout: ${timeout} s is longer than the ${MAX_STOP_TIMEOUT} s a guest can wait`);
  return { containerId, ...(signal === '' ? {} : { signal }), ...(given ? { timeout } : {}) };
}

/**
 * Why the guest refused a kill or a stop. `refused` stands for a failure
 * that came without a reason tether knows (a guest older than the request
 * answers a plain SSH_MSG_REQUEST_FAILURE).
 */
export type RequestFailureKind = 'unknown-id' | 'not-running' | 'unknown-signal' | 'malformed' | 'refused';
const REQUEST_FAILURE_KINDS: readonly RequestFailureKind[] = ['unknown-id', 'not-running', 'unknown-signal', 'malformed', 'refused'];

export interface RequestFailure {
  kind: RequestFailureKind;
  message: string;
}

/**
 * What follows SSH_MSG_REQUEST_FAILURE in a refusal of kill@tether or
 * stop@tether: one string, "<kind>: <message>".
 */
export function encodeRequestFailure(failure: RequestFailure): Buffer {
  const w = new Writer('request failure');
  if (!REQUEST_FAILURE_KINDS.includes(failure.kind)) w.fail(`kind: expected one of ${REQUEST_FAILURE_KINDS.join('|')}, got ${show(failure.kind)}`);
  return w.string(`${failure.kind}: ${failure.message}`, 'reason').finish();
}

/** Tolerant: whatever followed the failure (nothing, from a standard peer) becomes some RequestFailure. */
export function decodeRequestFailure(request: string, detail: Uint8Array): RequestFailure {
  const refused = (message: string): RequestFailure => ({ kind: 'refused', message });
  if (detail.length === 0) return refused(`the guest refused ${request} without a reason (a guest that does not know the request answers so)`);
  let reason: string;
  try {
    const r = new Reader(detail, `${request} failure`);
    reason = r.string('reason');
    r.end();
  } catch (error) {
    return refused(`the guest refused ${request} with an unreadable reason (${(error as Error).message})`);
  }
  const known = /^([a-z-]+): ([\s\S]*)$/.exec(reason);
  if (known && REQUEST_FAILURE_KINDS.includes(known[1] as RequestFailureKind)) return { kind: known[1] as RequestFailureKind, message: known[2]! };
  return refused(reason);
}

// --- attach channel open -------------------------------------------------------

export interface AttachRequest {
  containerId: string;
  /** Output-log offset to replay from; OFFSET_LIVE for live output only. */
  offset: bigint;
}

/** The `attach` channel-open extra data: string container ID, uint64 offset. */
export function encodeAttachOpen(request: AttachRequest): Buffer {
  const w = new Writer('attach open: extra data');
  checkContainerId(request.containerId, 'container ID', (p) => w.fail(p));
  return w.string(request.containerId, 'container ID').uint64(request.offset, 'offset').finish();
}

export function decodeAttachOpen(extraData: Uint8Array): AttachRequest {
  const r = new Reader(extraData, 'attach open: extra data');
  const containerId = r.string('container ID');
  const offset = r.uint64('offset');
  r.end();
  checkContainerId(containerId, 'container ID', (p) => r.fail(p));
  return { containerId, offset };
}

/**
 * `output-offset@tether`: sent by the guest as it accepts an attach, the
 * output-log offset of the first byte that follows; this is how the
 * appliance learns what OFFSET_LIVE resolved to. Always concrete.
 */
export function encodeOutputOffset(offset: bigint): Buffer {
  const w = new Writer(CHANNEL_REQ_OUTPUT_OFFSET);
  if (offset === OFFSET_LIVE) w.fail('offset: must be a concrete offset, got OFFSET_LIVE');
  return w.uint64(offset, 'offset').finish();
}

export function decodeOutputOffset(payload: Uint8Array): bigint {
  const r = new Reader(payload, CHANNEL_REQ_OUTPUT_OFFSET);
  const offset = r.uint64('offset');
  r.end();
  if (offset === OFFSET_LIVE) r.fail('offset: must be a concrete offset, got OFFSET_LIVE');
  return offset;
}

// --- attach open failure -------------------------------------------------------

export type AttachFailureKind = 'unknown-id' | 'launch-failed' | 'exited';

export interface AttachFailure {
  kind: AttachFailureKind;
  message: string;
  /** Present exactly when kind is 'exited'. */
  exitCode?: number;
}

/** What goes into SSH_MSG_CHANNEL_OPEN_FAILURE. */
export interface OpenFailure {
  reason: number;
  description: string;
}

/**
 * unknown-id → administratively prohibited; launch-failed and exited →
 * connect failed. The description carries the kind, so any SSH client shows
 * something sensible and tether's appliance can recover the exact failure.
 */
export function encodeAttachFailure(failure: AttachFailure): OpenFailure {
  const w = new Writer('attach failure');
  const { kind, message, exitCode } = failure;
  if (typeof message !== 'string' || LONE_SURROGATE.test(message)) {
    w.fail(`message: expected a string UTF-8 can carry, got ${show(message)}`);
  }
  if (kind === 'exited') {
    if (!Number.isInteger(exitCode) || exitCode! < 0 || exitCode! > 255) {
      w.fail(`exitCode: expected integer 0..255 for kind exited, got ${show(exitCode)}`);
    }
    return { reason: OPEN_FAILURE.CONNECT_FAILED, description: `exited ${exitCode}: ${message}` };
  }
  if (exitCode !== undefined) w.fail(`exitCode: only kind exited carries one, got ${show(exitCode)} with kind ${show(kind)}`);
  if (kind === 'unknown-id') return { reason: OPEN_FAILURE.ADMINISTRATIVELY_PROHIBITED, description: `${kind}: ${message}` };
  if (kind === 'launch-failed') return { reason: OPEN_FAILURE.CONNECT_FAILED, description: `${kind}: ${message}` };
  return w.fail(`kind: expected unknown-id|launch-failed|exited, got ${show(kind)}`);
}

const FAILURE_DESCRIPTION = /^(unknown-id|launch-failed): ([\s\S]*)$/;
const EXITED_DESCRIPTION = /^exited (0|[1-9]\d{0,2}): ([\s\S]*)$/;
const REASON_NAMES: Record<number, string> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

/**
 * Tolerant: whatever a peer sends (an older guest, ssh2's own automatic
 * rejections with an empty description) becomes some AttachFailure.
 */
export function decodeAttachFailure(reason: number, description: string): AttachFailure {
  const exited = EXITED_DESCRIPTION.exec(description);
  if (exited && Number(exited[1]) <= 255) return { kind: 'exited', message: exited[2]!, exitCode: Number(exited[1]) };
  const known = FAILURE_DESCRIPTION.exec(description);
  if (known) return { kind: known[1] as AttachFailureKind, message: known[2]! };
  const message = description !== ''
    ? description
    : `channel open refused: ${REASON_NAMES[reason] ?? 'unknown reason'} (reason ${reason})`;
  return { kind: 'launch-failed', message };
}

// --- channel requests ----------------------------------------------------------

export interface WindowChange {
  cols: number;
  rows: number;
  widthPx: number;
  heightPx: number;
}

/** RFC 4254 §6.7 */
export function encodeWindowChange(size: WindowChange): Buffer {
  return new Writer(CHANNEL_REQ_WINDOW_CHANGE)
    .uint32(size.cols, 'cols')
    .uint32(size.rows, 'rows')
    .uint32(size.widthPx, 'widthPx')
    .uint32(size.heightPx, 'heightPx')
    .finish();
}

export function decodeWindowChange(payload: Uint8Array): WindowChange {
  const r = new Reader(payload, CHANNEL_REQ_WINDOW_CHANGE);
  const size = { cols: r.uint32('cols'), rows: r.uint32('rows'), widthPx: r.uint32('widthPx'), heightPx: r.uint32('heightPx') };
  r.end();
  return size;
}

/** Uppercase, without "SIG": TERM, KILL, WINCH, USR1, RTMIN+3. */
const SIGNAL_NAME = /^[A-Z][A-Z0-9]*(?:[+-]\d{1,2})?$/;

function isSignalName(name: string): boolean {
  return name.length <= 32 && SIGNAL_NAME.test(name) && !name.startsWith('SIG');
}

function checkSignalName(name: unknown, field: string, fail: (problem: string) => never): string {
  if (typeof name !== 'string' || !isSignalName(name)) {
    fail(`${field}: ${show(name)} is not a signal name (uppercase without SIG, like TERM, USR1 or RTMIN+3)`);
  }
  return name as string;
}

/** RFC 4254 §6.9 */
export function encodeSignal(name: string): Buffer {
  const w = new Writer(CHANNEL_REQ_SIGNAL);
  checkSignalName(name, 'signal name', (p) => w.fail(p));
  return w.string(name, 'signal name').finish();
}

export function decodeSignal(payload: Uint8Array): string {
  const r = new Reader(payload, CHANNEL_REQ_SIGNAL);
  const name = r.string('signal name');
  r.end();
  return checkSignalName(name, 'signal name', (p) => r.fail(p));
}

/** RFC 4254 §6.10 */
export function encodeExitStatus(code: number): Buffer {
  return new Writer(CHANNEL_REQ_EXIT_STATUS).uint32(code, 'exit status').finish();
}

export function decodeExitStatus(payload: Uint8Array): number {
  const r = new Reader(payload, CHANNEL_REQ_EXIT_STATUS);
  const code = r.uint32('exit status');
  r.end();
  return code;
}

export interface ExitSignal {
  /** Without "SIG". */
  name: string;
  coreDumped: boolean;
  message: string;
  lang: string;
}

/** RFC 4254 §6.10 */
export function encodeExitSignal(exit: ExitSignal): Buffer {
  const w = new Writer(CHANNEL_REQ_EXIT_SIGNAL);
  checkSignalName(exit.name, 'signal name', (p) => w.fail(p));
  return w
    .string(exit.name, 'signal name')
    .bool(exit.coreDumped, 'core dumped')
    .string(exit.message, 'message')
    .string(exit.lang, 'language tag')
    .finish();
}

export function decodeExitSignal(payload: Uint8Array): ExitSignal {
  const r = new Reader(payload, CHANNEL_REQ_EXIT_SIGNAL);
  const name = r.string('signal name');
  const exit = { name, coreDumped: r.bool('core dumped'), message: r.string('message'), lang: r.string('language tag') };
  r.end();
  checkSignalName(name, 'signal name', (p) => r.fail(p));
  return exit;
}

/** `ping`, `unblock` and `close-stdin` carry nothing. */
export function encodeNoPayload(): Buffer {
  return Buffer.alloc(0);
}

export function decodeNoPayload(request: string, payload: Uint8Array): void {
  if (payload.length !== 0) throw new WireError(`${request}: expected no payload, got ${payload.length} bytes`);
}
