import { fromPromise } from 'xstate';
import { setDumpable } from './libc.ts';

/**
 * The init's memory, descriptors (the serial device, the log directory) and
 * root are behind /proc/1: not dumpable, they need CAP_SYS_PTRACE, which a
 * container's processes never hold, even as root. Its children are dumpable
 * again once they exec.
 */
export const undumpableActor = fromPromise<void, void>(async () => {
  setDumpable(false);
});
