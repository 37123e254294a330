/**
 * The security fields of a create body's HostConfig (`--privileged`,
 * `--cap-add`, `--cap-drop`, `--security-opt`, `--device`, `--userns`) as
 * Docker reads them, turned into the guest config's `security` (shared/security.ts).
 * Security-relevant fields tether does not implement are refused by name:
 * a container must never run less confined than its creator asked.
 */
import { statSync } from 'node:fs';
import { compileSeccomp } from '../../actors/seccomp.ts';
import { resolveCapabilities, UnknownCapability } from '../../shared/capabilities.ts';
import { checkSecurity } from '../../shared/security.ts';
import { ApiError } from './errors.ts';

/** The fields as the client sent them, kept for inspect. */
export interface HostSecuritySettings {
  readonly Privileged: boolean;
  readonly CapAdd: readonly string[] | null;
  readonly CapDrop: readonly string[] | null;
  readonly SecurityOpt: readonly string[] | null;
  readonly Devices: readonly DeviceMapping[];
  /** "": a user namespace of the container's own (unless privileged); "host": the guest's IDs. */
  readonly UsernsMode: '' | 'host';
}

/** Docker's DeviceMapping. */
export interface DeviceMapping {
  readonly PathOnHost: string;
  readonly PathInContainer: string;
  readonly CgroupPermissions: string;
}

export const NO_HOST_SECURITY: HostSecuritySettings = { Privileged: false, CapAdd: null, CapDrop: null, SecurityOpt: null, Devices: [], UsernsMode: '' };

/** Fields that would give the container something tether does not do, and the values that ask for nothing (Docker's defaults). */
const UNSUPPORTED: Record<string, (value: unknown) => boolean> = {
  CgroupParent: (v) => v === '',
  Cgroup: (v) => v === '',
  CgroupnsMode: (v) => v === '' || v === 'private',
  PidMode: (v) => v === '',
  IpcMode: (v) => v === '' || v === 'private',
  UTSMode: (v) => v === '',
  GroupAdd: (v) => Array.isArray(v) && v.length === 0,
  MaskedPaths: (v) => Array.isArray(v) && v.length === 0,
  ReadonlyPaths: (v) => Array.isArray(v) && v.length === 0,
  DeviceCgroupRules: (v) => Array.isArray(v) && v.length === 0,
  DeviceRequests: (v) => Array.isArray(v) && v.length === 0,
  Sysctls: (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0,
  ReadonlyRootfs: (v) => v === false,
};

/**
 * Reads the security fields of `host` (a create body's HostConfig);
 * throws a 400 naming the field or option that is wrong or not supported.
 */
export function parseHostSecurity(host: Record<string, unknown>, what: string): { settings: HostSecuritySettings; security: Record<string, unknown> } {
  for (const [field, isDefault] of Object.entries(UNSUPPORTED)) {
    const value = host[field];
    if (value !== undefined && value !== null && !isDefault(value)) {
      throw new ApiError(400, `${what}: HostConfig.${field} is not supported by tether (got ${JSON.stringify(value)})`);
    }
  }
  const privileged = flag(what, 'HostConfig.Privileged', host.Privileged);
  const capAdd = names(what, 'HostConfig.CapAdd', host.CapAdd);
  const capDrop = names(what, 'HostConfig.CapDrop', host.CapDrop);
  const securityOpt = names(what, 'HostConfig.SecurityOpt', host.SecurityOpt);
  const devices = deviceMappings(what, host.Devices);
  const usernsMode = host.UsernsMode ?? '';
  // Docker's own rule: "host", or nothing.
  if (usernsMode !== '' && usernsMode !== 'host') throw new ApiError(400, `${what}: invalid UsernsMode: ${JSON.stringify(usernsMode)} (expected "host", or nothing for a user namespace of the container's own)`);

  let capabilities;
  try {
    capabilities = resolveCapabilities(capAdd ?? [], capDrop ?? [], privileged);
  } catch (error) {
    if (error instanceof UnknownCapability) throw new ApiError(400, error.message);
    throw error;
  }
  const options = securityOptions(securityOpt ?? []);
  const document: Record<string, unknown> = {
    ...(privileged ? { privileged } : { capabilities, ...(options.seccomp === undefined ? {} : { seccomp: options.seccomp }) }),
    ...(options.noNewPrivileges ? { noNewPrivileges: true } : {}),
    ...(devices.length === 0 ? {} : { devices: devices.map(hostDevice) }),
  };
  const checked = checkSecurity('security', document);
  if ('problems' in checked) throw new ApiError(400, `${what}: ${checked.problems.join('; ')}`);
  const { seccomp } = checked.security;
  // Compiled here too, as its guest will compile it, so a profile libseccomp refuses fails the create, not the start.
  if (typeof seccomp === 'object') {
    try {
      compileSeccomp(seccomp, capabilities);
    } catch (error) {
      throw new ApiError(400, `${what}: ${(error as Error).message}`);
    }
  }
  return {
    settings: { Privileged: privileged, CapAdd: capAdd, CapDrop: capDrop, SecurityOpt: securityOpt, Devices: devices, UsernsMode: usernsMode },
    security: document,
  };
}

/** `--security-opt` entries, as Docker's daemon parses them (KEY=VALUE, or KEY:VALUE for older clients). */
function securityOptions(options: readonly string[]): { seccomp?: unknown; noNewPrivileges: boolean } {
  let seccomp: unknown;
  let noNewPrivileges = false;
  for (const option of options) {
    let [key, value] = splitOnce(option, '=');
    if (value === undefined && key !== 'no-new-privileges') {
      if (!option.includes(':')) throw new ApiError(400, `Invalid --security-opt: ${JSON.stringify(option)}`);
      [key, value] = splitOnce(option, ':');
    }
    switch (key) {
      case 'no-new-privileges':
        if (value === undefined || value === 'true' || value === '1') noNewPrivileges = true;
        else if (value === 'false' || value === '0') noNewPrivileges = false;
        else throw new ApiError(400, `invalid --security-opt 2: ${JSON.stringify(option)}: no-new-privileges takes true or false`);
        break;
      case 'seccomp':
        seccomp = seccompOption(value!);
        break;
      default:
        // apparmor=, label=, systempaths=unconfined, writable-cgroups=: nothing tether applies, so nothing it may accept.
        throw new ApiError(400, `--security-opt ${JSON.stringify(key)} is not supported by tether (got ${JSON.stringify(option)}); it supports no-new-privileges and seccomp=unconfined|builtin|PROFILE`);
    }
  }
  return { ...(seccomp === undefined ? {} : { seccomp }), noNewPrivileges };
}

/** `seccomp=unconfined`, `seccomp=builtin` (the default profile), or a profile's JSON text (the CLI sends the file's content). */
function seccompOption(value: string): unknown {
  if (value === 'unconfined') return 'unconfined';
  if (value === 'builtin') return 'default';
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new ApiError(400, `Decoding seccomp profile failed: ${(error as Error).message}`);
  }
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function deviceMappings(what: string, value: unknown): DeviceMapping[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ApiError(400, `${what}: HostConfig.Devices must be an array, got ${JSON.stringify(value)}`);
  return value.map((d, i) => {
    const at = `${what}: HostConfig.Devices[${i}]`;
    if (typeof d !== 'object' || d === null || typeof d.PathOnHost !== 'string' || d.PathOnHost === '') {
      throw new ApiError(400, `${at}: expected an object with PathOnHost, got ${JSON.stringify(d)}`);
    }
    const text = (field: string, fallback: string) => {
      const v = (d as Record<string, unknown>)[field];
      if (v === undefined || v === null || v === '') return fallback;
      if (typeof v === 'string') return v;
      throw new ApiError(400, `${at}.${field} must be a string, got ${JSON.stringify(v)}`);
    };
    return { PathOnHost: d.PathOnHost, PathInContainer: text('PathInContainer', d.PathOnHost), CgroupPermissions: text('CgroupPermissions', 'rwm') };
  });
}

/** A mapping as the guest config's device: the host node's type, numbers, mode and owner, as Docker takes them. */
function hostDevice(mapping: DeviceMapping): Record<string, unknown> {
  let stats;
  try {
    stats = statSync(mapping.PathOnHost, { bigint: true });
  } catch (error) {
    throw new ApiError(400, `error gathering device information while adding custom device ${JSON.stringify(mapping.PathOnHost)}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message}`);
  }
  if (!stats.isCharacterDevice() && !stats.isBlockDevice()) {
    throw new ApiError(400, `error gathering device information while adding custom device ${JSON.stringify(mapping.PathOnHost)}: not a device node`);
  }
  // glibc's major() and minor() of a dev_t.
  const rdev = stats.rdev;
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return {
    path: mapping.PathInContainer,
    type: stats.isCharacterDevice() ? 'c' : 'b',
    major,
    minor,
    permissions: mapping.CgroupPermissions,
    fileMode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
  };
}

function flag(what: string, name: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  throw new ApiError(400, `${what}: ${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** A list of strings, or null when absent or empty (as inspect shows it then). */
function names(what: string, name: string, value: unknown): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new ApiError(400, `${what}: ${name} must be an array of strings, got ${JSON.stringify(value)}`);
  return value.length === 0 ? null : value;
}
