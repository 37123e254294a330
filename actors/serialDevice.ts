/**
 * The sandbox's serial device across the boot: the launcher names a host pty
 * (/dev/pts/5), which the guest's own /dev and /dev/pts hide. The device is
 * taken while it is still in sight, as a detached bind mount (open_tree),
 * and attached at /dev/ttyS0 once the guest's /dev exists, where the guest
 * opens it like a VM's serial port.
 *
 * Not an open descriptor bound through /proc/self/fd: with a directory root,
 * the host's devpts mount leaves the namespace with the old root, and a bind
 * from a mount outside the namespace is refused (EINVAL).
 */
import fs from 'node:fs';
import { fromPromise } from 'xstate';
import { attachMount, cloneMount } from './libc.ts';
import { makeMountTarget } from './mounts.ts';

export const holdSerialActor = fromPromise<{ fd: number }, { device: string }>(async ({ input }) => ({
  fd: cloneMount(input.device),
}));

export const exposeSerialActor = fromPromise<void, { fd: number; target: string }>(async ({ input: { fd, target } }) => {
  try {
    makeMountTarget(target);
    attachMount(fd, target);
  } finally {
    fs.closeSync(fd);
  }
});
