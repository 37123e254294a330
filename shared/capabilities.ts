/**
 * Linux capabilities by name, and Docker's rules for a container's set:
 * its default set, and how `--cap-add`, `--cap-drop` and `--privileged`
 * change it (moby's daemon/pkg/oci/caps, TweakCapabilities).
 */

/** Every capability Linux defines, at the index of its number (linux/capability.h, up to 6.x). */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

export type Capability = (typeof CAPABILITIES)[number];

/** Docker's default set for a container's processes (moby daemon/pkg/oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const ALL = 'ALL';

/** Docker's words for a name Linux has no capability for. */
export class UnknownCapability extends Error {
  constructor(readonly name: string) {
    super(`unknown capability: ${JSON.stringify(canonical(name))}`);
    this.name = 'UnknownCapability';
  }
}

/** Upper case, with CAP_: Docker accepts "net_admin" and "CAP_NET_ADMIN" alike. */
function canonical(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/** A capability's canonical name; undefined when Linux has none such. */
export function capabilityName(name: string): Capability | undefined {
  const cap = canonical(name);
  return (CAPABILITIES as readonly string[]).includes(cap) ? (cap as Capability) : undefined;
}

/** The numbered bit of each capability in `caps`, as the kernel's capability sets hold them. */
export function capabilityMask(caps: readonly Capability[]): bigint {
  return caps.reduce((mask, cap) => mask | (1n << BigInt(CAPABILITIES.indexOf(cap))), 0n);
}

/** `caps` without repeats, in the kernel's order. */
function ordered(caps: Iterable<Capability>): Capability[] {
  const set = new Set(caps);
  return CAPABILITIES.filter((cap) => set.has(cap));
}

/**
 * The container's capabilities from Docker's create fields: every one when
 * privileged; else the defaults without `drop` and with `add`, where "ALL"
 * in `add` means every capability but those dropped, and "ALL" in `drop`
 * means only those added. Throws UnknownCapability for a name Linux lacks.
 */
export function resolveCapabilities(add: readonly string[], drop: readonly string[], privileged: boolean): Capability[] {
  if (privileged) return [...CAPABILITIES];
  const normalize = (names: readonly string[]) => names.map((name) => {
    if (name.toUpperCase() === ALL) return ALL;
    const cap = capabilityName(name);
    if (cap === undefined) throw new UnknownCapability(name);
    return cap;
  });
  const dropped = normalize(drop);
  const added = normalize(add);
  const named = (list: (Capability | typeof ALL)[]) => list.filter((c): c is Capability => c !== ALL);
  if (added.includes(ALL)) return CAPABILITIES.filter((cap) => !dropped.includes(cap));
  if (dropped.includes(ALL)) return ordered(named(added));
  return ordered([...DEFAULT_CAPABILITIES.filter((cap) => !dropped.includes(cap)), ...named(added)]);
}
