/**
 * The system calls Node does not offer, reached through koffi: the PID 1
 * work (reaping, mounts, hostname, pivot_root, power-off) and a few file
 * descriptor calls. Each wrapper throws an Error naming the call, its
 * arguments and the errno name (`mount("proc", "/proc", "proc") failed:
 * EPERM`), so a failure says what was asked. Bound on first use: a process
 * that never calls them never loads libc through koffi.
 */
import koffi from 'koffi';
import { constants } from 'node:os';

/** wait options and flags (linux/wait.h). */
export const WNOHANG = 1;
/** mount flags (linux/mount.h). */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
/** Change the flags of an existing mount (with MS_BIND: only the mount's own flags). */
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
/** Move a mount elsewhere. */
export const MS_MOVE = 8192;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
export const MNT_DETACH = 2;
/** prctl options (linux/prctl.h). */
const PR_SET_DUMPABLE = 4;
const PR_SET_CHILD_SUBREAPER = 36;
/** reboot(2) command (linux/reboot.h). */
const RB_POWER_OFF = 0x4321fedc;
/** x86-64 system call number; glibc has no pivot_root wrapper. */
const SYS_pivot_root = 155;

function bind() {
  const lib = koffi.load('libc.so.6');
  return {
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
    prctl: lib.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *type, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    syscall: lib.func('long syscall(long number, ...)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
    close: lib.func('int close(int fd)'),
    chroot: lib.func('int chroot(const char *path)'),
    sethostname: lib.func('int sethostname(const char *name, size_t len)'),
    mknod: lib.func('int mknod(const char *path, unsigned int mode, unsigned long dev)'),
    sync: lib.func('void sync(void)'),
    reboot: lib.func('int reboot(int cmd)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
    memfd_create: lib.func('int memfd_create(const char *name, unsigned int flags)'),
    posix_openpt: lib.func('int posix_openpt(int flags)'),
    grantpt: lib.func('int grantpt(int fd)'),
    unlockpt: lib.func('int unlockpt(int fd)'),
    ptsname_r: lib.func('int ptsname_r(int fd, _Out_ uint8_t *buf, size_t buflen)'),
    tcgetattr: lib.func('int tcgetattr(int fd, void *termios)'),
    cfmakeraw: lib.func('void cfmakeraw(void *termios)'),
    tcsetattr: lib.func('int tcsetattr(int fd, int action, void *termios)'),
    waitid: lib.func('int waitid(int idtype, unsigned int id, void *infop, int options)'),
  };
}

let bound: ReturnType<typeof bind> | undefined;
const libc = () => (bound ??= bind());

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The name of error number `errno` ("EPERM"), or "errno N" for one Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** The error for a failed call: `call` is how it was asked, for the message. */
export function errnoError(call: string): NodeJS.ErrnoException {
  const errno = koffi.errno();
  const code = errnoName(errno);
  return Object.assign(new Error(`${call} failed: ${code}`), { code, errno });
}

function check(result: number, call: () => string): number {
  if (result < 0) throw errnoError(call());
  return result;
}

const show = (x: string | null) => (x === null ? 'NULL' : JSON.stringify(x));

/** The state of one child reaped by `reapChild`: its exit code, or the signal that killed it. */
export interface WaitStatus {
  pid: number;
  exitCode?: number;
  signal?: number;
}

/**
 * waitpid(pid, WNOHANG): the status of `pid` (or of any child, for -1) if it
 * has ended, reaping it; undefined if it still runs; null if there is no
 * such child (ECHILD).
 */
export function reapChild(pid: number): WaitStatus | undefined | null {
  const status = [0];
  const result = libc().waitpid(pid, status, WNOHANG) as number;
  if (result === 0) return undefined;
  if (result < 0) {
    if (koffi.errno() === constants.errno.ECHILD) return null;
    throw errnoError(`waitpid(${pid}, WNOHANG)`);
  }
  const raw = status[0]!;
  const termsig = raw & 0x7f;
  return termsig === 0 ? { pid: result, exitCode: (raw >> 8) & 0xff } : { pid: result, signal: termsig };
}

/** Orphans of descendants come to this process instead of PID 1 (PR_SET_CHILD_SUBREAPER). */
export function becomeSubreaper(): void {
  check(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) as number, () => 'prctl(PR_SET_CHILD_SUBREAPER, 1)');
}

/**
 * Whether other processes of the same user may reach this one through
 * /proc/PID (fd, root, mem, environ) and ptrace: with false, only holders of
 * CAP_SYS_PTRACE may (PR_SET_DUMPABLE).
 */
export function setDumpable(dumpable: boolean): void {
  check(libc().prctl(PR_SET_DUMPABLE, dumpable ? 1 : 0, 0, 0, 0) as number, () => `prctl(PR_SET_DUMPABLE, ${dumpable ? 1 : 0})`);
}

export function mount(source: string | null, target: string, type: string | null, flags: number, data: string | null = null): void {
  check(libc().mount(source, target, type, flags, data) as number,
    () => `mount(${show(source)}, ${show(target)}, ${show(type)}, 0x${flags.toString(16)}, ${show(data)})`);
}

export function umount(target: string, flags = 0): void {
  check(libc().umount2(target, flags) as number, () => `umount2(${show(target)}, ${flags})`);
}

/** pivot_root(2): `newRoot` becomes /, the old root is put at `putOld` (both may be "."). */
export function pivotRoot(newRoot: string, putOld: string): void {
  check(Number(libc().syscall(SYS_pivot_root, 'const char *', newRoot, 'const char *', putOld)), () => `pivot_root(${show(newRoot)}, ${show(putOld)})`);
}

export function chroot(path: string): void {
  check(libc().chroot(path) as number, () => `chroot(${show(path)})`);
}

export function setHostname(name: string): void {
  check(libc().sethostname(name, Buffer.byteLength(name)) as number, () => `sethostname(${show(name)})`);
}

/** mknod(2) of a character ('c') or block ('b') device `major:minor` with permission bits `mode` (before the umask). */
export function makeDevice(path: string, type: 'c' | 'b', mode: number, major: number, minor: number): void {
  const S_IFCHR = 0o020000;
  const S_IFBLK = 0o060000;
  // glibc's makedev: minor's low byte, major's low 12 bits, minor's upper bits, major's upper bits (arithmetic: past 32 bits).
  const dev = (minor & 0xff) + (major & 0xfff) * 2 ** 8 + Math.floor(minor / 2 ** 8) * 2 ** 20 + Math.floor(major / 2 ** 12) * 2 ** 32;
  check(libc().mknod(path, (type === 'c' ? S_IFCHR : S_IFBLK) | mode, dev) as number,
    () => `mknod(${show(path)}, ${type} 0${mode.toString(8)}, ${major}:${minor})`);
}

/** Flushes every file system's dirty data to its device. */
export function syncFileSystems(): void {
  libc().sync();
}

/**
 * Powers the machine off. From PID 1 of a child PID namespace the kernel
 * instead ends that namespace's init, as if killed by SIGINT.
 */
export function powerOff(): void {
  check(libc().reboot(RB_POWER_OFF) as number, () => 'reboot(RB_POWER_OFF)');
}

/** fcntl commands and flags (linux/fcntl.h, linux/memfd.h). */
const F_DUPFD_CLOEXEC = 1030;
const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;

/** A second descriptor on `fd`'s open file, closed on exec so no process the guest starts inherits it. */
export function duplicate(fd: number): number {
  return check(libc().fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0) as number, () => `fcntl(${fd}, F_DUPFD_CLOEXEC)`);
}

/** memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING): a file in memory, on no file system. */
export function memoryFile(name: string): number {
  return check(libc().memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING) as number, () => `memfd_create(${show(name)})`);
}

/** Seals a memory file for good: nobody, root included, can change its contents or size again. */
export function sealMemoryFile(fd: number): void {
  check(libc().fcntl(fd, F_ADD_SEALS, 'int', F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) as number, () => `fcntl(${fd}, F_ADD_SEALS)`);
}

/** waitid(2): which children, and what to wait for (linux/wait.h). */
const P_ALL = 0;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
/** Offset of si_pid in the siginfo_t waitid fills (x86-64 and arm64). */
const SI_PID = 16;
const siginfo = Buffer.alloc(128);

/**
 * waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT): the PID of a child that has
 * ended, left unreaped (its status stays for whoever reaps it); 0 if there
 * are children but none has ended; null if there are no children (ECHILD).
 * Which ended child it names, when several have, is the kernel's choice.
 */
export function peekEndedChild(): number | null {
  // Zeroed first: POSIX leaves siginfo unspecified when nothing has ended.
  siginfo.writeInt32LE(0, SI_PID);
  if ((libc().waitid(P_ALL, 0, siginfo, WEXITED | WNOHANG | WNOWAIT) as number) < 0) {
    if (koffi.errno() === constants.errno.ECHILD) return null;
    throw errnoError('waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)');
  }
  return siginfo.readInt32LE(SI_PID);
}


/** Network interface flags through ioctl on any socket (linux/sockios.h, linux/if.h). */
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 1;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/** struct ifreq: the name (IFNAMSIZ bytes, NUL-terminated), then a union whose first member is the short flags. */
const IFNAMSIZ = 16;
const IFREQ_BYTES = 40;

/** System calls without a glibc wrapper; numbers shared by every architecture from 424 on. */
const SYS_open_tree = 428;
const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
const SYS_mount_setattr = 442;
const AT_EMPTY_PATH = 0x1000;
const MOUNT_ATTR_IDMAP = 0x00100000;
/** struct mount_attr: attr_set, attr_clr, propagation, userns_fd, each a u64. */
const MOUNT_ATTR_BYTES = 32;

/** Sets IFF_UP on the interface `name` of this network namespace (SIOCGIFFLAGS, then SIOCSIFFLAGS). */
export function setInterfaceUp(name: string): void {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new Error(`interface name ${JSON.stringify(name)} is longer than ${IFNAMSIZ - 1} bytes`);
  const c = libc();
  const fd = check(c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number, () => 'socket(AF_INET, SOCK_DGRAM)');
  try {
    const ifreq = Buffer.alloc(IFREQ_BYTES);
    ifreq.write(name, 0, 'utf8');
    check(c.ioctl(fd, SIOCGIFFLAGS, 'void *', ifreq) as number, () => `ioctl(SIOCGIFFLAGS, ${JSON.stringify(name)})`);
    ifreq.writeInt16LE(ifreq.readInt16LE(IFNAMSIZ) | IFF_UP, IFNAMSIZ);
    check(c.ioctl(fd, SIOCSIFFLAGS, 'void *', ifreq) as number, () => `ioctl(SIOCSIFFLAGS, ${JSON.stringify(name)}, IFF_UP)`);
  } finally {
    c.close(fd);
  }
}

/**
 * Loads libc and binds every wrapper here now, instead of on first use: a
 * process about to leave its root (pivot_root into a directory without
 * libc.so.6) must not need to find the library on disk afterwards.
 */
export function bindLibcNow(): void {
  libc();
}

/**
 * open_tree(path, OPEN_TREE_CLONE): a descriptor holding a detached bind
 * mount of `path`. Unlike an open file, a directory's files stay reachable
 * through /proc/self/fd/N after the mount it came from has left this
 * namespace (a pivot_root).
 */
export function cloneMount(path: string): number {
  return check(Number(libc().syscall(SYS_open_tree, 'int', AT_FDCWD, 'const char *', path, 'unsigned int', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)),
    () => `open_tree(${show(path)}, OPEN_TREE_CLONE)`);
}

/**
 * mount_setattr(fd, MOUNT_ATTR_IDMAP) of the detached mount `fd` (from
 * cloneMount): its files' owners show through the ID maps of the user
 * namespace `usernsFd`, as that namespace's IDs. Fails (EINVAL) where the
 * file system cannot be idmapped.
 */
export function idmapMount(fd: number, usernsFd: number): void {
  const attr = Buffer.alloc(MOUNT_ATTR_BYTES);
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_IDMAP), 0);
  attr.writeBigUInt64LE(BigInt(usernsFd), 24);
  check(Number(libc().syscall(SYS_mount_setattr, 'int', fd, 'const char *', '', 'unsigned int', AT_EMPTY_PATH, 'void *', attr, 'size_t', MOUNT_ATTR_BYTES)),
    () => `mount_setattr(${fd}, MOUNT_ATTR_IDMAP, userns ${usernsFd})`);
}

/** A new pseudo-terminal master (posix_openpt with `flags`). */
export function openPtyMaster(flags: number): number {
  return check(libc().posix_openpt(flags) as number, () => 'posix_openpt');
}

/** Makes the master's slave usable (grantpt, unlockpt) and returns its path, e.g. /dev/pts/3. */
export function unlockPtySlave(masterFd: number): string {
  const c = libc();
  check(c.grantpt(masterFd) as number, () => `grantpt(${masterFd})`);
  check(c.unlockpt(masterFd) as number, () => `unlockpt(${masterFd})`);
  const name = Buffer.alloc(128);
  // ptsname_r returns the error number itself rather than setting errno.
  const failed = c.ptsname_r(masterFd, name, name.length) as number;
  if (failed !== 0) throw Object.assign(new Error(`ptsname_r(${masterFd}) failed: ${errnoName(failed)}`), { errno: failed });
  return name.toString('utf8', 0, name.indexOf(0));
}

/** sizeof(struct termios) is 60 on Linux; cfmakeraw edits it in place. */
const TERMIOS_BYTES = 256;
const TCSANOW = 0;

/** A terminal in raw mode (cfmakeraw): no echo, no line editing, no CR/LF mapping. */
export function makeRaw(fd: number): void {
  const c = libc();
  const termios = Buffer.alloc(TERMIOS_BYTES);
  check(c.tcgetattr(fd, termios) as number, () => `tcgetattr(${fd})`);
  c.cfmakeraw(termios);
  check(c.tcsetattr(fd, TCSANOW, termios) as number, () => `tcsetattr(${fd}, TCSANOW)`);
}
