import { writeFileSync } from 'node:fs';
import { fromPromise } from 'xstate';

/** Writes each kernel setting of the guest's namespaces (machines/boot.ts decides which) through /proc/sys. */
export const sysctlsActor = fromPromise<void, readonly { key: string; value: string }[]>(async ({ input }) => {
  for (const { key, value } of input) {
    try {
      writeFileSync(`/proc/sys/${key}`, value);
    } catch (error) {
      throw new Error(`${key} = ${value}: ${(error as Error).message}`);
    }
  }
});
