/**
 * The processes below a process, read from /proc, and signals to all of
 * them: what stopping a session or a whole container needs beyond its
 * process group.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const SIGKILL = 9;

/**
 * SIGKILL to `groups` and to every descendant of `pid`, found through the
 * parent links in /proc: a daemon that made its own session is out of the
 * group but still a descendant until its parent exits. Repeated while it
 * finds new ones, since a process may fork between the scan and its kill.
 */
export function killTree(pid: number, groups: number[] = []): void {
  for (const group of groups) killQuietly(group, SIGKILL);
  const killed = new Set<number>();
  for (let round = 0; round < 5; round++) {
    const fresh = descendantsOf(pid).filter((p) => p !== process.pid && !killed.has(p));
    if (fresh.length === 0) return;
    for (const p of fresh) {
      killQuietly(p, SIGKILL);
      killed.add(p);
    }
  }
}

/** Every process whose chain of parents reaches `root` (root itself included), from /proc. */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const ppid = parentOf(pid);
    if (ppid === undefined) continue;
    const siblings = children.get(ppid);
    if (siblings) siblings.push(pid);
    else children.set(ppid, [pid]);
  }
  const found = [root];
  for (let i = 0; i < found.length; i++) found.push(...(children.get(found[i]!) ?? []));
  return found;
}

/**
 * The fields of /proc/PID/stat after the command name (which may hold spaces
 * and parentheses): [0] state, [1] ppid, [2] pgrp, [3] session, [4] tty,
 * [5] tpgid, ...; undefined once the process is gone.
 */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function parentOf(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields === undefined ? undefined : Number(fields[1]);
}

/** ESRCH (already gone) and EPERM leave nothing to do for a signal. */
export function killQuietly(target: number, signo: number): void {
  try {
    process.kill(target, signo);
  } catch {
    // See above.
  }
}
