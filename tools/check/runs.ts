import { canonical } from './canonical.ts';
import type { SimEvent } from './sim.ts';
import type { LiveSystem, SystemState, Timer } from './runtime.ts';

/**
 * Runs of one actor system, remembered. A step restores the system it
 * touches, delivers to it and persists it again; what comes out is a function
 * of the system's persisted state, how far its timers are from now, what it
 * is delivered, and what the world answers it on the way. The same run
 * recurs in thousands of explored states (the other systems and the line
 * differ), so each is taken once with xstate and then replayed: its result is
 * reused and its effects on the world are made again, in order.
 *
 * Every call a run makes on the world goes through `effect()`, which records
 * it and its answer. A replay makes the recorded calls again; when the world
 * answers one differently (a channel named by a counter the world keeps),
 * the run is taken for real from there on, the calls already made answered
 * as they were, and the new tape is kept beside the old.
 */

/** What a step delivers to a system: the part of LiveSystem a step uses. */
export interface Delivery {
  send(path: string, event: SimEvent): unknown;
  fire(source: string, id: string): unknown;
}

/** A call on the world: the function and its arguments, and what it answered (as a canonical digest). */
interface Call {
  fn: (...args: never[]) => unknown;
  args: unknown[];
  answer: number;
}

interface Tape {
  calls: Call[];
  /** The system after the run, its timers' due times relative to the run's clock. */
  after: SystemState;
}

interface Recording {
  calls: Call[];
  /** Calls already made on the world by a replay that went astray: answered from here, not made again. */
  made: unknown[];
}

export class Runs {
  readonly #tapes = new Map<string, Tape[]>();
  #recording: Recording | undefined;

  /**
   * Calls `fn` on the world for the run in progress, recording it; outside a
   * run, just calls it.
   */
  effect<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): unknown {
    const recording = this.#recording;
    if (!recording) return fn(...args);
    const made = recording.calls.length < recording.made.length;
    const answer = made ? recording.made[recording.calls.length] : fn(...args);
    recording.calls.push({ fn: fn as Call['fn'], args, answer: canonical(answer) });
    return answer;
  }

  /**
   * The system `system` after `deliver` (or, without a state, started from
   * `input`), at time `now`: replayed when this run was taken before,
   * otherwise taken on `live()`.
   */
  run(system: string, state: SystemState | undefined, input: unknown, now: number, deliver: (to: Delivery) => unknown, live: () => LiveSystem): SystemState {
    const deliveries: string[] = [];
    deliver({
      send: (path, event) => deliveries.push(`send ${path} ${canonical(event)}`),
      fire: (source, id) => deliveries.push(`fire ${source} ${id}`),
    });
    const key = `${system}\n${state ? `${canonical(state.snapshot)}|${relative(state.timers, now)}` : `start ${canonical(input)}`}\n${deliveries.join('\n')}`;
    const tapes = this.#tapes.get(key) ?? [];
    const replayed = this.#replay(tapes, now);
    if ('after' in replayed) return replayed.after;
    const outer = this.#recording;
    this.#recording = { calls: [], made: replayed.made };
    try {
      const system = live();
      deliver(system);
      const after = system.persist();
      const calls = this.#recording.calls;
      tapes.push({ calls, after: { snapshot: after.snapshot, timers: after.timers.map((t) => ({ ...t, due: t.due - now })) } });
      this.#tapes.set(key, tapes);
      return after;
    } finally {
      this.#recording = outer;
    }
  }

  /** Makes the calls of the tapes again until one ends (its result) or the world answers as none did (the answers so far). */
  #replay(tapes: Tape[], now: number): { after: SystemState } | { made: unknown[] } {
    const made: unknown[] = [];
    let candidates = tapes;
    for (let i = 0; candidates.length > 0; i++) {
      const ended = candidates.find((t) => t.calls.length === i);
      if (ended) return { after: { snapshot: ended.after.snapshot, timers: ended.after.timers.map((t) => ({ ...t, due: t.due + now })) } };
      const { fn, args } = candidates[0]!.calls[i]!;
      const answer = this.effect(fn, ...(args as never[]));
      made.push(answer);
      const digest = canonical(answer);
      candidates = candidates.filter((t) => t.calls[i]!.answer === digest);
    }
    return { made };
  }
}

const relative = (timers: Timer[], now: number) => timers.map((t) => `${t.source}#${t.id}@${t.due - now}`).join(',');
