import fs from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';

/**
 * A directory on the host's root file system, in the host image's view
 * (/tmp and the homes are hidden from it), with files for a container to
 * try to change; removed when `t` ends.
 */
export function canary(t: Test): string {
  const dir = fs.mkdtempSync('/var/lib/tether-canary-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(join(dir, 'file'), 'the host\'s own\n');
  fs.mkdirSync(join(dir, 'sub'));
  fs.writeFileSync(join(dir, 'sub', 'nested'), 'nested\n');
  return dir;
}

/** Every name below `dir` with its content (or "dir"), to compare before and after. */
export const snapshot = (dir: string) => fs.readdirSync(dir, { recursive: true }).map(String).sort()
  .map((name) => [name, fs.statSync(join(dir, name)).isFile() ? fs.readFileSync(join(dir, name), 'utf8') : 'dir']);
