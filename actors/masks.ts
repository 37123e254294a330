/**
 * The masks step (machines/boot.ts `masks` decides which paths, and how):
 * after the pivot, so every path resolves inside the container's root. A
 * container cannot undo a mask: unmounting needs CAP_SYS_ADMIN, which it
 * holds only when privileged.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { fromPromise } from 'xstate';
import type { MaskSpec } from '../machines/boot.ts';
import { mount, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT } from './libc.ts';

const LOCKED = MS_NOSUID | MS_NODEV | MS_NOEXEC;

export const masksActor = fromPromise<void, MaskSpec[]>(async ({ input }) => {
  for (const spec of input) {
    for (const path of expand(spec.path)) {
      try {
        apply(spec.kind, path);
      } catch (err) {
        // Gone between the listing and the mount (a /proc entry of a process that ended): nothing to mask.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new Error(`${spec.kind} ${path}: ${(err as Error).message}`);
      }
    }
  }
});

function apply(kind: MaskSpec['kind'], path: string): void {
  const stats = fs.statSync(path);
  if (kind === 'readonly') {
    mount(path, path, null, MS_BIND | MS_REC);
    mount(null, path, null, MS_REMOUNT | MS_BIND | MS_RDONLY | LOCKED);
  } else if (!stats.isDirectory()) {
    // runc's way: reads find nothing, and /dev/null is a node the container may open anyway (so not nodev).
    mount('/dev/null', path, null, MS_BIND);
    mount(null, path, null, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC);
  } else if (kind === 'hide') {
    mount('tmpfs', path, 'tmpfs', MS_RDONLY | LOCKED, 'mode=0755');
  } else {
    const mode = (stats.mode & 0o7777).toString(8);
    mount('tmpfs', path, 'tmpfs', MS_NOSUID | MS_NODEV, `mode=0${mode},uid=${stats.uid},gid=${stats.gid}`);
  }
}

/** The existing paths a pattern names: `*` matches any name within one component. */
function expand(pattern: string): string[] {
  let paths = ['/'];
  for (const part of pattern.split('/').filter((p) => p !== '')) {
    if (!part.includes('*')) {
      paths = paths.map((dir) => join(dir, part));
      continue;
    }
    const matcher = new RegExp(`^${part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
    paths = paths.flatMap((dir) => listing(dir).filter((name) => matcher.test(name)).map((name) => join(dir, name)));
  }
  return paths.filter((path) => fs.existsSync(path));
}

function listing(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
