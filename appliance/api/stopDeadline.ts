/**
 * How long `docker stop` waits for the exit it asked for. The guest sends the
 * stop signal, then SIGKILL after the stop timeout; a process that does not
 * die of SIGKILL either (stuck in the kernel, in D state) would otherwise
 * hang the request forever while its link stays up.
 */
import { ApiError } from './errors.ts';

/**
 * Seconds allowed after the stop timeout, Docker's own figure: after its
 * SIGKILL moby waits 10 s for the exit event, kills the process directly and
 * waits 2 s more before it gives up with "tried to kill container, but did
 * not receive an exit event". Here the same 12 s also cover the exit report's
 * trip over the serial link, which takes milliseconds.
 */
export const KILL_GRACE_SECONDS = 12;

/** A wait that can be called off; injected so tests decide when time is up. */
export type Timer = (ms: number) => { elapsed: Promise<void>; cancel(): void };

/** The longest delay setTimeout takes; a longer one fires at once (stop timeouts go up to 24.8 days, plus the grace). */
const MAX_DELAY_MS = 2 ** 31 - 1;

export const realTimer: Timer = (ms) => {
  let handle: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    const arm = (left: number) => {
      handle = setTimeout(() => (left > MAX_DELAY_MS ? arm(left - MAX_DELAY_MS) : resolve()), Math.min(left, MAX_DELAY_MS));
    };
    arm(ms);
  });
  return { elapsed, cancel: () => clearTimeout(handle) };
};

/**
 * `stopping`, or Docker's 500 once `timeoutSeconds` plus the grace have
 * passed without it settling. The error names the container as it was asked
 * for, what was waited for and for how long.
 */
export async function withinStopDeadline<T>(stopping: Promise<T>, ref: string, timeoutSeconds: number, timer: Timer = realTimer): Promise<T> {
  const waitedSeconds = timeoutSeconds + KILL_GRACE_SECONDS;
  const deadline = timer(waitedSeconds * 1000);
  const expired = deadline.elapsed.then((): never => {
    throw new ApiError(
      500,
      `cannot stop container: ${ref}: tried to kill container, but did not receive an exit event ` +
        `(waited ${waitedSeconds} s for its guest to report the exit: the ${timeoutSeconds} s stop timeout, then ${KILL_GRACE_SECONDS} s after SIGKILL)`,
    );
  });
  // After the deadline the client has had its answer; a later failure of the stop is nobody's news.
  stopping.catch(() => {});
  try {
    return await Promise.race([stopping, expired]);
  } finally {
    deadline.cancel();
  }
}
