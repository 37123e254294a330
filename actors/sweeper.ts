import { fromCallback, type EventObject } from 'xstate';
import type { GuestEvent } from '../machines/guest.ts';
import { killTree } from './processTree.ts';

export interface SweeperOptions {
  /** Resolves once no child is left to reap (true) or the time ran out (false): the reaper's. */
  whenNoChildren(timeoutMs: number): Promise<boolean>;
  /** How long to wait for the killed processes to be reaped. */
  timeoutMs?: number;
}

/**
 * The guest's last word on processes once every session has ended: anything
 * still below this process (a double-forked daemon that escaped its session's
 * group, an orphan still running) gets SIGKILL, and the sweep is over when
 * the reaper has reaped them all, or when the wait runs out (a process in
 * uninterruptible sleep must not hold the VM up forever).
 */
export function createSweeperActor(options: SweeperOptions) {
  return fromCallback<EventObject>(({ sendBack }) => {
    let live = true;
    killTree(process.pid);
    void options.whenNoChildren(options.timeoutMs ?? 5000).then(() => {
      if (live) sendBack({ type: 'SWEPT' } satisfies GuestEvent);
    });
    return () => {
      live = false;
    };
  });
}
