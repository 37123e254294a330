/**
 * The guest's /etc files, as VIC layered them: written to the guest's own
 * tmpfs and bind-mounted over the root's files, so the root (the host's, or
 * a directory) is never edited. machines/boot.ts decides their content.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { fromPromise } from 'xstate';
import type { EtcFilesInput } from '../machines/boot.ts';
import { mount, MS_BIND } from './libc.ts';
import { makeMountTarget } from './mounts.ts';

/** Resolves with a warning for each target it skipped. */
export const etcFilesActor = fromPromise<{ warnings: string[] }, EtcFilesInput>(async ({ input }) => {
  const warnings: string[] = [];
  fs.mkdirSync(input.dir, { recursive: true });
  for (const file of input.files) {
    const source = join(input.dir, file.name);
    fs.writeFileSync(source, file.content, { mode: 0o644 });
    if (!fs.existsSync(file.target)) {
      if (!input.createMissing) {
        warnings.push(`${file.target} is missing from the root and is not created there: the guest's ${file.name} is not in effect`);
        continue;
      }
      makeMountTarget(file.target);
    }
    mount(source, file.target, null, MS_BIND);
  }
  return { warnings };
});
