/**
 * What the guest tells the appliance of its actors while the appliance
 * inspects it (`inspect@tether`, docs/PROTOCOL.md): the latest state of each
 * machine actor whose state value or status changed, at most one report per
 * interval.
 *
 * The guest machine processes an event per output chunk, and each one is a
 * new snapshot with the same state value: those are dropped here by a string
 * compare, so a busy session costs the link nothing and the guest little.
 */
import type { AnyActorRef } from 'xstate';
import { stateKey, watchActorStates } from '../shared/actorStates.ts';
import type { ActorState } from '../shared/wire.ts';

/** Often enough to follow an attach by eye, seldom enough to cost nothing next to the output. */
const REPORT_INTERVAL_MS = 50;

/**
 * Watches `root`'s actor system and hands `push` the changed states, first
 * all of them; stops when the returned function is called. A path that
 * changed twice within an interval is reported once, as it is now; one that
 * changed back to what was last reported, or came and went between two
 * reports, is not reported.
 */
export function reportActorStates(root: AnyActorRef, push: (states: ActorState[]) => void, intervalMs = REPORT_INTERVAL_MS): () => void {
  // By path, not by actor: a path's next actor (the link's next SSH session)
  // replaces its predecessor, so a report never says "stopped" after "active" for one path.
  const reported = new Map<string, string>();
  const pending = new Map<string, ActorState>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    timer = undefined;
    if (pending.size === 0) return;
    const states = [...pending.values()];
    pending.clear();
    for (const state of states) {
      const at = pathKey(state);
      if (state.status === 'stopped') reported.delete(at);
      else reported.set(at, stateKey(state));
    }
    push(states);
  };

  const unwatch = watchActorStates(root, (state) => {
    const at = pathKey(state);
    const last = reported.get(at);
    // Back to what the appliance knows, or gone before it knew: nothing to tell.
    if (last === stateKey(state) || (last === undefined && state.status === 'stopped')) {
      pending.delete(at);
      return;
    }
    pending.set(at, state);
    timer ??= setTimeout(flush, intervalMs);
  });
  return () => {
    unwatch();
    clearTimeout(timer);
  };
}

/** Actor ids cannot hold a NUL, so this cannot confuse two paths. */
const pathKey = (state: ActorState) => state.path.join('\0');
