/**
 * The boot's mount steps (machines/boot.ts decides which, in what order and
 * with what options): keeping the guest's mounts away from the host, holding
 * what the guest keeps of the host's tree, entering the container's root
 * through an overlay, and mounting the file systems a VM's init mounts.
 */
import fs from 'node:fs';
import { dirname, join } from 'node:path';
import { fromPromise } from 'xstate';
import { heldPath, type DevNodes, type MountFlag, type MountSpec, type OverlayInput } from '../machines/boot.ts';
import {
  chroot, cloneMount, makeDevice, mount, umount, pivotRoot,
  MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT,
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

/**
 * Holds `path` as a detached mount (open_tree): unlike an open file, it
 * can be opened again, and a directory's files reached, through
 * /proc/self/fd/N after its mount has left the namespace with the old root,
 * and it appears nowhere in the container's tree.
 */
export const holdActor = fromPromise<{ fd: number }, { path: string; directory: boolean }>(async ({ input }) => {
  if (input.directory) fs.mkdirSync(input.path, { recursive: true, mode: 0o700 });
  return { fd: cloneMount(input.path) };
});

/**
 * Docker's device policy, made with mounts: the nodes are made in /dev
 * while it may still hold devices, each bound onto itself (a bind mount
 * has flags of its own, so the node keeps opening), then /dev becomes
 * nodev. A node made later, there or on any other mount a container can
 * write (all nodev), does not open, whatever its numbers.
 */
export const devNodesActor = fromPromise<void, DevNodes>(async ({ input }) => {
  for (const node of input.nodes) {
    const mode = node.fileMode ?? 0o666;
    fs.mkdirSync(dirname(node.path), { recursive: true });
    makeDevice(node.path, node.type, mode, node.major, node.minor);
    // mknod applies the umask.
    fs.chmodSync(node.path, mode);
    if (node.uid !== undefined || node.gid !== undefined) fs.chownSync(node.path, node.uid ?? 0, node.gid ?? 0);
    mount(node.path, node.path, null, MS_BIND);
    // A bind copies its source mount's flags: a node outside /dev starts out nodev.
    mount(null, node.path, null, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC);
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
  if (input.exclusive) mount(null, '/dev', null, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV);
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
 * Mounts the container's root at `at`: an overlay whose lower layer is the
 * image, read-only, and whose upper and work directories are on a tmpfs, so
 * the container writes without changing the image. The lower layer is named
 * as "." from inside it (a process's working directory stays on the
 * directory a later mount covers, and reaches a detached idmapped mount), so
 * `at` may be the image's own directory and nothing is created outside.
 * The root directory is the upper one, so it takes the image's root's owner
 * and mode. Mount points are made after the pivot, where the image's
 * symbolic links resolve inside the root.
 */
export const overlayActor = fromPromise<void, OverlayInput>(async ({ input: { lower, lowerFd, at, nodev } }) => {
  process.chdir(lowerFd === undefined ? lower : heldPath(lowerFd));
  try {
    const top = fs.statSync('.');
    mount('tmpfs', at, 'tmpfs', 0, 'mode=0755');
    const upper = join(at, 'upper');
    fs.mkdirSync(upper);
    fs.chownSync(upper, top.uid, top.gid);
    fs.chmodSync(upper, top.mode & 0o7777);
    fs.mkdirSync(join(at, 'work'));
    mount('overlay', at, 'overlay', nodev ? MS_NODEV : 0,
      `lowerdir=.,upperdir=${overlayPath(upper)},workdir=${overlayPath(join(at, 'work'))}`);
  } finally {
    // The overlay holds the layer itself.
    if (lowerFd !== undefined) fs.closeSync(lowerFd);
  }
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
