/**
 * The init's reaping, as effects for machines/reaper.ts: the SIGCHLD
 * listener, the subreaper flag, and the pass that reaps.
 *
 * A pass reaps only children nobody has claimed (actors/childOwners.ts).
 * Its fast path asks the kernel which child has ended without reaping it
 * (waitid with WNOWAIT), reaps that one by PID, and asks again: two system
 * calls per zombie, however many children are alive. The kernel names the
 * oldest ended child first, so a claimed zombie its owner has not reaped yet
 * hides every zombie behind it; then the pass lists its children from /proc
 * and tries each unclaimed one by PID. Either way it ends by counting the
 * children left, from the same list (no list at all when the kernel says
 * there are no children).
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { createActor, fromPromise, type Actor } from 'xstate';
import { reaperMachine, type PassResult, type ReapedChild } from '../machines/reaper.ts';
import { createLog, type Log } from '../shared/log.ts';
import { isClaimed, onRelease } from './childOwners.ts';
import { becomeSubreaper, peekEndedChild, reapChild } from './libc.ts';

/**
 * Zombies looked at in one pass at most (a few milliseconds of system
 * calls): a burst of thousands is reaped in slices, with the event loop
 * running in between.
 */
const PASS_BUDGET = 1000;

/**
 * The open children files of this process's threads, by thread id. A pread
 * from offset 0 makes the kernel write the list afresh, and costs a seventh
 * of opening, reading and closing the file (measured during an orphan storm).
 * A file is closed when its thread leaves /proc/self/task (read from a
 * thread that has ended, it is empty).
 */
const childrenFiles = new Map<string, number>();
/** Each PID takes at most 8 bytes: this holds 8,192, and grows when a list fills it. */
let listBuffer = Buffer.alloc(65_536);

/** The PIDs of this process's children, whichever of its threads started or inherited them. */
export function listChildren(): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch (err) {
    throw new Error(`cannot list this process's threads in /proc/self/task: ${(err as Error).message}`);
  }
  for (const [task, fd] of childrenFiles) {
    if (tasks.includes(task)) continue;
    closeSync(fd);
    childrenFiles.delete(task);
  }
  const pids: number[] = [];
  for (const task of tasks) {
    const text = readChildrenFile(task);
    if (text !== undefined) for (const pid of text.split(' ')) if (pid !== '') pids.push(Number(pid));
  }
  if (childrenFiles.size === 0) throw new Error('no /proc/self/task/*/children file: the kernel lacks CONFIG_PROC_CHILDREN');
  return pids;
}

/** The children file of one thread; undefined when the thread ended after the listing. */
function readChildrenFile(task: string): string | undefined {
  const path = `/proc/self/task/${task}/children`;
  try {
    let fd = childrenFiles.get(task);
    if (fd === undefined) childrenFiles.set(task, (fd = openSync(path, 'r')));
    for (;;) {
      const length = readSync(fd, listBuffer, 0, listBuffer.length, 0);
      if (length < listBuffer.length) return listBuffer.toString('latin1', 0, length);
      listBuffer = Buffer.alloc(listBuffer.length * 2);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/**
 * One pass: reaps the ended children nobody has claimed, looking at no more
 * than `budget` of them, and counts the children left. With `reap` false it
 * only counts (a reaper switched off).
 */
function reapPass(reap: boolean, budget = PASS_BUDGET): PassResult {
  const reaped: ReapedChild[] = [];
  if (!reap) return { reaped, remaining: peekEndedChild() === null ? 0 : listChildren().length, cutShort: false };
  for (let looked = 0; looked < budget; looked++) {
    const pid = peekEndedChild();
    if (pid === null) return { reaped, remaining: 0, cutShort: false };
    if (pid === 0) return { reaped, remaining: listChildren().length, cutShort: false };
    if (isClaimed(pid)) return reapPastClaimed(reaped, budget - looked);
    const status = reapChild(pid);
    if (status) reaped.push(status);
  }
  return { reaped, remaining: listChildren().length, cutShort: true };
}

/** The slow path: every unclaimed child, one by one, since the kernel's first ended child is claimed. */
function reapPastClaimed(reaped: ReapedChild[], budget: number): PassResult {
  let remaining = 0;
  let looked = 0;
  for (const pid of listChildren()) {
    if (isClaimed(pid) || looked >= budget) {
      remaining++;
      continue;
    }
    looked++;
    const status = reapChild(pid);
    if (status) reaped.push(status);
    // null: no longer a child (an unknown waiter got it first), so not remaining either.
    else if (status === undefined) remaining++;
  }
  return { reaped, remaining, cutShort: looked >= budget };
}

/** The `pass` actor for machines/reaper.ts. */
export function createPassActor({ enabled, log }: { enabled: boolean; log: Log }) {
  return fromPromise<PassResult>(async ({ signal }) => {
    // After the callbacks of this turn of the event loop, libuv's handling of
    // the same SIGCHLD among them: the child_process children it was about
    // are reaped by their owner by then, so they do not send the pass the slow way.
    await new Promise((resolve) => setImmediate(resolve));
    signal.throwIfAborted();
    try {
      const result = reapPass(enabled);
      for (const child of result.reaped) log('debug', 'reaped', { ...child });
      return result;
    } catch (err) {
      log('error', 'reaping pass failed', { error: err as Error });
      throw err;
    }
  });
}

export interface ReaperOptions {
  /** false: a reaper that counts children but never reaps them (a negative control, the guest's --no-reap). */
  enabled?: boolean;
  log?: Log;
}

export interface Reaper {
  actor: Actor<typeof reaperMachine>;
  /**
   * Resolves true once a pass that began after the call finds no children
   * at all (so no descendants), false when `timeoutMs` has passed first.
   */
  whenNoChildren(timeoutMs: number): Promise<boolean>;
  /** Stops listening for SIGCHLD and stops the machine. */
  stop(): void;
}

/**
 * Starts reaping: a pass at once (for orphans that ended before anyone
 * listened), then one on every SIGCHLD and after every release of a claimed
 * child. Outside PID 1 it first makes this process a subreaper, so that its
 * descendants' orphans come to it. Call claimNodeChildren() before starting
 * any child, so that child_process children keep their exit statuses.
 *
 * @example
 *   claimNodeChildren();
 *   const reaper = startReaper({ log: log.child('reaper') });
 *   // at shutdown, once the processes were told to stop:
 *   if (!(await reaper.whenNoChildren(10_000))) log('warn', 'descendants still running');
 */
export function startReaper({ enabled = true, log = createLog('reaper') }: ReaperOptions = {}): Reaper {
  if (process.pid !== 1) {
    try {
      becomeSubreaper();
    } catch (err) {
      log('warn', 'not a subreaper: orphans of descendants go to the real init', { error: err as Error });
    }
  }
  const actor = createActor(reaperMachine.provide({ actors: { pass: createPassActor({ enabled, log }) } }), { input: {} });
  const onSignal = () => actor.send({ type: 'SIGCHLD' });
  process.on('SIGCHLD', onSignal);
  const stopWatchingReleases = onRelease(() => actor.send({ type: 'RECOUNT' }));
  actor.start();
  actor.send({ type: 'RECOUNT' });
  log('info', enabled ? 'reaping orphans' : 'not reaping: zombies will stay', { pid: process.pid });

  return {
    actor,
    whenNoChildren(timeoutMs) {
      const start = actor.getSnapshot();
      if (start.status !== 'active') return Promise.resolve(false);
      // A pass running now may have looked before the call: only the passes after it count.
      const after = start.context.passes + (start.value === 'reaping' ? 1 : 0);
      return new Promise((resolve) => {
        const settle = (result: boolean) => {
          clearTimeout(timer);
          subscription.unsubscribe();
          resolve(result);
        };
        const timer = setTimeout(() => settle(false), timeoutMs);
        const subscription = actor.subscribe({
          next: ({ context }) => {
            if (context.passes > after && context.error === undefined && context.children === 0) settle(true);
          },
          complete: () => settle(false),
        });
        actor.send({ type: 'RECOUNT' });
      });
    },
    stop() {
      process.off('SIGCHLD', onSignal);
      stopWatchingReleases();
      actor.stop();
      for (const fd of childrenFiles.values()) closeSync(fd);
      childrenFiles.clear();
    },
  };
}
