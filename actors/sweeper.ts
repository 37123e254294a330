import { fromCallback, type EventObject } from 'xstate';
import type { GuestEvent } from '../machines/guest.ts';
import { killTree } from './processTree.ts';

export interface SweeperOptions {
  /** Resolves once no child is left to reap (true) or the time ran out (false): the reaper's. */
  whenNoChildren(timeoutMs: number): Promise<boolean>;
}

/** Well past the guest machine's own bound on the sweep (its `sweepLimit`), so a wait it gave up on still ends. */
const WAIT_MS = 60_000;

/**
 * The guest's last word on processes once every session has ended: anything
 * still below this process (a double-forked daemon that escaped its session's
 * group, an orphan still running) gets SIGKILL, and the sweep is over when
 * the reaper has reaped them all.
 */
export function createSweeperActor(options: SweeperOptions) {
  return fromCallback<EventObject>(({ sendBack }) => {
    let live = true;
    killTree(process.pid);
    void options.whenNoChildren(WAIT_MS).then((none) => {
      if (live && none) sendBack({ type: 'SWEPT' } satisfies GuestEvent);
    });
    return () => {
      live = false;
    };
  });
}
