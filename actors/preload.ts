/**
 * Before the guest leaves its root (pivot_root into a directory root, which
 * may hold no Node, no node_modules and no libc.so.6 at all), everything it
 * would otherwise read from disk later must already be in memory: once the
 * root changes, a path names a file of the container's root.
 *
 * The guest loads some code only when it first needs it, so that starting
 * the container's process does not wait for it: serialport and its binding
 * (the first open of the line), the SSH server with ssh2 and its optional
 * sshcrypto.node (the first SSH session), and koffi's dlopen("libc.so.6")
 * and function bindings (first use, actors/libc.ts). Before a pivot this
 * step loads them all, and requires the native addons (a no-op from the
 * module cache when loaded already), so that a missing one fails the boot
 * here, naming it, rather than a session later. So must libseccomp (the
 * container's seccomp filters are compiled with it) and dist/confine, the
 * program every container process starts through (actors/confine.ts).
 *
 * Node's own modules are in its binary, and its shared libraries are mapped
 * at start; child processes and name lookups are meant to use the new root.
 */
import { createRequire } from 'node:module';
import { fromPromise } from 'xstate';
import { openConfineNow } from './confine.ts';
import { bindLibcNow } from './libc.ts';
import { loadSeccompNow } from './seccomp.ts';

const NATIVE_ADDONS = ['koffi', '@lydell/node-pty', '@serialport/bindings-cpp'];

export const preloadActor = fromPromise<void, void>(async () => {
  const require = createRequire(import.meta.url);
  for (const name of NATIVE_ADDONS) require(name);
  await Promise.all([import('serialport'), import('./sshServer.ts')]);
  bindLibcNow();
  loadSeccompNow();
  openConfineNow();
});
