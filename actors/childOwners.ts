/**
 * The one-owner rule for child processes. Whoever waits for a child by its
 * PID owns that child's exit status: libuv waits for each `child_process`
 * child (and fires its exit callback only if its own waitpid gets the
 * status), node-pty waits for its children in a thread. The reaper
 * (actors/reaper.ts) reaps only children nobody has claimed here; reaping a
 * claimed one would steal its status, and the owner would see no exit or a
 * wrong code.
 *
 * A claim must be made before the reaper can run again, that is in the same
 * synchronous run of JavaScript that started the child: the reaper runs on
 * the main thread too, so it cannot see the child in between.
 */
import { ChildProcess } from 'node:child_process';

const claimed = new Set<number>();
const releaseListeners = new Set<(pid: number) => void>();

/** `pid` is waited for by someone else: the reaper must leave it alone. */
export function claimChild(pid: number): void {
  claimed.add(pid);
}

/**
 * The owner has its child's status (or gave up on it). Call it as soon as the
 * status is in: until then a new child that happens to get the same PID would
 * be left unreaped.
 */
export function releaseChild(pid: number): void {
  if (!claimed.delete(pid)) return;
  for (const listener of releaseListeners) listener(pid);
}

export function isClaimed(pid: number): boolean {
  return claimed.has(pid);
}

/**
 * Calls `listener` after each release. The reaper counts children again
 * then: an owner reaping its child sends no signal the reaper would see.
 * Returns the function that stops the calls.
 */
export function onRelease(listener: (pid: number) => void): () => void {
  releaseListeners.add(listener);
  return () => releaseListeners.delete(listener);
}

let claimingNodeChildren = false;

/**
 * Claims every child started through node:child_process from now on (spawn,
 * exec, execFile and fork all start it with `ChildProcess.prototype.spawn`)
 * until its 'exit' event, which Node emits in the same callback in which
 * libuv took its status. Idempotent. spawnSync and execSync are not wrapped:
 * they wait for their child before any other JavaScript, the reaper's
 * included, can run. Children started from a worker thread are not covered:
 * each thread has its own child_process module and its own copy of this
 * registry, so an init must start its children from the main thread.
 *
 * @example
 *   claimNodeChildren();
 *   const reaper = startReaper({ log });
 */
export function claimNodeChildren(): void {
  if (claimingNodeChildren) return;
  claimingNodeChildren = true;
  // Not in @types/node: the method child_process's functions call on a new ChildProcess.
  const prototype = ChildProcess.prototype as ChildProcess & { spawn(options: unknown): unknown };
  const spawn = prototype.spawn;
  prototype.spawn = function spawnClaimed(this: ChildProcess, options: unknown) {
    try {
      return spawn.call(this, options);
    } finally {
      // Set only once the child exists; a spawn that failed has none to claim.
      const pid = this.pid;
      if (pid !== undefined) {
        claimChild(pid);
        this.once('exit', () => releaseChild(pid));
      }
    }
  };
}
