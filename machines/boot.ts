import { and, assign, fromPromise, setup } from 'xstate';

/**
 * The guest's boot: what a VM's init does before anything else, done by the
 * guest itself when it is PID 1 (in a containerVM, or in the sandbox's fresh
 * namespaces). One step per state, in order, each performed by an invoked
 * effect actor (actors/preload.ts, mounts.ts, serialDevice.ts, etcFiles.ts,
 * hostname.ts, loopback.ts); this machine decides which steps run, with
 * what, and what a failure means:
 *
 *   [directory root: preload] → privatize → [holdSerial] → [overlay → logDir → pivot (→ moveRoot)]
 *   → proc → sys → dev → devNodes → devPts → shm → run → [serial]
 *   → etcFiles → hostname → loopback → booted
 *
 * Essential steps (without them the container would run on the host's root,
 * without /proc or /dev/null, or unreachable) end the boot in `failed`,
 * naming the step and the cause. The others add a warning and the boot goes
 * on. Not PID 1 (a test, a run by hand): nothing is touched, since every step
 * would change the host's mounts, host name or network.
 */

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
  logDir: string;
}

export type BootStep =
  | 'preload' | 'privatize' | 'holdSerial' | 'overlay' | 'logDir' | 'pivot' | 'moveRoot'
  | 'proc' | 'sys' | 'dev' | 'devNodes' | 'devPts' | 'shm' | 'run' | 'serial'
  | 'etcFiles' | 'hostname' | 'loopback';

/** What each step does, for warnings and the boot error. */
export const STEP_TITLES: Record<BootStep, string> = {
  preload: 'load native code before the root changes',
  privatize: 'make / recursively private',
  holdSerial: 'take hold of the serial device',
  overlay: 'mount an overlay over the root directory',
  logDir: 'bind the log directory into the root',
  pivot: 'pivot_root into the root directory',
  moveRoot: 'move the root directory onto / and chroot into it',
  proc: 'mount proc on /proc',
  sys: 'mount sysfs on /sys',
  dev: 'mount /dev',
  devNodes: 'create the /dev nodes and links',
  devPts: 'mount devpts on /dev/pts',
  shm: 'mount tmpfs on /dev/shm',
  run: 'mount tmpfs on /run',
  serial: 'bind the serial device onto /dev/ttyS0',
  etcFiles: 'layer /etc/hostname and /etc/hosts',
  hostname: 'set the host name',
  loopback: 'bring the loopback interface up',
};

export type BootOutput =
  | {
    booted: true;
    /** The serial device to open from now on. */
    serialDevice: string;
    logDir: string;
    warnings: string[];
    /** The steps done, in order (none when not PID 1). */
    done: BootStep[];
  }
  | { booted: false; step: BootStep; error: string; warnings: string[]; done: BootStep[] };

export type MountFlag = 'ro' | 'nosuid' | 'nodev' | 'noexec' | 'bind';

/** One mount(2), as the mount actor performs it. */
export interface MountSpec {
  source: string;
  target: string;
  type: string;
  flags: MountFlag[];
  data?: string;
  /** Create the target directory if missing: only where it lies in a file system the guest just made. */
  makeTarget?: boolean;
}

/** The /dev nodes and links the devNodes actor creates. */
export interface DevNodes {
  /** Character devices, each made mode 0666 (umask notwithstanding). */
  nodes: { path: string; major: number; minor: number }[];
  /** Symbolic links; one already there with the same target is kept. */
  links: { path: string; target: string }[];
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
  /** Create a missing target (the root is the guest's overlay); otherwise skip it with a warning. */
  createMissing: boolean;
}

/** Where the sandbox's serial device is seen once /dev is the guest's own. */
export const SERIAL_TARGET = '/dev/ttyS0';
/** Where the layered /etc files live (on /run, the guest's tmpfs). */
export const ETC_DIR = '/run/tether/etc';

const SANDBOX_DEV: MountSpec = { source: 'tmpfs', target: '/dev', type: 'tmpfs', flags: ['nosuid'], data: 'mode=0755,size=65536k' };
const VM_DEV: MountSpec = { source: 'devtmpfs', target: '/dev', type: 'devtmpfs', flags: ['nosuid'], data: 'mode=0755' };
const PROC: MountSpec = { source: 'proc', target: '/proc', type: 'proc', flags: ['nosuid', 'nodev', 'noexec'] };
// gid 5 is the tty group on every Linux distribution, as Docker mounts it.
const DEV_PTS: MountSpec = {
  source: 'devpts', target: '/dev/pts', type: 'devpts', flags: ['nosuid', 'noexec'],
  data: 'newinstance,ptmxmode=0666,mode=0620,gid=5', makeTarget: true,
};
// Sizes as Docker's: /dev holds only nodes; /dev/shm gets 64 MiB.
const SHM: MountSpec = {
  source: 'shm', target: '/dev/shm', type: 'tmpfs', flags: ['nosuid', 'nodev', 'noexec'],
  data: 'mode=1777,size=65536k', makeTarget: true,
};
const RUN: MountSpec = { source: 'tmpfs', target: '/run', type: 'tmpfs', flags: ['nosuid', 'nodev'], data: 'mode=0755' };
/** The mount points a directory root gets in its overlay's upper layer when it lacks them. */
const MOUNT_POINTS = ['/proc', '/sys', '/dev', '/run'];

const FD_LINKS = [
  { path: '/dev/fd', target: '/proc/self/fd' },
  { path: '/dev/stdin', target: '/proc/self/fd/0' },
  { path: '/dev/stdout', target: '/proc/self/fd/1' },
  { path: '/dev/stderr', target: '/proc/self/fd/2' },
];

/**
 * A sandbox's /dev is an empty tmpfs: it gets the nodes a container needs
 * (Docker's set) and a ptmx that opens the guest's own devpts instance. A
 * VM's devtmpfs has the nodes, and its ptmx node opens the devpts mounted at
 * /dev/pts (Linux 4.7 and later); it lacks only the links.
 */
export function devNodes(sandbox: boolean): DevNodes {
  if (!sandbox) return { nodes: [], links: FD_LINKS };
  return {
    nodes: [
      { path: '/dev/null', major: 1, minor: 3 },
      { path: '/dev/zero', major: 1, minor: 5 },
      { path: '/dev/full', major: 1, minor: 7 },
      { path: '/dev/random', major: 1, minor: 8 },
      { path: '/dev/urandom', major: 1, minor: 9 },
      { path: '/dev/tty', major: 5, minor: 0 },
    ],
    links: [...FD_LINKS, { path: '/dev/ptmx', target: 'pts/ptmx' }],
  };
}

/** sysfs shows the host's devices and settings: a sandbox gets it read-only. */
export function sysMount(sandbox: boolean): MountSpec {
  return { source: 'sysfs', target: '/sys', type: 'sysfs', flags: ['nosuid', 'nodev', 'noexec', ...(sandbox ? ['ro' as const] : [])] };
}

/**
 * The guest's /etc/hostname and /etc/hosts. With no address yet, the host
 * name maps to 127.0.1.1 (Debian's convention for a host without a fixed
 * address), so it resolves without a network.
 */
export function etcFiles(hostname: string, createMissing: boolean): EtcFilesInput {
  return {
    dir: ETC_DIR,
    createMissing,
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

export interface BootContext {
  input: BootInput;
  /** The serial device, held as a detached mount across the root and /dev changes (sandbox with a device path). */
  serialFd?: number;
  serialDevice: string;
  warnings: string[];
  done: BootStep[];
  failure?: { step: BootStep; error: string };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const isPath = (device: string) => !device.startsWith('tcp://');

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

export const bootMachine = setup({
  types: {
    context: {} as BootContext,
    input: {} as BootInput,
    output: {} as BootOutput,
  },
  actors: {
    /** Loads what the guest would otherwise load lazily from a root it is about to leave. */
    preload: step(),
    /** mount(NULL, "/", NULL, MS_REC|MS_PRIVATE): nothing the guest mounts reaches the host. */
    privatize: step(),
    /** Takes the serial device as a detached mount; resolves with its descriptor. */
    holdSerial: step<{ fd: number }, { device: string }>(),
    /** Covers the directory with an overlay whose upper layer is a tmpfs, and makes the mount points. */
    overlay: step<void, { dir: string; mountPoints: string[] }>(),
    /** Binds the log directory of the current root to the same path inside `dir`. */
    bindLogDir: step<void, { dir: string; logDir: string }>(),
    /** pivot_root(".", ".") inside `dir`, then detaches the old root. */
    pivotRoot: step<void, { dir: string }>(),
    /** Moves `dir` onto / and chroots there: what switch_root does where pivot_root cannot. */
    moveRoot: step<void, { dir: string }>(),
    mount: step<void, MountSpec>(),
    devNodes: step<void, DevNodes>(),
    /** Attaches the held mount at `target` and closes its descriptor. */
    exposeSerial: step<void, { fd: number; target: string }>(),
    /** Resolves with warnings for the files it skipped. */
    etcFiles: step<{ warnings: string[] }, EtcFilesInput>(),
    setHostname: step<void, { hostname: string }>(),
    loopbackUp: step(),
  },
  actions: {
    record: assign(({ context }, { step }: { step: BootStep }) => ({ done: [...context.done, step] })),
    warn: assign(({ context }, { step, error }: { step: BootStep; error: unknown }) => ({
      warnings: [...context.warnings, `${STEP_TITLES[step]}: ${describe(error)}`],
    })),
    fail: assign((_, { step, error }: { step: BootStep; error: unknown }) => ({ failure: { step, error: describe(error) } })),
  },
  guards: {
    pid1: ({ context }) => context.input.pid1,
    /** In a sandbox /dev is remounted over the host's, hiding a host pty named as the device. */
    serialToHold: ({ context }) => context.input.sandbox && isPath(context.input.serialDevice),
    serialHeld: ({ context }) => context.serialFd !== undefined,
    directoryRoot: ({ context }) => context.input.rootfs !== 'host',
    /**
     * pivot_root answers EINVAL when the current root is the initial ramfs
     * (a VM booted from an initramfs), which cannot be pivoted away from.
     */
    rootIsRamfs: (_, { error }: { error: unknown }) => (error as { code?: unknown } | null)?.code === 'EINVAL',
    /** The /etc files go to /run: the guest's own tmpfs, or the overlay's; never the host's /run. */
    etcWritable: ({ context }) => context.done.includes('run') || context.input.rootfs !== 'host',
  },
}).createMachine({
  id: 'boot',
  context: ({ input }) => ({ input, serialDevice: input.serialDevice, warnings: [], done: [] }),
  initial: 'start',
  states: {
    start: {
      // Only a root about to change needs the lazily loaded code in memory first.
      always: [{ guard: and(['pid1', 'directoryRoot']), target: 'preload' }, { guard: 'pid1', target: 'privatize' }, { target: 'skipped' }],
    },
    preload: { invoke: { src: 'preload', ...essential('preload', 'privatize') } },
    privatize: { invoke: { src: 'privatize', ...essential('privatize', 'checkSerial') } },
    checkSerial: {
      always: [{ guard: 'serialToHold', target: 'holdSerial' }, { target: 'checkRoot' }],
    },
    holdSerial: {
      invoke: {
        src: 'holdSerial',
        input: ({ context }) => ({ device: context.input.serialDevice }),
        onDone: {
          target: 'checkRoot',
          actions: [assign({ serialFd: ({ event }) => event.output.fd }), { type: 'record', params: { step: 'holdSerial' } }],
        },
        onError: essential('holdSerial', 'checkRoot').onError,
      },
    },
    checkRoot: {
      always: [{ guard: 'directoryRoot', target: 'overlay' }, { target: 'proc' }],
    },
    overlay: {
      invoke: { src: 'overlay', input: ({ context }) => ({ dir: context.input.rootfs, mountPoints: MOUNT_POINTS }), ...essential('overlay', 'logDir') },
    },
    // Without it the logs are written inside the overlay's tmpfs and lost with the guest.
    logDir: {
      invoke: {
        src: 'bindLogDir',
        input: ({ context }) => ({ dir: context.input.rootfs, logDir: context.input.logDir }),
        ...optional('logDir', 'pivot'),
      },
    },
    pivot: {
      invoke: {
        src: 'pivotRoot',
        input: ({ context }) => ({ dir: context.input.rootfs }),
        onDone: essential('pivot', 'proc').onDone,
        onError: [
          { guard: { type: 'rootIsRamfs', params: ({ event }) => ({ error: event.error }) }, target: 'moveRoot' },
          essential('pivot', 'proc').onError,
        ],
      },
    },
    moveRoot: {
      invoke: { src: 'moveRoot', input: ({ context }) => ({ dir: context.input.rootfs }), ...essential('moveRoot', 'proc') },
    },
    proc: { invoke: { src: 'mount', input: PROC, ...essential('proc', 'sys') } },
    sys: { invoke: { src: 'mount', input: ({ context }) => sysMount(context.input.sandbox), ...optional('sys', 'dev') } },
    // Without /dev/null no session started on pipes can run.
    dev: { invoke: { src: 'mount', input: ({ context }) => (context.input.sandbox ? SANDBOX_DEV : VM_DEV), ...essential('dev', 'devNodes') } },
    devNodes: { invoke: { src: 'devNodes', input: ({ context }) => devNodes(context.input.sandbox), ...essential('devNodes', 'devPts') } },
    // Without it tty sessions fail to start; pipe sessions still run.
    devPts: { invoke: { src: 'mount', input: DEV_PTS, ...optional('devPts', 'shm') } },
    shm: { invoke: { src: 'mount', input: SHM, ...optional('shm', 'run') } },
    run: { invoke: { src: 'mount', input: RUN, ...optional('run', 'checkHeldSerial') } },
    checkHeldSerial: {
      always: [{ guard: 'serialHeld', target: 'serial' }, { target: 'checkEtc' }],
    },
    // The guest's only way to the appliance: without it the container runs unreachable.
    serial: {
      invoke: {
        src: 'exposeSerial',
        input: ({ context }) => ({ fd: context.serialFd!, target: SERIAL_TARGET }),
        onDone: {
          target: 'checkEtc',
          actions: [assign({ serialDevice: SERIAL_TARGET, serialFd: undefined }), { type: 'record', params: { step: 'serial' } }],
        },
        onError: essential('serial', 'checkEtc').onError,
      },
    },
    checkEtc: {
      always: [
        { guard: 'etcWritable', target: 'etcFiles' },
        {
          target: 'hostname',
          actions: { type: 'warn', params: { step: 'etcFiles', error: 'skipped: /run is the host\'s (its tmpfs mount failed), and the files must not go there' } },
        },
      ],
    },
    etcFiles: {
      invoke: {
        src: 'etcFiles',
        input: ({ context }) => etcFiles(context.input.hostname, context.input.rootfs !== 'host'),
        onDone: {
          target: 'hostname',
          actions: [
            assign({ warnings: ({ context, event }) => [...context.warnings, ...event.output.warnings] }),
            { type: 'record', params: { step: 'etcFiles' } },
          ],
        },
        onError: optional('etcFiles', 'hostname').onError,
      },
    },
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
  output: ({ context }) =>
    context.failure
      ? { booted: false, ...context.failure, warnings: context.warnings, done: context.done }
      : { booted: true, serialDevice: context.serialDevice, logDir: context.input.logDir, warnings: context.warnings, done: context.done },
});
