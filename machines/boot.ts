import { assign, fromPromise, setup } from 'xstate';
import { DEFAULT_DEVICES, DEV_LINKS, PTMX_LINK, type UsernsConfig } from '../shared/security.ts';

/**
 * The guest's boot: what a VM's init does before anything else, done by the
 * guest itself when it is PID 1 (in a containerVM, or in the sandbox's fresh
 * namespaces). One step per state, in order, each performed by an invoked
 * effect actor (actors/preload.ts, dumpable.ts, mounts.ts, masks.ts,
 * etcFiles.ts, hostname.ts, loopback.ts); this machine decides which steps
 * run, with what, and what a failure means:
 *
 *   preload → undumpable → privatize → [VM: hostDev] → [holdSerial] → [holdConfig] → [holdLogDir]
 *   → [initialProc → userns] → overlay → pivot (→ moveRoot) → proc → [sysctls] → sys → dev → devNodes → devPts
 *   → shm → run → masks → etcFiles → hostname → loopback → booted
 *
 * The container's root is always a fresh mount tree: an overlay whose lower
 * layer is the image (the host's root file system for "host", read-only)
 * and whose upper layer is the guest's tmpfs, pivoted into with the old root
 * detached, so no mount of the host survives inside. What the guest keeps of
 * the world it came from (the serial device, the config's directory, the log
 * directory) it holds as detached mounts, reachable through its own
 * /proc/self/fd and nowhere in the container's tree; the init is not
 * dumpable, so a container's process, even root, cannot reach them through
 * /proc/1.
 *
 * With a user namespace in the config, the container's processes run in
 * one (the guest init stays outside it, with its powers): container ID 0 is
 * host ID `hostId`, the image is seen through a mount idmapped to it, so
 * its files keep their owners inside, and what the guest mounts for the
 * container is owned by the container's root. Where the kernel cannot
 * (no user namespaces, a file system that cannot be idmapped), the guest
 * warns and the container's IDs are the guest's own, as without one.
 *
 * Essential steps (without them the container would run on the host's root,
 * without /proc or /dev/null, unreachable, or with the host's secrets or
 * kernel knobs in sight) end the boot in `failed`, naming the step and the
 * cause. The others add a warning and the boot goes on. Not PID 1 (a test, a
 * run by hand): nothing is touched, since every step would change the host's
 * mounts, host name or network.
 */

/** A device node the container may open (`docker run --device`), as the guest config's `security.devices` has it. */
export interface DeviceNode {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  /** Permission bits of the node (default 0666). */
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface BootInput {
  /** Whether this process is PID 1 of its PID namespace: only then is the OS the guest's to configure. */
  pid1: boolean;
  /** Run by `tether sandbox` in namespaces on a host, rather than booted in a VM. */
  sandbox: boolean;
  /** "host", or an absolute directory to use as the container's root. */
  rootfs: string;
  hostname: string;
  /** The configured serial device: a path, or tcp://HOST:PORT. */
  serialDevice: string;
  /** The config document, read again on SIGHUP. */
  configPath: string;
  logDir: string;
  /** `--privileged`: Docker's masks lifted, the host's devices, /sys writable. */
  privileged: boolean;
  /** Device nodes beyond Docker's default set. */
  devices: DeviceNode[];
  /** Paths of the root shown empty and read-only (the appliance's state directory in the host image). */
  hide: string[];
  /** The container's user namespace, if it gets one. */
  userns?: UsernsConfig;
}

export type BootStep =
  | 'preload' | 'undumpable' | 'privatize' | 'hostDev' | 'holdSerial' | 'holdConfig' | 'holdLogDir' | 'initialProc' | 'userns'
  | 'overlay' | 'pivot' | 'moveRoot' | 'proc' | 'sysctls' | 'sys' | 'dev' | 'devNodes' | 'devPts' | 'shm' | 'run'
  | 'masks' | 'etcFiles' | 'hostname' | 'loopback';

/** What each step does, for warnings and the boot error. */
export const STEP_TITLES: Record<BootStep, string> = {
  preload: 'load native code before the root changes',
  undumpable: 'make the init undumpable, so no container process reaches it through /proc',
  privatize: 'make / recursively private',
  hostDev: 'mount devtmpfs on the initial root\'s /dev',
  holdSerial: 'take hold of the serial device',
  holdConfig: 'take hold of the config\'s directory',
  holdLogDir: 'take hold of the log directory',
  initialProc: 'mount proc on the initial root\'s /proc, to reach the guest\'s own processes by their IDs',
  userns: 'give the container a user namespace, and see the image through it',
  overlay: 'mount the container\'s root: an overlay of the image with a tmpfs upper layer',
  pivot: 'pivot_root into the container\'s root, detaching the old one',
  moveRoot: 'move the container\'s root onto / and chroot into it',
  proc: 'mount proc on /proc',
  sysctls: 'let every user bind ports below 1024 and ping, as Docker does',
  sys: 'mount sysfs on /sys',
  dev: 'mount /dev',
  devNodes: 'create the /dev nodes the container may open',
  devPts: 'mount devpts on /dev/pts',
  shm: 'mount tmpfs on /dev/shm',
  run: 'mount tmpfs on /run',
  masks: 'mask and make read-only the paths that reach the host',
  etcFiles: 'layer /etc/hostname and /etc/hosts',
  hostname: 'set the host name',
  loopback: 'bring the loopback interface up',
};

export type BootOutput =
  | {
    booted: true;
    /** The serial device to open from now on. */
    serialDevice: string;
    configPath: string;
    logDir: string;
    /** The container's user namespace, held as descriptor `fd`; absent: the container's IDs are the guest's. */
    userns?: HeldUserns;
    warnings: string[];
    /** The steps done, in order (none when not PID 1). */
    done: BootStep[];
  }
  | { booted: false; step: BootStep; error: string; warnings: string[]; done: BootStep[] };

/** A user namespace the guest holds for its container. */
export interface HeldUserns extends UsernsConfig {
  fd: number;
}

export type MountFlag = 'ro' | 'nosuid' | 'nodev' | 'noexec' | 'bind';

/** One mount(2), as the mount actor performs it. */
export interface MountSpec {
  source: string;
  target: string;
  type: string;
  flags: MountFlag[];
  data?: string;
  /** Create the target directory if missing (resolved inside the container's root: every such mount comes after the pivot). */
  makeTarget?: boolean;
}

/** The /dev nodes and links the devNodes actor creates. */
export interface DevNodes {
  /** Made in /dev, each bound onto itself. */
  nodes: DeviceNode[];
  /** Symbolic links; one already there with the same target is kept. */
  links: { path: string; target: string }[];
  /** Then /dev becomes nodev: only these nodes open. */
  exclusive: boolean;
}

/**
 * One path covered by the masks step. A pattern's `*` matches within one
 * path component; a path that does not exist is skipped.
 * - hide: a file gets /dev/null bound over it, a directory an empty read-only tmpfs;
 * - empty: a directory gets an empty writable tmpfs with its own mode and owner (a file: as hide);
 * - readonly: bound onto itself read-only.
 */
export interface MaskSpec {
  path: string;
  kind: 'hide' | 'empty' | 'readonly';
}

/** A file written under `dir` and bind-mounted over `target`. */
export interface EtcFile {
  name: string;
  target: string;
  content: string;
}

export interface EtcFilesInput {
  /** Where the files are written: on the guest's own tmpfs, never in the root's /etc. */
  dir: string;
  files: EtcFile[];
  /** Their owner and group: the container's root. */
  owner: number;
}

/** Where the layered /etc files live (on /run, the guest's tmpfs). */
export const ETC_DIR = '/run/tether/etc';
/**
 * Where the host image's overlay is mounted before the pivot: a directory
 * every Linux root has. The lower layer is the root file system alone (an
 * overlay layer never includes the mounts below it), so what the host has
 * mounted there does not show.
 */
export const HOST_VIEW_MOUNT = '/tmp';

/** Where the guest reaches a descriptor it holds, once /proc is its own. */
export const heldPath = (fd: number) => `/proc/self/fd/${fd}`;

/** Docker's masked paths (moby oci/defaults.go): kernel state a container has no business reading. */
export const DOCKER_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap', '/sys/devices/system/cpu/cpu*/thermal_throttle',
];
/** Docker's read-only paths: kernel knobs that act on the whole machine (core_pattern, drop_caches, sysrq). */
export const DOCKER_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * What the host image hides of the host: its users' and administrator's
 * files, its temporary and log files, password hashes, and the private keys
 * it holds. The directories come up empty and writable (a container still
 * has a /tmp and a home), the files empty.
 */
export const HOST_EMPTY_DIRS = ['/root', '/home', '/tmp', '/var/tmp', '/var/log', '/var/mail', '/var/spool', '/var/backups', '/etc/ssl/private'];
export const HOST_HIDDEN_FILES = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/etc/ssh/ssh_host_*'];

/** Every mask a container gets, in the order they are applied. */
export function masks(input: Pick<BootInput, 'rootfs' | 'privileged' | 'hide'>): MaskSpec[] {
  return [
    ...(input.rootfs === 'host'
      ? [...HOST_EMPTY_DIRS.map((path) => ({ path, kind: 'empty' as const })), ...HOST_HIDDEN_FILES.map((path) => ({ path, kind: 'hide' as const }))]
      : []),
    ...input.hide.map((path) => ({ path, kind: 'hide' as const })),
    ...(input.privileged
      ? []
      : [...DOCKER_MASKED_PATHS.map((path) => ({ path, kind: 'hide' as const })), ...DOCKER_READONLY_PATHS.map((path) => ({ path, kind: 'readonly' as const }))]),
  ];
}

const PROC: MountSpec = { source: 'proc', target: '/proc', type: 'proc', flags: ['nosuid', 'nodev', 'noexec'], makeTarget: true };
/**
 * A tmpfs that may hold device nodes only while devNodes makes Docker's set;
 * then it becomes nodev, so a node a container makes there (it has
 * CAP_MKNOD, as in Docker) does not open.
 */
const dev = (owner: number): MountSpec => ({
  source: 'tmpfs', target: '/dev', type: 'tmpfs', flags: ['nosuid'], data: `mode=0755,size=65536k${ownedBy(owner)}`, makeTarget: true,
});
/** `--privileged`: every device of the machine, as Docker gives it. */
const PRIVILEGED_DEV: MountSpec = { source: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: ['nosuid'], data: 'mode=0755', makeTarget: true };
/** A VM's initial root has no /dev until the init mounts one; the serial device is there. */
const HOST_DEV: MountSpec = { source: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: ['nosuid'], data: 'mode=0755', makeTarget: true };
// gid 5 is the tty group on every Linux distribution, as Docker mounts it; new ptys are the container root's.
const devPts = (owner: number): MountSpec => ({
  source: 'devpts', target: '/dev/pts', type: 'devpts', flags: ['nosuid', 'noexec'],
  data: `newinstance,ptmxmode=0666,mode=0620,gid=${owner + 5}${owner === 0 ? '' : `,uid=${owner}`}`, makeTarget: true,
});
// Sizes as Docker's: /dev holds only nodes; /dev/shm gets 64 MiB.
const shm = (owner: number): MountSpec => ({
  source: 'shm', target: '/dev/shm', type: 'tmpfs', flags: ['nosuid', 'nodev', 'noexec'],
  data: `mode=1777,size=65536k${ownedBy(owner)}`, makeTarget: true,
});
const run = (owner: number): MountSpec => ({
  source: 'tmpfs', target: '/run', type: 'tmpfs', flags: ['nosuid', 'nodev'], data: `mode=0755${ownedBy(owner)}`, makeTarget: true,
});
/** A tmpfs's options that make its root directory the container root's (none for the guest's own root). */
const ownedBy = (owner: number) => (owner === 0 ? '' : `,uid=${owner},gid=${owner}`);

/**
 * Docker's network settings for a container (since 20.10): its users, not
 * only root, may bind any port and open ICMP echo sockets. Root in a user
 * namespace holds no capability over the guest's network namespace, so
 * without them it could not bind port 80.
 */
export const NET_SYSCTLS: readonly { key: string; value: string }[] = [
  { key: 'net/ipv4/ip_unprivileged_port_start', value: '0' },
  { key: 'net/ipv4/ping_group_range', value: '0 2147483647' },
];

/**
 * The container's /dev: Docker's default nodes and the `--device` ones, and
 * a ptmx that opens the guest's own devpts instance. A privileged
 * container's devtmpfs has every node and lacks only the links. In a user
 * namespace whose root is host ID `owner`, each node's owner and group are
 * the same IDs inside as on the host, as the image's files are.
 */
export function devNodes(input: Pick<BootInput, 'privileged' | 'devices'>, owner = 0): DevNodes {
  if (input.privileged) return { nodes: [], links: [...DEV_LINKS], exclusive: false };
  const nodes = [...DEFAULT_DEVICES, ...input.devices].map((node) => (owner === 0 ? node : { ...node, uid: owner + (node.uid ?? 0), gid: owner + (node.gid ?? 0) }));
  return { nodes, links: [...DEV_LINKS, PTMX_LINK], exclusive: true };
}

/** sysfs shows the machine's devices and settings: read-only unless privileged, as Docker mounts it. */
export function sysMount(privileged: boolean): MountSpec {
  return { source: 'sysfs', target: '/sys', type: 'sysfs', flags: ['nosuid', 'nodev', 'noexec', ...(privileged ? [] : ['ro' as const])], makeTarget: true };
}

/**
 * The guest's /etc/hostname and /etc/hosts. With no address yet, the host
 * name maps to 127.0.1.1 (Debian's convention for a host without a fixed
 * address), so it resolves without a network.
 */
export function etcFiles(hostname: string, owner: number): EtcFilesInput {
  return {
    dir: ETC_DIR,
    owner,
    files: [
      { name: 'hostname', target: '/etc/hostname', content: `${hostname}\n` },
      {
        name: 'hosts',
        target: '/etc/hosts',
        content: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`,
      },
    ],
  };
}

/** The overlay step's input: the image as the lower layer, mounted where the pivot will find it. */
export interface OverlayInput {
  /** The image: a directory, or "/" for the host's root file system. */
  lower: string;
  /** The image as a detached idmapped mount (the userns step's), used instead of `lower` and closed once mounted. */
  lowerFd?: number;
  /** Where the overlay is mounted (a directory root's own path; HOST_VIEW_MOUNT for the host's). */
  at: string;
  /** Device nodes of the image do not open (all but a privileged container's). */
  nodev: boolean;
}

export function overlay(input: Pick<BootInput, 'rootfs' | 'privileged'>, lowerFd?: number): OverlayInput {
  const host = input.rootfs === 'host';
  return { lower: host ? '/' : input.rootfs, ...(lowerFd === undefined ? {} : { lowerFd }), at: host ? HOST_VIEW_MOUNT : input.rootfs, nodev: !input.privileged };
}

/** The userns step's input: the namespace's map, and the image to idmap through it. */
export interface UsernsInput extends UsernsConfig {
  lower: string;
}

export interface BootContext {
  input: BootInput;
  /** The descriptors of what the guest holds across the root change. */
  held: { serial?: number; config?: number; logDir?: number };
  /** The container's user namespace and the image idmapped through it, once made. */
  userns?: { fd: number; lowerFd: number };
  /** Where the container's root is mounted before the pivot. */
  root: string;
  warnings: string[];
  done: BootStep[];
  failure?: { step: BootStep; error: string };
}

/** The host ID the container's root has: its user namespace's base, or the guest's own root. */
const rootOwner = (context: BootContext) => (context.userns === undefined ? 0 : context.input.userns!.hostId);

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const isPath = (device: string) => !device.startsWith('tcp://');

/** The directory of a path, for holding it (the file itself may be replaced by a rename). */
const directoryOf = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';
const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** Placeholder logic for a step actor: the assembly provides the real one. */
const step = <O = void, I = void>() => fromPromise<O, I>(async () => undefined as O);

/** Transitions of a step whose failure fails the boot. */
function essential<S extends BootStep>(s: S, next: string) {
  return {
    onDone: { target: next, actions: { type: 'record' as const, params: { step: s } } },
    onError: { target: 'failed', actions: { type: 'fail' as const, params: ({ event }: { event: { error: unknown } }) => ({ step: s, error: event.error }) } },
  };
}

/** Transitions of a step whose failure is a warning: the boot goes on to `next` either way. */
function optional<S extends BootStep>(s: S, next: string) {
  return {
    onDone: { target: next, actions: { type: 'record' as const, params: { step: s } } },
    onError: { target: next, actions: { type: 'warn' as const, params: ({ event }: { event: { error: unknown } }) => ({ step: s, error: event.error }) } },
  };
}

/** A hold step, essential: the descriptor it resolves with is kept under `key`. */
function hold(s: BootStep & `hold${string}`, key: keyof BootContext['held'], next: string, path: (input: BootInput) => string, directory: boolean) {
  return {
    invoke: {
      src: 'hold' as const,
      input: ({ context }: { context: BootContext }) => ({ path: path(context.input), directory }),
      onDone: {
        target: next,
        actions: [
          { type: 'keep' as const, params: ({ event }: { event: { output: { fd: number } } }) => ({ key, fd: event.output.fd }) },
          { type: 'record' as const, params: { step: s } },
        ],
      },
      onError: essential(s, next).onError,
    },
  };
}

export const bootMachine = setup({
  types: {
    context: {} as BootContext,
    input: {} as BootInput,
    output: {} as BootOutput,
  },
  actors: {
    /** Loads what the guest would otherwise load lazily from a root it is about to leave. */
    preload: step(),
    /** prctl(PR_SET_DUMPABLE, 0): /proc/1's fd, root, mem and environ need CAP_SYS_PTRACE, which no container has. */
    undumpable: step(),
    /** mount(NULL, "/", NULL, MS_REC|MS_PRIVATE): nothing the guest mounts reaches the host. */
    privatize: step(),
    /** Takes `path` as a detached mount (made first if a missing directory); resolves with its descriptor. */
    hold: step<{ fd: number }, { path: string; directory: boolean }>(),
    /**
     * Makes a user namespace with the map, and a detached clone of `lower`
     * idmapped through it; resolves with both descriptors.
     */
    userns: step<{ fd: number; lowerFd: number }, UsernsInput>(),
    /** Mounts a tmpfs at `at` for the upper layer, then the overlay over it, the image below. */
    overlay: step<void, OverlayInput>(),
    /** pivot_root(".", ".") inside `dir`, then detaches the old root. */
    pivotRoot: step<void, { dir: string }>(),
    /** Moves `dir` onto / and chroots there: what switch_root does where pivot_root cannot. */
    moveRoot: step<void, { dir: string }>(),
    mount: step<void, MountSpec>(),
    /** Makes the nodes in /dev, binds each onto itself, then makes /dev nodev. */
    devNodes: step<void, DevNodes>(),
    masks: step<void, MaskSpec[]>(),
    etcFiles: step<void, EtcFilesInput>(),
    setHostname: step<void, { hostname: string }>(),
    /** Writes each value to /proc/sys/KEY. */
    sysctls: step<void, readonly { key: string; value: string }[]>(),
    loopbackUp: step(),
  },
  actions: {
    record: assign(({ context }, { step }: { step: BootStep }) => ({ done: [...context.done, step] })),
    keep: assign(({ context }, { key, fd }: { key: keyof BootContext['held']; fd: number }) => ({ held: { ...context.held, [key]: fd } })),
    keepUserns: assign((_, userns: { fd: number; lowerFd: number }) => ({ userns })),
    warn: assign(({ context }, { step, error }: { step: BootStep; error: unknown }) => ({
      warnings: [...context.warnings, `${STEP_TITLES[step]}: ${describe(error)}`],
    })),
    fail: assign((_, { step, error }: { step: BootStep; error: unknown }) => ({ failure: { step, error: describe(error) } })),
  },
  guards: {
    pid1: ({ context }) => context.input.pid1,
    vm: ({ context }) => !context.input.sandbox,
    serialIsPath: ({ context }) => isPath(context.input.serialDevice),
    userns: ({ context }) => context.input.userns !== undefined,
    /**
     * The network namespace is the guest's own, its settings the guest's to
     * change: a sandbox that reaches the appliance over TCP runs in the
     * host's (tools/sandbox.ts).
     */
    ownNetwork: ({ context }) => !context.input.sandbox || isPath(context.input.serialDevice),
    /**
     * pivot_root answers EINVAL when the current root is the initial ramfs
     * (a VM booted from an initramfs), which cannot be pivoted away from.
     */
    rootIsRamfs: (_, { error }: { error: unknown }) => (error as { code?: unknown } | null)?.code === 'EINVAL',
  },
}).createMachine({
  id: 'boot',
  context: ({ input }) => ({ input, held: {}, root: overlay(input).at, warnings: [], done: [] }),
  initial: 'start',
  states: {
    start: {
      always: [{ guard: 'pid1', target: 'preload' }, { target: 'skipped' }],
    },
    // The root always changes, so whatever the guest loads lazily must be in memory first.
    preload: { invoke: { src: 'preload', ...essential('preload', 'undumpable') } },
    undumpable: { invoke: { src: 'undumpable', ...essential('undumpable', 'privatize') } },
    privatize: { invoke: { src: 'privatize', ...essential('privatize', 'checkDev') } },
    checkDev: {
      always: [{ guard: 'vm', target: 'hostDev' }, { target: 'checkSerial' }],
    },
    hostDev: { invoke: { src: 'mount', input: HOST_DEV, ...optional('hostDev', 'checkSerial') } },
    checkSerial: {
      always: [{ guard: 'serialIsPath', target: 'holdSerial' }, { target: 'holdConfig' }],
    },
    // The guest's only way to the appliance: without it the container runs unreachable.
    holdSerial: hold('holdSerial', 'serial', 'holdConfig', (input) => input.serialDevice, false),
    // Without it a SIGHUP would read the config inside the container's root, where its root could write a privileged session.
    holdConfig: hold('holdConfig', 'config', 'holdLogDir', (input) => directoryOf(input.configPath), false),
    // Without it the logs would be written inside the container's root, where its processes could read and forge them.
    holdLogDir: hold('holdLogDir', 'logDir', 'checkUserns', (input) => input.logDir, true),
    checkUserns: {
      always: [{ guard: 'userns', target: 'initialProc' }, { target: 'overlay' }],
    },
    // The initial root's /proc is the host's (a sandbox), or none (a VM): the user namespace's maps are written through the guest's own.
    initialProc: {
      invoke: {
        src: 'mount',
        input: PROC,
        onDone: optional('initialProc', 'userns').onDone,
        onError: optional('initialProc', 'overlay').onError,
      },
    },
    // Optional, as "where the kernel allows" says: without it the container runs confined as before, with the guest's IDs.
    userns: {
      invoke: {
        src: 'userns',
        input: ({ context }) => ({ ...context.input.userns!, lower: overlay(context.input).lower }),
        onDone: {
          target: 'overlay',
          actions: [{ type: 'keepUserns', params: ({ event }) => event.output }, { type: 'record', params: { step: 'userns' } }],
        },
        onError: optional('userns', 'overlay').onError,
      },
    },
    overlay: {
      invoke: { src: 'overlay', input: ({ context }) => overlay(context.input, context.userns?.lowerFd), ...essential('overlay', 'pivot') },
    },
    pivot: {
      invoke: {
        src: 'pivotRoot',
        input: ({ context }) => ({ dir: context.root }),
        onDone: essential('pivot', 'proc').onDone,
        onError: [
          { guard: { type: 'rootIsRamfs', params: ({ event }) => ({ error: event.error }) }, target: 'moveRoot' },
          essential('pivot', 'proc').onError,
        ],
      },
    },
    moveRoot: {
      invoke: { src: 'moveRoot', input: ({ context }) => ({ dir: context.root }), ...essential('moveRoot', 'proc') },
    },
    proc: { invoke: { src: 'mount', input: PROC, ...essential('proc', 'checkNetwork') } },
    checkNetwork: {
      always: [{ guard: 'ownNetwork', target: 'sysctls' }, { target: 'sys' }],
    },
    sysctls: { invoke: { src: 'sysctls', input: NET_SYSCTLS, ...optional('sysctls', 'sys') } },
    // Without a read-only /sys a container could change the machine's settings.
    sys: { invoke: { src: 'mount', input: ({ context }) => sysMount(context.input.privileged), ...essential('sys', 'dev') } },
    // Without /dev/null no session started on pipes can run.
    dev: { invoke: { src: 'mount', input: ({ context }) => (context.input.privileged ? PRIVILEGED_DEV : dev(rootOwner(context))), ...essential('dev', 'devNodes') } },
    // Essential: it is also what keeps every other node from opening.
    devNodes: { invoke: { src: 'devNodes', input: ({ context }) => devNodes(context.input, rootOwner(context)), ...essential('devNodes', 'devPts') } },
    // Without it tty sessions fail to start; pipe sessions still run.
    devPts: { invoke: { src: 'mount', input: ({ context }) => devPts(rootOwner(context)), ...optional('devPts', 'shm') } },
    shm: { invoke: { src: 'mount', input: ({ context }) => shm(rootOwner(context)), ...optional('shm', 'run') } },
    // Without its own /run, the /etc files go to the root's /run, on the overlay's tmpfs.
    run: { invoke: { src: 'mount', input: ({ context }) => run(rootOwner(context)), ...optional('run', 'masks') } },
    masks: { invoke: { src: 'masks', input: ({ context }) => masks(context.input), ...essential('masks', 'etcFiles') } },
    etcFiles: { invoke: { src: 'etcFiles', input: ({ context }) => etcFiles(context.input.hostname, rootOwner(context)), ...optional('etcFiles', 'hostname') } },
    hostname: {
      invoke: { src: 'setHostname', input: ({ context }) => ({ hostname: context.input.hostname }), ...optional('hostname', 'loopback') },
    },
    loopback: { invoke: { src: 'loopbackUp', ...optional('loopback', 'booted') } },
    booted: { type: 'final' },
    failed: { type: 'final' },
    skipped: {
      type: 'final',
      entry: assign({
        warnings: ['not PID 1: the OS is left as it is (no mounts, no root change, host name and loopback untouched)'],
      }),
    },
  },
  output: ({ context }) => {
    if (context.failure) return { booted: false, ...context.failure, warnings: context.warnings, done: context.done };
    const { serial, config, logDir } = context.held;
    const { input } = context;
    return {
      booted: true,
      serialDevice: serial === undefined ? input.serialDevice : heldPath(serial),
      configPath: config === undefined ? input.configPath : `${heldPath(config)}/${baseName(input.configPath)}`,
      logDir: logDir === undefined ? input.logDir : heldPath(logDir),
      ...(context.userns === undefined ? {} : { userns: { ...input.userns!, fd: context.userns.fd } }),
      warnings: context.warnings,
      done: context.done,
    };
  },
});
