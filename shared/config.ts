/**
 * The guest configuration: one JSON document (docs/CONFIG.md) that tells the
 * guest who it is, what to run and how to reach the appliance.
 *
 * The validator is hand-written so that every problem names its field
 * (`sessions.web.cmd[0]: expected a non-empty string, got 3`) and all of them
 * are reported at once: the document is delivered through a VM's config
 * channel, where each round trip to fix one typo is a reboot.
 */
import { checkSecurity, DEFAULT_SECURITY, type SecurityConfig } from './security.ts';
import { parseSignal } from './signals.ts';

export type { DeviceConfig, SecurityConfig } from './security.ts';

export interface SessionConfig {
  cmd: string[];
  /** "KEY=VALUE" entries, as Docker passes them. */
  env: string[];
  /** Absolute working directory. */
  cwd: string;
  /** "name", "uid", "uid:gid", "name:group" (either side a name or a number). */
  user?: string;
  tty: boolean;
  openStdin: boolean;
  /** Hold the process until an attach sends `unblock`, so no output is missed. */
  runBlock: boolean;
  /** Canonical signal name without "SIG" (see shared/signals.ts). */
  stopSignal: string;
  /** Seconds between the stop signal and SIGKILL. */
  stopTimeout: number;
  /** Whether the session is started again when its process ends (exec sessions only). */
  restart: RestartPolicy;
  /** Every capability for this process (`docker exec --privileged`); the container's seccomp filter still applies, as in Docker. */
  privileged?: boolean;
}

/** Docker's restart policies, as `docker run --restart` spells them. */
export type RestartPolicy =
  | { name: 'no' }
  | { name: 'always' }
  /** Again after a non-zero exit, at most `maxRetries` times (0: no limit). */
  | { name: 'on-failure'; maxRetries: number };

export interface GuestConfig {
  id: string;
  name: string;
  hostname: string;
  /** Keyed by session ID; the session whose ID is `id` is the primary. */
  sessions: Record<string, SessionConfig>;
  ssh: { hostKey: string; authorizedKeys: string[] };
  /** A device path, or "tcp://HOST:PORT" for a direct TCP link. */
  serial: { device: string };
  /** Capacity of each session's output log, in bytes. */
  outputLogBytes: number;
  /** The container's root file system: the host's ("host") or an absolute directory path. */
  rootfs: string;
  /** Where the sessions' output logs are written (an absolute directory path). */
  logDir: string;
  /** How the container's processes are confined (shared/security.ts). */
  security: SecurityConfig;
  /** Absolute paths of the root shown empty and read-only to the container (a `*` matches within one component). */
  hide: string[];
}

export const DEFAULT_SERIAL_DEVICE = '/dev/ttyS0';
export const DEFAULT_OUTPUT_LOG_BYTES = 8 * 1024 * 1024;
export const MIN_OUTPUT_LOG_BYTES = 64 * 1024;
export const MAX_OUTPUT_LOG_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_STOP_TIMEOUT = 10;
/** The command's arguments, 4 bytes of length each included. */
export const MAX_COMMAND_BYTES = 16 * 1024;
export const DEFAULT_LOG_DIR = '/var/log/tether';

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(source: string, problems: string[]) {
    super(`invalid guest configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const ID = /^[A-Za-z0-9_.-]{1,128}$/;
const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;
const USER = /^[^:\s]+(?::[^:\s]+)?$/;
const KEY_TYPE = /^(?:ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const RESTART = /^(no|always|on-failure)(?::(\d{1,9}))?$/;
const TCP_DEVICE = /^tcp:\/\/(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses and validates a guest configuration; throws ConfigError listing every problem. */
export function parseGuestConfig(text: string, source: string): GuestConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(source, [`not valid JSON: ${(err as Error).message}`]);
  }
  const v = new Validator();
  const config = v.guest(doc);
  if (v.problems.length > 0 || config === undefined) throw new ConfigError(source, v.problems);
  return config;
}

/**
 * One session's spec on its own, as an exec request brings it (the fields
 * and defaults of a session in the document); throws ConfigError listing
 * every problem, each named under `path`.
 */
export function parseSessionConfig(doc: unknown, path: string, source: string): SessionConfig {
  const v = new Validator();
  const session = v.session(path, doc);
  if (v.problems.length > 0 || session === undefined) throw new ConfigError(source, v.problems);
  return session;
}

/** A parsed session as the document would spell it: what parseSessionConfig reads back unchanged. */
export function sessionDocument(spec: SessionConfig): Record<string, unknown> {
  const { restart, ...rest } = spec;
  return { ...rest, restart: restart.name === 'on-failure' && restart.maxRetries > 0 ? `on-failure:${restart.maxRetries}` : restart.name };
}

/** An RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, each at most 63 characters, at most 253 in all. */
export function isHostname(x: unknown): x is string {
  return typeof x === 'string' && x.length <= 253 && x.split('.').every((label) => label.length <= 63 && HOST_LABEL.test(label));
}

type Obj = Record<string, unknown>;

/** Collects problems while walking the document; each check returns undefined on failure. */
class Validator {
  readonly problems: string[] = [];

  guest(doc: unknown): GuestConfig | undefined {
    const o = this.object('', doc, ['id', 'name', 'hostname', 'sessions', 'ssh', 'serial', 'outputLogBytes', 'rootfs', 'logDir', 'hide', 'security']);
    if (o === undefined) return undefined;
    const id = this.required('id', o.id, (p, x) => this.id(p, x, 'a container ID'));
    const name = this.required('name', o.name, (p, x) => this.matching(p, x, DOCKER_NAME, 'a Docker-style name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)'));
    const hostname = this.required('hostname', o.hostname, (p, x) => this.hostname(p, x));
    const sessions = this.required('sessions', o.sessions, (p, x) => this.sessions(p, x));
    // Checked against the raw map so a broken session elsewhere does not hide it.
    if (id !== undefined && isObject(o.sessions) && !Object.hasOwn(o.sessions, id)) {
      this.problems.push(`sessions: the primary session "${id}" (the session whose ID equals id) is missing`);
    }
    const ssh = this.required('ssh', o.ssh, (p, x) => this.ssh(p, x));
    const serial = o.serial === undefined ? { device: DEFAULT_SERIAL_DEVICE } : this.serial('serial', o.serial);
    const outputLogBytes = o.outputLogBytes === undefined ? DEFAULT_OUTPUT_LOG_BYTES : this.outputLogBytes('outputLogBytes', o.outputLogBytes);
    const rootfs = o.rootfs === undefined || o.rootfs === 'host' ? 'host' : this.absolutePath('rootfs', o.rootfs);
    const logDir = o.logDir === undefined ? DEFAULT_LOG_DIR : this.absolutePath('logDir', o.logDir);
    const security = o.security === undefined ? DEFAULT_SECURITY : this.security('security', o.security);
    const hide = o.hide === undefined ? [] : this.stringList('hide', o.hide, false, (p, x) => this.absolutePath(p, x));
    if (id === undefined || name === undefined || hostname === undefined || sessions === undefined
      || ssh === undefined || serial === undefined || outputLogBytes === undefined || rootfs === undefined || logDir === undefined
      || hide === undefined || security === undefined) return undefined;
    if (id in sessions && sessions[id]!.restart.name !== 'no') {
      this.problems.push(`sessions.${id}.restart: the primary session cannot have a restart policy (the container ends with it); expected "no"`);
      return undefined;
    }
    return { id, name, hostname, sessions, ssh, serial, outputLogBytes, rootfs, logDir, hide, security };
  }

  private sessions(path: string, x: unknown): Record<string, SessionConfig> | undefined {
    const o = this.object(path, x);
    if (o === undefined) return undefined;
    const keys = Object.keys(o);
    if (keys.length === 0) {
      this.problems.push(`${path}: expected at least one session`);
      return undefined;
    }
    const entries: [string, SessionConfig][] = [];
    for (const key of keys) {
      const p = join(path, key);
      if (!ID.test(key)) this.problems.push(`${p}: invalid session ID: expected 1-128 characters of [A-Za-z0-9_.-]`);
      const s = this.session(p, o[key]);
      if (s !== undefined) entries.push([key, s]);
    }
    // fromEntries defines own properties, so an ID like "__proto__" stays data.
    return entries.length === keys.length ? Object.fromEntries(entries) : undefined;
  }

  session(path: string, x: unknown): SessionConfig | undefined {
    const o = this.object(path, x, ['cmd', 'env', 'cwd', 'user', 'tty', 'openStdin', 'runBlock', 'stopSignal', 'stopTimeout', 'restart', 'privileged']);
    if (o === undefined) return undefined;
    const at = (k: string) => `${path}.${k}`;
    const cmd = this.required(at('cmd'), o.cmd, (p, c) => this.command(p, c));
    const env = o.env === undefined ? [] : this.stringList(at('env'), o.env, false, (q, s) => this.envEntry(q, s));
    const cwd = o.cwd === undefined ? '/' : this.absolutePath(at('cwd'), o.cwd);
    const user = o.user === undefined ? undefined
      : this.matching(at('user'), o.user, USER, 'a user: "name", "uid", "uid:gid" or "name:group"');
    const tty = this.boolean(at('tty'), o.tty);
    const openStdin = this.boolean(at('openStdin'), o.openStdin);
    const runBlock = this.boolean(at('runBlock'), o.runBlock);
    const stopSignal = o.stopSignal === undefined ? 'TERM' : this.signal(at('stopSignal'), o.stopSignal);
    const stopTimeout = o.stopTimeout === undefined ? DEFAULT_STOP_TIMEOUT : this.stopTimeout(at('stopTimeout'), o.stopTimeout);
    const restart = o.restart === undefined ? { name: 'no' as const } : this.restart(at('restart'), o.restart);
    const privileged = this.boolean(at('privileged'), o.privileged);
    if (cmd === undefined || env === undefined || cwd === undefined || (o.user !== undefined && user === undefined)
      || tty === undefined || openStdin === undefined || runBlock === undefined || stopSignal === undefined
      || stopTimeout === undefined || restart === undefined || privileged === undefined) return undefined;
    return { cmd, env, cwd, ...(user === undefined ? {} : { user }), tty, openStdin, runBlock, stopSignal, stopTimeout, restart, ...(privileged ? { privileged } : {}) };
  }

  /**
   * The command travels in the session's container info, one SSH packet
   * (at most 35,000 bytes in ssh2) with the rest of the info: bounded well
   * below that.
   */
  private command(path: string, x: unknown): string[] | undefined {
    const cmd = this.stringList(path, x, true, (q, s) => this.text(q, s));
    if (cmd === undefined) return undefined;
    const bytes = cmd.reduce((sum, arg) => sum + Buffer.byteLength(arg) + 4, 0);
    if (bytes <= MAX_COMMAND_BYTES) return cmd;
    this.problems.push(`${path}: at most ${MAX_COMMAND_BYTES} bytes in all (it travels in one SSH packet with the session's info), got ${bytes}; put a long script in a file`);
    return undefined;
  }

  private stopTimeout(path: string, x: unknown): number | undefined {
    if (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 86_400) return x;
    this.problems.push(`${path}: expected whole seconds from 0 to 86400, got ${show(x)}`);
    return undefined;
  }

  private restart(path: string, x: unknown): RestartPolicy | undefined {
    const m = typeof x === 'string' ? RESTART.exec(x) : null;
    if (m !== null && (m[2] === undefined || m[1] === 'on-failure')) {
      return m[1] === 'on-failure' ? { name: 'on-failure', maxRetries: Number(m[2] ?? 0) } : { name: m[1] as 'no' | 'always' };
    }
    this.problems.push(`${path}: expected "no", "always", "on-failure" or "on-failure:N", got ${show(x)}`);
    return undefined;
  }

  private security(path: string, x: unknown): SecurityConfig | undefined {
    const checked = checkSecurity(path, x);
    if ('security' in checked) return checked.security;
    this.problems.push(...checked.problems);
    return undefined;
  }

  private ssh(path: string, x: unknown): GuestConfig['ssh'] | undefined {
    const o = this.object(path, x, ['hostKey', 'authorizedKeys']);
    if (o === undefined) return undefined;
    const hostKey = this.required(`${path}.hostKey`, o.hostKey, (p, k) => this.privateKey(p, k));
    const authorizedKeys = this.required(`${path}.authorizedKeys`, o.authorizedKeys,
      (p, l) => this.stringList(p, l, true, (q, s) => this.publicKey(q, s)));
    return hostKey === undefined || authorizedKeys === undefined ? undefined : { hostKey, authorizedKeys };
  }

  private serial(path: string, x: unknown): GuestConfig['serial'] | undefined {
    const o = this.object(path, x, ['device']);
    if (o === undefined) return undefined;
    if (o.device === undefined) return { device: DEFAULT_SERIAL_DEVICE };
    const device = this.text(`${path}.device`, o.device);
    if (device === undefined) return undefined;
    const tcp = TCP_DEVICE.exec(device);
    const port = tcp === null ? 0 : Number(tcp[1]);
    if (tcp !== null ? port >= 1 && port <= 65535 : device.startsWith('/')) return { device };
    this.problems.push(`${path}.device: expected a device path ("/dev/ttyS0") or "tcp://HOST:PORT" with a port 1-65535, got ${show(device)}`);
    return undefined;
  }

  private outputLogBytes(path: string, x: unknown): number | undefined {
    if (typeof x === 'number' && Number.isInteger(x) && x >= MIN_OUTPUT_LOG_BYTES && x <= MAX_OUTPUT_LOG_BYTES) return x;
    this.problems.push(`${path}: expected an integer from ${MIN_OUTPUT_LOG_BYTES} (64 KiB) to ${MAX_OUTPUT_LOG_BYTES} (1 GiB), got ${show(x)}`);
    return undefined;
  }

  // ---- leaf checks ----

  private object(path: string, x: unknown, allowed?: string[]): Obj | undefined {
    if (!isObject(x)) {
      this.problems.push(`${path || '(document)'}: expected an object, got ${show(x)}`);
      return undefined;
    }
    const o = x;
    if (allowed !== undefined) {
      for (const key of Object.keys(o)) {
        if (!allowed.includes(key)) this.problems.push(`${join(path, key)}: unknown field (expected one of: ${allowed.join(', ')})`);
      }
    }
    return o;
  }

  private required<T>(path: string, x: unknown, check: (path: string, x: unknown) => T | undefined): T | undefined {
    if (x !== undefined) return check(path, x);
    this.problems.push(`${path}: required`);
    return undefined;
  }

  /** A string the kernel can pass through exec: non-empty, no NUL byte. */
  private text(path: string, x: unknown): string | undefined {
    if (typeof x === 'string' && x.length > 0 && !x.includes('\0')) return x;
    this.problems.push(`${path}: expected a non-empty string${typeof x === 'string' && x.length > 0 ? ' without NUL bytes' : ''}, got ${show(x)}`);
    return undefined;
  }

  private matching(path: string, x: unknown, re: RegExp, what: string): string | undefined {
    if (typeof x === 'string' && re.test(x)) return x;
    this.problems.push(`${path}: expected ${what}, got ${show(x)}`);
    return undefined;
  }

  private id(path: string, x: unknown, what: string): string | undefined {
    return this.matching(path, x, ID, `${what} (1-128 characters of [A-Za-z0-9_.-])`);
  }

  private hostname(path: string, x: unknown): string | undefined {
    if (isHostname(x)) return x;
    this.problems.push(`${path}: expected an RFC 1123 host name (dot-separated labels of letters, digits and inner hyphens, each at most 63 characters, at most 253 in all), got ${show(x)}`);
    return undefined;
  }

  private boolean(path: string, x: unknown): boolean | undefined {
    if (x === undefined) return false;
    if (typeof x === 'boolean') return x;
    this.problems.push(`${path}: expected true or false, got ${show(x)}`);
    return undefined;
  }

  private stringList<T>(path: string, x: unknown, nonEmpty: boolean, item: (path: string, x: unknown) => T | undefined): T[] | undefined {
    if (!Array.isArray(x)) {
      this.problems.push(`${path}: expected an array, got ${show(x)}`);
      return undefined;
    }
    if (nonEmpty && x.length === 0) {
      this.problems.push(`${path}: expected a non-empty array`);
      return undefined;
    }
    const out = x.map((el, i) => item(`${path}[${i}]`, el));
    return out.every((el) => el !== undefined) ? (out as T[]) : undefined;
  }

  private envEntry(path: string, x: unknown): string | undefined {
    const s = this.text(path, x);
    if (s === undefined) return undefined;
    if (s.indexOf('=') > 0) return s;
    this.problems.push(`${path}: expected "KEY=VALUE" with a non-empty KEY, got ${show(s)}`);
    return undefined;
  }

  private absolutePath(path: string, x: unknown): string | undefined {
    const s = this.text(path, x);
    if (s === undefined) return undefined;
    if (s.startsWith('/')) return s;
    this.problems.push(`${path}: expected an absolute path, got ${show(s)}`);
    return undefined;
  }

  private signal(path: string, x: unknown): string | undefined {
    const name = typeof x === 'string' ? parseSignal(x) : undefined;
    if (name !== undefined) return name;
    this.problems.push(`${path}: expected a signal name or number such as "TERM", "SIGTERM" or "9", got ${show(x)}`);
    return undefined;
  }

  private privateKey(path: string, x: unknown): string | undefined {
    const s = this.text(path, x);
    if (s === undefined) return undefined;
    if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(s)) return s;
    // The value is secret (or was meant to be): never echo it into a log.
    this.problems.push(`${path}: expected a PEM or OpenSSH private key ("-----BEGIN ... PRIVATE KEY-----"), got ${s.length} characters without such a line`);
    return undefined;
  }

  /** An authorized_keys line: "TYPE BASE64 [comment]", the blob naming the same TYPE. */
  private publicKey(path: string, x: unknown): string | undefined {
    const s = this.text(path, x);
    if (s === undefined) return undefined;
    const [type = '', blob = ''] = s.trim().split(/\s+/);
    if (KEY_TYPE.test(type) && BASE64.test(blob) && blobType(blob) === type) return s;
    this.problems.push(`${path}: expected an OpenSSH public key line "TYPE BASE64 [comment]" (e.g. "ssh-ed25519 AAAA... user@host") whose key data is of that TYPE, got ${show(s)}`);
    return undefined;
  }
}

/** The key type written at the start of an SSH public key blob (uint32 length, then the name). */
function blobType(base64: string): string | undefined {
  let bytes: string;
  try {
    bytes = atob(base64);
  } catch {
    return undefined;
  }
  if (bytes.length < 4) return undefined;
  const len = ((bytes.charCodeAt(0) << 24) | (bytes.charCodeAt(1) << 16) | (bytes.charCodeAt(2) << 8) | bytes.charCodeAt(3)) >>> 0;
  return len <= bytes.length - 4 ? bytes.slice(4, 4 + len) : undefined;
}

function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function join(path: string, key: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** A short rendering of an offending value for an error message. */
function show(x: unknown): string {
  if (Array.isArray(x)) return 'an array';
  if (x === null) return 'null';
  if (typeof x === 'object') return 'an object';
  if (typeof x === 'string') return JSON.stringify(x.length > 60 ? `${x.slice(0, 57)}...` : x);
  return String(x);
}
