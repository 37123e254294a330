/**
 * How a container process is started confined: through dist/confine
 * (guest/confine.c), which applies the process's user, groups,
 * capabilities, no_new_privs and seccomp filter to itself and then executes
 * the command. Node cannot run code between fork and exec; this program is
 * that code.
 *
 * After the guest's pivot_root the root is the container's, where
 * dist/confine is not: the guest copies it before the pivot
 * (openConfineNow, from actors/preload.ts) into a sealed memory file and
 * starts it as /proc/self/fd/N, which executes the file the descriptor
 * holds (the descriptor is close-on-exec, so the command does not inherit
 * it). A copy, sealed, since a container process can reach a running
 * confine's file through /proc/PID/exe: were that the host's dist/confine,
 * its root could rewrite it and own the next process the guest starts
 * (runc's CVE-2019-5736).
 */
import { closeSync, existsSync, readFileSync, writeSync } from 'node:fs';
import { bundlePath } from '../shared/bundlePath.ts';
import { capabilityMask } from '../shared/capabilities.ts';
import type { ProcessConfinement } from '../shared/security.ts';
import { memoryFile, sealMemoryFile } from './libc.ts';
import { compileSeccomp } from './seccomp.ts';

/** The sealed copy of dist/confine that the guest made before its root changed. */
let opened: number | undefined;

/** Copies dist/confine into a sealed memory file, so it can be run once the root is another, and never changed. */
export function openConfineNow(): void {
  if (opened !== undefined) return;
  const path = bundlePath('confine');
  let program: Buffer;
  try {
    program = readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read ${path}, the program container processes are started through: ${(error as Error).message} (build it: node tools/build.mjs)`);
  }
  const fd = memoryFile('tether-confine');
  try {
    for (let written = 0; written < program.length;) written += writeSync(fd, program, written);
    sealMemoryFile(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  opened = fd;
}

function confinePath(): string {
  if (opened !== undefined) return `/proc/self/fd/${opened}`;
  const path = bundlePath('confine');
  if (!existsSync(path)) throw new Error(`${path} is missing: container processes are started through it (build it: node tools/build.mjs)`);
  return path;
}

/** The program that makes a user namespace and holds it until its stdin ends (actors/userns.ts). */
export function usernsHolderCommand(): { file: string; args: string[] } {
  return { file: confinePath(), args: ['-H'] };
}

/** Who the process runs as; absent: the guest init's own user and groups. */
export interface ProcessIdentity {
  uid: number;
  gid: number;
  groups: number[];
}

/**
 * The program and arguments that run `file` with `argv` under
 * `confinement`, in the user namespace the guest holds as `usernsFd` if
 * given. Throws when the seccomp profile cannot be compiled, or
 * dist/confine is missing: the process must not run otherwise.
 */
export function confinedCommand(file: string, argv: string[], identity: ProcessIdentity | undefined, confinement: ProcessConfinement, usernsFd?: number): { file: string; args: string[] } {
  const options = [
    ...(usernsFd === undefined ? [] : ['-U', String(usernsFd)]),
    ...(identity === undefined ? [] : ['-u', String(identity.uid), '-g', String(identity.gid), '-G', identity.groups.join(',')]),
    '-c', capabilityMask(confinement.capabilities).toString(16),
    ...(confinement.noNewPrivileges ? ['-n'] : []),
    ...(confinement.seccomp === undefined ? [] : ['-s', compileSeccomp(confinement.seccomp.profile, confinement.seccomp.caps).toString('hex')]),
  ];
  return { file: confinePath(), args: [...options, '--', file, ...argv] };
}
