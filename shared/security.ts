/**
 * The `security` part of the guest config (docs/CONFIG.md): how the
 * container's processes are confined. Its defaults are Docker's: the
 * default capability set, the default seccomp profile, setuid programs
 * working (no no_new_privs) and no devices beyond the standard ones.
 */
import { CAPABILITIES, capabilityName, DEFAULT_CAPABILITIES, type Capability } from './capabilities.ts';
import { checkSeccompProfile, defaultSeccompProfile, type SeccompProfile } from './seccompProfile.ts';

/** A device node the container gets in its /dev (`docker run --device`). */
export interface DeviceConfig {
  /** Where it appears in the container: a path under /dev. */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** What the container may do with it: "rw" or "rwm" (read, write, mknod), as Docker's device cgroup rules name them. */
  permissions: string;
  /** The node's permission bits (default 0o666 less the umask). */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** Docker's default devices (moby oci/defaults.go): every container's, before its own. */
export const DEFAULT_DEVICES: readonly DeviceConfig[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, permissions: 'rwm' },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, permissions: 'rwm' },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, permissions: 'rwm' },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, permissions: 'rwm' },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, permissions: 'rwm' },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, permissions: 'rwm' },
];
/** The links every container's /dev has. */
export const DEV_LINKS: readonly { path: string; target: string }[] = [
  { path: '/dev/fd', target: '/proc/self/fd' },
  { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' },
  { path: '/dev/stderr', target: '/proc/self/fd/2' },
];
/** A ptmx that opens the container's own devpts instance. */
export const PTMX_LINK = { path: '/dev/ptmx', target: 'pts/ptmx' };
/** Where the guest mounts file systems of its own in /dev: a device there would be covered. */
const DEV_MOUNTS = ['/dev/pts', '/dev/shm'];

/** Why a container's device cannot go at `path`, if it cannot: the guest makes something there itself. */
function reservedDevicePath(path: string): string | undefined {
  if (DEFAULT_DEVICES.some((d) => d.path === path)) return 'every container has that device already';
  if ([...DEV_LINKS, PTMX_LINK].some((link) => path === link.path || path.startsWith(`${link.path}/`))) return 'the guest makes a link there';
  if (DEV_MOUNTS.some((mount) => path === mount || path.startsWith(`${mount}/`))) return 'the guest mounts a file system there';
  return undefined;
}

/**
 * A user namespace for the container's processes: its IDs 0 to size-1 are
 * the host's hostId to hostId+size-1, so its root is an unprivileged user
 * outside it.
 */
export interface UsernsConfig {
  hostId: number;
  size: number;
}

export interface SecurityConfig {
  /** Every capability, no seccomp, no masked paths, every device: Docker's --privileged. */
  privileged: boolean;
  /** The capabilities the container's processes hold (bounding set; also permitted and effective for root). */
  capabilities: Capability[];
  /** "default": Docker's profile; "unconfined": no filter; or a profile in Docker's format. */
  seccomp: 'default' | 'unconfined' | SeccompProfile;
  /** PR_SET_NO_NEW_PRIVS: setuid and file capabilities give nothing on exec. */
  noNewPrivileges: boolean;
  devices: DeviceConfig[];
  /** Absent: the container's IDs are the guest's own (Docker's --userns=host). */
  userns?: UsernsConfig;
}

export const DEFAULT_SECURITY: SecurityConfig = {
  privileged: false,
  capabilities: [...DEFAULT_CAPABILITIES],
  seccomp: 'default',
  noNewPrivileges: false,
  devices: [],
};

const FIELDS = ['privileged', 'capabilities', 'seccomp', 'noNewPrivileges', 'devices', 'userns'];
const DEVICE_FIELDS = ['path', 'type', 'major', 'minor', 'permissions', 'fileMode', 'uid', 'gid'];
/**
 * Capabilities Docker confines with what tether lacks, so that granting one
 * alone would give the boundary away; --privileged gives it away knowingly.
 */
const BOUNDARY_CAPABILITIES = {
  CAP_SYS_PTRACE: 'the guest init shares the container\'s PID namespace, so the container could trace the init, which holds the serial link (in a sandbox, as the host\'s root)',
  CAP_SYS_ADMIN: 'a container could mount a file system without nodev and open any device node it makes there, which Docker\'s device cgroup forbids and tether has no cgroup for',
};

/**
 * "rw" or "rwm", in any order. A node bound onto itself in /dev opens as
 * its mode allows, and root's CAP_DAC_OVERRIDE passes the mode: reading or
 * writing alone cannot be enforced, so it is refused rather than ignored.
 * Without "m" is what every container gets (nodes it makes do not open).
 */
const PERMISSIONS = /^(?=.*r)(?=.*w)(?!.*(.).*\1)[rwm]{2,3}$/;
/** Linux's dev_t: 12 bits of major, 20 of minor. */
const MAX_MAJOR = 4095;
const MAX_MINOR = 2 ** 20 - 1;
/** (uid_t)-1 means "unchanged" to chown: not an ID. */
const MAX_ID = 2 ** 32 - 2;
/** Every container ID a user namespace maps: root, and the 16-bit IDs images use. */
const MIN_USERNS_SIZE = 65536;

type Obj = Record<string, unknown>;
const isObject = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const show = (x: unknown) => (typeof x === 'string' ? JSON.stringify(x) : Array.isArray(x) ? 'an array' : isObject(x) ? 'an object' : String(x));

/** Checks the `security` object at `path`; returns it with defaults filled in, or every problem, each naming its field. */
export function checkSecurity(path: string, x: unknown): { security: SecurityConfig } | { problems: string[] } {
  const problems: string[] = [];
  const fail = (at: string, what: string, got: unknown) => void problems.push(`${at}: expected ${what}, got ${show(got)}`);
  const unknown = (at: string, o: Obj, allowed: string[]) => {
    for (const key of Object.keys(o)) if (!allowed.includes(key)) problems.push(`${at}.${key}: unknown field (expected one of: ${allowed.join(', ')})`);
  };
  const boolean = (at: string, b: unknown) => {
    if (b === undefined || typeof b === 'boolean') return b === true;
    fail(at, 'true or false', b);
    return false;
  };
  const whole = (at: string, n: unknown, max: number) => {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max) return n;
    fail(at, `a whole number from 0 to ${max}`, n);
    return undefined;
  };

  if (!isObject(x)) return { problems: [`${path}: expected an object, got ${show(x)}`] };
  unknown(path, x, FIELDS);
  const privileged = boolean(`${path}.privileged`, x.privileged);
  const noNewPrivileges = boolean(`${path}.noNewPrivileges`, x.noNewPrivileges);
  if (privileged) {
    for (const field of ['capabilities', 'seccomp', 'userns'] as const) {
      if (x[field] !== undefined) problems.push(`${path}.${field}: not allowed with privileged: true, which gives every capability, no seccomp filter and the guest's own IDs`);
    }
  }

  let capabilities: Capability[] = privileged ? [...CAPABILITIES] : [...DEFAULT_CAPABILITIES];
  if (!privileged && x.capabilities !== undefined) {
    if (!Array.isArray(x.capabilities)) fail(`${path}.capabilities`, 'an array of capability names', x.capabilities);
    else {
      capabilities = [];
      x.capabilities.forEach((name, i) => {
        const cap = typeof name === 'string' ? capabilityName(name) : undefined;
        if (cap === undefined) fail(`${path}.capabilities[${i}]`, 'a Linux capability name such as "CAP_NET_ADMIN"', name);
        else if (cap in BOUNDARY_CAPABILITIES) problems.push(`${path}.capabilities[${i}]: ${cap} is refused without privileged (docker --privileged): ${BOUNDARY_CAPABILITIES[cap as keyof typeof BOUNDARY_CAPABILITIES]}`);
        else if (!capabilities.includes(cap)) capabilities.push(cap);
      });
    }
  }

  let seccomp: SecurityConfig['seccomp'] = privileged ? 'unconfined' : 'default';
  if (!privileged && x.seccomp !== undefined) {
    if (x.seccomp === 'default' || x.seccomp === 'unconfined') seccomp = x.seccomp;
    else if (!isObject(x.seccomp)) fail(`${path}.seccomp`, '"default", "unconfined" or a seccomp profile object in Docker\'s format', x.seccomp);
    else {
      const checked = checkSeccompProfile(`${path}.seccomp`, x.seccomp);
      if ('problems' in checked) problems.push(...checked.problems);
      else seccomp = checked.profile;
    }
  }

  const devices: DeviceConfig[] = [];
  if (x.devices !== undefined) {
    if (!Array.isArray(x.devices)) fail(`${path}.devices`, 'an array', x.devices);
    else x.devices.forEach((d, i) => {
      const at = `${path}.devices[${i}]`;
      if (!isObject(d)) return fail(at, 'an object', d);
      unknown(at, d, DEVICE_FIELDS);
      const ok = (v: unknown) => v !== undefined;
      const devicePath = typeof d.path === 'string' && /^\/dev\/[^\0]+$/.test(d.path) && !d.path.split('/').includes('..') ? d.path : undefined;
      if (devicePath === undefined) fail(`${at}.path`, 'a path under /dev (without "..")', d.path);
      const reserved = devicePath === undefined ? undefined : reservedDevicePath(devicePath);
      if (reserved !== undefined) problems.push(`${at}.path: ${show(devicePath)} cannot be given: ${reserved}`);
      const type = d.type === 'c' || d.type === 'b' ? d.type : undefined;
      if (type === undefined) fail(`${at}.type`, '"c" (character) or "b" (block)', d.type);
      const major = whole(`${at}.major`, d.major, MAX_MAJOR);
      const minor = whole(`${at}.minor`, d.minor, MAX_MINOR);
      const permissions = d.permissions === undefined ? 'rwm' : typeof d.permissions === 'string' && PERMISSIONS.test(d.permissions) ? d.permissions : undefined;
      if (permissions === undefined) fail(`${at}.permissions`, '"rw" or "rwm" (tether cannot limit a device to reading or writing only)', d.permissions);
      const fileMode = d.fileMode === undefined ? undefined : whole(`${at}.fileMode`, d.fileMode, 0o7777);
      const uid = d.uid === undefined ? undefined : whole(`${at}.uid`, d.uid, MAX_ID);
      const gid = d.gid === undefined ? undefined : whole(`${at}.gid`, d.gid, MAX_ID);
      if (reserved !== undefined || ![devicePath, type, major, minor, permissions].every(ok)) return;
      if ([d.fileMode, d.uid, d.gid].some((v, k) => v !== undefined && [fileMode, uid, gid][k] === undefined)) return;
      devices.push({
        path: devicePath!, type: type!, major: major!, minor: minor!, permissions: permissions!,
        ...(fileMode === undefined ? {} : { fileMode }), ...(uid === undefined ? {} : { uid }), ...(gid === undefined ? {} : { gid }),
      });
    });
  }

  let userns: UsernsConfig | undefined;
  if (!privileged && x.userns !== undefined) {
    const at = `${path}.userns`;
    if (!isObject(x.userns)) fail(at, 'an object with hostId and size', x.userns);
    else {
      unknown(at, x.userns, ['hostId', 'size']);
      // Host ID 0 would make the container's root the host's.
      const hostId = whole(`${at}.hostId`, x.userns.hostId, MAX_ID);
      if (hostId === 0) problems.push(`${at}.hostId: must not be 0, which would map the container's root to the host's`);
      const size = whole(`${at}.size`, x.userns.size, MAX_ID);
      if (size !== undefined && size < MIN_USERNS_SIZE) problems.push(`${at}.size: expected at least ${MIN_USERNS_SIZE}, so that every 16-bit ID an image uses is mapped, got ${size}`);
      if (hostId !== undefined && size !== undefined && hostId + size > MAX_ID + 1) problems.push(`${at}: the range from hostId ${hostId} for ${size} IDs goes past the last ID, ${MAX_ID}`);
      if (hostId !== undefined && hostId !== 0 && size !== undefined) userns = { hostId, size };
    }
  }

  if (problems.length > 0) return { problems };
  return { security: { privileged, capabilities, seccomp, noNewPrivileges, devices, ...(userns === undefined ? {} : { userns }) } };
}

/** What one process of the container is started with. */
export interface ProcessConfinement {
  capabilities: Capability[];
  /** The filter's profile, and the capabilities that decide its rules; absent: no filter. */
  seccomp?: { profile: SeccompProfile; caps: Capability[] };
  noNewPrivileges: boolean;
}

/**
 * The confinement of a process of a container with `security`: a
 * privileged session (`docker exec --privileged`) gets every capability but,
 * as in Docker, keeps the container's seccomp filter.
 */
export function processConfinement(security: SecurityConfig, privilegedSession: boolean): ProcessConfinement {
  const profile = security.seccomp === 'unconfined' ? undefined : security.seccomp === 'default' ? defaultSeccompProfile() : security.seccomp;
  return {
    capabilities: privilegedSession ? [...CAPABILITIES] : security.capabilities,
    ...(profile === undefined ? {} : { seccomp: { profile, caps: security.capabilities } }),
    noNewPrivileges: security.noNewPrivileges,
  };
}
