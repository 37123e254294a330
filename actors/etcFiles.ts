/**
 * The guest's /etc files, as VIC layered them: written to the guest's own
 * tmpfs and bind-mounted over the root's files, so the image is never
 * edited: a missing target is made in the root's overlay. machines/boot.ts
 * decides their content.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { fromPromise } from 'xstate';
import type { EtcFilesInput } from '../machines/boot.ts';
import { mount, MS_BIND } from './libc.ts';
import { makeMountTarget } from './mounts.ts';

export const etcFilesActor = fromPromise<void, EtcFilesInput>(async ({ input }) => {
  fs.mkdirSync(input.dir, { recursive: true });
  for (const file of input.files) {
    const source = join(input.dir, file.name);
    fs.writeFileSync(source, file.content, { mode: 0o644 });
    fs.chownSync(source, input.owner, input.owner);
    if (!fs.existsSync(file.target)) makeMountTarget(file.target);
    mount(source, file.target, null, MS_BIND);
  }
});
