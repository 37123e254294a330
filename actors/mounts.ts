/**
 * The boot's mount steps (machines/boot.ts decides which, in what order and
 * with what options): keeping the guest's mounts away from the host, entering
 * a directory root through an overlay, and mounting the file systems a VM's
 * init mounts.
 */
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fromPromise } from 'xstate';
import type { DevNodes, MountFlag, MountSpec } from '../machines/boot.ts';
import {
  chroot, makeCharDevice, mount, umount, pivotRoot,
  MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
} from './libc.ts';

const FLAGS: Record<MountFlag, number> = { ro: MS_RDONLY, nosuid: MS_NOSUID, nodev: MS_NODEV, noexec: MS_NOEXEC, bind: MS_BIND };

/** Recursively private: the guest's mounts never propagate to the mount namespace it came from. */
export const privatizeActor = fromPromise<void, void>(async () => {
  mount(null, '/', null, MS_REC | MS_PRIVATE);
});

export const mountActor = fromPromise<void, MountSpec>(async ({ input }) => {
  if (input.makeTarget) fs.mkdirSync(input.target, { recursive: true });
  mount(input.source, input.target, input.type, input.flags.reduce((bits, f) => bits | FLAGS[f], 0), input.data ?? null);
});

export const devNodesActor = fromPromise<void, DevNodes>(async ({ input }) => {
  for (const { path, major, minor } of input.nodes) {
    makeCharDevice(path, 0o666, major, minor);
    // mknod applies the umask.
    fs.chmodSync(path, 0o666);
  }
  for (const { path, target } of input.links) {
    try {
      fs.symlinkSync(target, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || readLink(path) !== target) {
        throw new Error(`symlink ${path} -> ${target}: ${(err as Error).message}`);
      }
    }
  }
});

function readLink(path: string): string | undefined {
  try {
    return fs.readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Escapes what overlayfs's option parser splits on (`,` between options, `:` between lower layers). */
const overlayPath = (path: string) => path.replace(/[\\,:]/g, '\\$&');

/**
 * Covers `dir` with an overlay: the directory is the read-only lower layer,
 * the upper and work directories are on a tmpfs, so the container writes
 * without changing the directory. Nothing is created outside: the tmpfs is
 * mounted on `dir` itself, and the lower layer is named as "." from inside
 * the directory (a process's working directory stays on the directory a
 * later mount covers). The missing mount points are made in the upper layer.
 */
export const overlayActor = fromPromise<void, { dir: string; mountPoints: string[] }>(async ({ input: { dir, mountPoints } }) => {
  process.chdir(dir);
  mount('tmpfs', dir, 'tmpfs', 0, 'mode=0755');
  fs.mkdirSync(join(dir, 'upper'));
  fs.mkdirSync(join(dir, 'work'));
  mount('overlay', dir, 'overlay', 0, `lowerdir=.,upperdir=${overlayPath(join(dir, 'upper'))},workdir=${overlayPath(join(dir, 'work'))}`);
  for (const point of mountPoints) fs.mkdirSync(join(dir, point), { recursive: true });
});

/** The current root's `logDir`, bound to the same path inside `dir`, so the logs outlive the overlay. */
export const bindLogDirActor = fromPromise<void, { dir: string; logDir: string }>(async ({ input: { dir, logDir } }) => {
  const inside = join(dir, logDir);
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(inside, { recursive: true });
  mount(logDir, inside, null, MS_BIND);
});

/**
 * runc's pivot: with `dir` as the working directory, pivot_root(".", ".")
 * stacks the old root on top of the new one, and a lazy unmount of "."
 * removes it, so no directory for the old root is needed. The process keeps
 * running from memory; whatever it loads from disk from now on comes from
 * the new root (see actors/preload.ts).
 */
export const pivotRootActor = fromPromise<void, { dir: string }>(async ({ input: { dir } }) => {
  process.chdir(dir);
  pivotRoot('.', '.');
  umount('.', MNT_DETACH);
  process.chdir('/');
});

/**
 * switch_root's way, for a root pivot_root refuses (the initial ramfs):
 * move the directory's mount onto / and chroot into it. The ramfs's files
 * stay in memory.
 */
export const moveRootActor = fromPromise<void, { dir: string }>(async ({ input: { dir } }) => {
  process.chdir(dir);
  mount(dir, '/', null, MS_MOVE);
  chroot('.');
  process.chdir('/');
});

/** A file to mount over: an empty one, its directory made if missing. */
export function makeMountTarget(path: string): void {
  fs.mkdirSync(dirname(path), { recursive: true });
  fs.closeSync(fs.openSync(path, 'a'));
}
