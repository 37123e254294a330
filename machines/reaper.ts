/**
 * The reaper: when a pass over the init's children runs, so that every
 * orphan that ends under the init is reaped and no SIGCHLD is ever lost.
 *
 *   idle ──SIGCHLD / RECOUNT──→ reaping ──pass done / failed──→ resting
 *   reaping, resting ──SIGCHLD / RECOUNT──→ (itself; one more pass is now due)
 *   resting ──after rest──┬─ [again] ──→ reaping
 *                         └────────────→ idle
 *
 * Signals coalesce: two children ending at the same instant may deliver one
 * SIGCHLD, and one arriving while a pass runs may concern a child the pass
 * has already looked past. So a pass never reaps "the child that signalled":
 * it reaps every ended child it may reap, and every SIGCHLD or RECOUNT is
 * followed by a pass that begins after it (catatonit's hang, its issue #4,
 * was a loop that reaped everything but looked for its main child only when
 * the one signal delivered happened to be that child's). A pass that stopped
 * at its budget also asks for one more.
 *
 * After each pass the reaper rests a moment, and whatever arrives then is
 * handled by one pass at its end. A lone SIGCHLD is still handled at once,
 * but an orphan storm costs a pass per rest instead of one per signal: a
 * pass's own cost (an invoked actor and two transitions, about 100 µs) was
 * most of the init's time in a storm of 10,000 orphans, more than the
 * reaping itself.
 *
 * The `pass` actor (actors/reaper.ts in the guest; a simulation in a checker)
 * reaps only children nobody else waits for (actors/childOwners.ts) and
 * reports what it reaped and how many children remain, claimed ones
 * included: no children at all means no descendants at all, which is what a
 * shutdown waits for. RECOUNT asks for a pass without a signal: at start, for
 * orphans that ended before anyone listened; when an owner has reaped its
 * child, to count again; and when a shutdown wants a fresh count.
 */
import { assign, emit, fromPromise, setup, type DoneActorEvent } from 'xstate';

/** One reaped child: its exit code, or the number of the signal that killed it. */
export interface ReapedChild {
  pid: number;
  exitCode?: number;
  signal?: number;
}

/** What one pass did. */
export interface PassResult {
  reaped: ReapedChild[];
  /** Children still there when the pass ended: running, claimed, or ended too late for it. */
  remaining: number;
  /** It stopped at its budget: ended children may be left for the next pass. */
  cutShort: boolean;
}

export type ReaperEvent =
  /** The init received SIGCHLD: some child changed state, maybe several. */
  | { type: 'SIGCHLD' }
  /** Run a pass although no signal came. */
  | { type: 'RECOUNT' };

/** After each successful pass, for logs and for whoever waits on a count. */
export type ReaperEmitted = { type: 'PASSED'; reaped: ReapedChild[]; remaining: number };

export interface ReaperInput {
  /** How long to rest after a pass; 10 ms unless given. */
  restMs?: number;
}

export interface ReaperContext {
  restMs: number;
  /** Children left after the last successful pass; unknown before the first. */
  children?: number;
  /** Passes ended, successful or not: lets a waiter tell a pass that began after it asked. */
  passes: number;
  /** Children reaped so far. */
  reaped: number;
  /** Another pass is due: a SIGCHLD or RECOUNT came since the last one began, or it was cut short. */
  again: boolean;
  /** Why the last pass failed; cleared by the next one that succeeds. */
  error?: string;
}

// Named actions are typed with the machine's own events only, not its actors' done events.
const passResult = (event: object) => (event as DoneActorEvent<PassResult>).output;

export const reaperMachine = setup({
  types: {
    context: {} as ReaperContext,
    events: {} as ReaperEvent,
    input: {} as ReaperInput,
    emitted: {} as ReaperEmitted,
  },
  actors: {
    // Typing placeholder: the assembly provides actors/reaper.ts's pass.
    pass: fromPromise<PassResult>(() => {
      throw new Error('reaperMachine: provide the "pass" actor with .provide({ actors: { pass } })');
    }),
  },
  delays: {
    rest: ({ context }) => context.restMs,
  },
  guards: {
    again: ({ context }) => context.again,
  },
  actions: {
    markAgain: assign({ again: true }),
    record: assign(({ context, event }) => {
      const { reaped, remaining, cutShort } = passResult(event);
      return {
        children: remaining,
        passes: context.passes + 1,
        reaped: context.reaped + reaped.length,
        again: context.again || cutShort,
        error: undefined,
      };
    }),
    announce: emit(({ event }) => {
      const { reaped, remaining } = passResult(event);
      return { type: 'PASSED' as const, reaped, remaining };
    }),
    recordFailure: assign(({ context, event }) => {
      const { error } = event as { error?: unknown };
      return { passes: context.passes + 1, error: error instanceof Error ? error.message : String(error) };
    }),
  },
}).createMachine({
  id: 'reaper',
  context: ({ input }) => ({ restMs: input.restMs ?? 10, passes: 0, reaped: 0, again: false }),
  initial: 'idle',
  states: {
    idle: {
      on: { SIGCHLD: 'reaping', RECOUNT: 'reaping' },
    },
    reaping: {
      entry: assign({ again: false }),
      invoke: {
        id: 'pass',
        src: 'pass',
        onDone: { target: 'resting', actions: ['record', 'announce'] },
        onError: { target: 'resting', actions: 'recordFailure' },
      },
      on: { SIGCHLD: { actions: 'markAgain' }, RECOUNT: { actions: 'markAgain' } },
    },
    resting: {
      after: { rest: [{ guard: 'again', target: 'reaping' }, { target: 'idle' }] },
      on: { SIGCHLD: { actions: 'markAgain' }, RECOUNT: { actions: 'markAgain' } },
    },
  },
});
