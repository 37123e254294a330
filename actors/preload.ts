/**
 * Before the guest leaves its root (pivot_root into a directory root, which
 * may hold no Node, no node_modules and no libc.so.6 at all), everything it
 * would otherwise read from disk later must already be in memory: once the
 * root changes, a path names a file of the container's root.
 *
 * In dist/guest.cjs, the native addons (koffi, @lydell/node-pty,
 * @serialport/bindings-cpp, under dist/node_modules) and ssh2's optional
 * sshcrypto.node are required while the bundle starts, before main() runs.
 * What stays lazy is koffi's work: dlopen("libc.so.6") and every function
 * binding happen on first use (actors/libc.ts), which may be after the
 * pivot. This step binds them now, and requires the addons again (a no-op
 * from the module cache) so that the guarantee does not rest on which
 * module happens to import them first; a missing addon fails the boot here,
 * naming it, rather than a session later.
 *
 * Node's own modules are in its binary, and its shared libraries are mapped
 * at start; child processes and name lookups are meant to use the new root.
 */
import { createRequire } from 'node:module';
import { fromPromise } from 'xstate';
import { bindLibcNow } from './libc.ts';

const NATIVE_ADDONS = ['koffi', '@lydell/node-pty', '@serialport/bindings-cpp'];

export const preloadActor = fromPromise<void, void>(async () => {
  const require = createRequire(import.meta.url);
  for (const name of NATIVE_ADDONS) require(name);
  bindLibcNow();
});
