/**
 * The container's user namespace (machines/boot.ts decides whether it gets
 * one): made by a holder process, since a multithreaded process such as
 * Node cannot unshare one, and held by the guest init as a descriptor that
 * every container process joins (dist/confine -U).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { fromPromise } from 'xstate';
import type { UsernsInput } from '../machines/boot.ts';
import { usernsHolderCommand } from './confine.ts';
import { cloneMount, idmapMount } from './libc.ts';

/**
 * Makes the namespace with `hostId` and `size` as its only map, for users
 * and for groups alike, and a detached clone of `lower` idmapped through it,
 * so that the image's files are owned inside by the IDs they name. Resolves
 * with both descriptors; on failure nothing is left open.
 */
export const usernsActor = fromPromise<{ fd: number; lowerFd: number }, UsernsInput>(async ({ input }) => {
  const fd = await makeUserNamespace(`0 ${input.hostId} ${input.size}\n`);
  try {
    const lowerFd = cloneMount(input.lower);
    try {
      idmapMount(lowerFd, fd);
    } catch (error) {
      closeSync(lowerFd);
      throw new Error(`${(error as Error).message}: the file system of ${input.lower} cannot be seen through a user namespace`);
    }
    return { fd, lowerFd };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
});

/** A new user namespace with `map` as its uid_map and gid_map, opened; the holder is gone when this resolves. */
async function makeUserNamespace(map: string): Promise<number> {
  const { file, args } = usernsHolderCommand();
  const holder = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const ended = new Promise<string>((resolve) => {
    let said = '';
    holder.stderr!.on('data', (chunk: Buffer) => { said += chunk.toString(); });
    holder.on('close', (code, signal) => resolve(`the holder of the user namespace ended (${signal ?? `exit ${code}`})${said === '' ? '' : `: ${said.trim()}`}`));
    holder.on('error', (error) => resolve(`the holder of the user namespace could not start: ${error.message}`));
  });
  const ready = new Promise<void>((resolve) => {
    let out = '';
    holder.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) resolve();
    });
  });
  try {
    const failure = await Promise.race([ready.then(() => undefined), ended]);
    if (failure !== undefined) throw new Error(failure);
    const pid = holder.pid!;
    writeFileSync(`/proc/${pid}/uid_map`, map);
    writeFileSync(`/proc/${pid}/gid_map`, map);
    return openSync(`/proc/${pid}/ns/user`, 'r');
  } finally {
    holder.stdin!.end();
    await ended;
  }
}
