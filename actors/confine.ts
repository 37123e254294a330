/**
 * How a container process is started confined: through dist/confine
 * (guest/confine.c), which applies the process's user, groups,
 * capabilities, no_new_privs and seccomp filter to itself and then executes
 * the command. Node cannot run code between fork and exec; this program is
 * that code.
 *
 * After the guest's pivot_root the root is the container's, where
 * dist/confine is not: the guest opens it before the pivot
 * (openConfineNow, from actors/preload.ts) and starts it as
 * /proc/self/fd/N, which executes the file the descriptor holds (the
 * descriptor is close-on-exec, so the command does not inherit it).
 */
import { existsSync, openSync } from 'node:fs';
import { bundlePath } from '../shared/bundlePath.ts';
import { capabilityMask } from '../shared/capabilities.ts';
import type { ProcessConfinement } from '../shared/security.ts';
import { compileSeccomp } from './seccomp.ts';

/** The descriptor on dist/confine that the guest opened before its root changed. */
let opened: number | undefined;

/** Opens dist/confine, so it can be run once the root is another. */
export function openConfineNow(): void {
  const path = bundlePath('confine');
  try {
    opened ??= openSync(path, 'r');
  } catch (error) {
    throw new Error(`cannot open ${path}, the program container processes are started through: ${(error as Error).message} (build it: node tools/build.mjs)`);
  }
}

function confinePath(): string {
  if (opened !== undefined) return `/proc/self/fd/${opened}`;
  const path = bundlePath('confine');
  if (!existsSync(path)) throw new Error(`${path} is missing: container processes are started through it (build it: node tools/build.mjs)`);
  return path;
}

/** Who the process runs as; absent: the guest init's own user and groups. */
export interface ProcessIdentity {
  uid: number;
  gid: number;
  groups: number[];
}

/**
 * The program and arguments that run `file` with `argv` under
 * `confinement`. Throws when the seccomp profile cannot be compiled, or
 * dist/confine is missing: the process must not run otherwise.
 */
export function confinedCommand(file: string, argv: string[], identity: ProcessIdentity | undefined, confinement: ProcessConfinement): { file: string; args: string[] } {
  const options = [
    ...(identity === undefined ? [] : ['-u', String(identity.uid), '-g', String(identity.gid), '-G', identity.groups.join(',')]),
    '-c', capabilityMask(confinement.capabilities).toString(16),
    ...(confinement.noNewPrivileges ? ['-n'] : []),
    ...(confinement.seccomp === undefined ? [] : ['-s', compileSeccomp(confinement.seccomp.profile, confinement.seccomp.caps).toString('hex')]),
  ];
  return { file: confinePath(), args: [...options, '--', file, ...argv] };
}
