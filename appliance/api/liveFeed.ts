/**
 * What `GET /tether/v1/inspect` streams: the live state of every machine
 * actor of the appliance's actor systems (its root, and each attach's
 * container channel, which runs as a root of its own) and of its guests, as
 * their links report them.
 *
 * Watching is not free (an attach's channel processes an event per output
 * chunk, and so does a guest), so the feed watches its systems and asks its
 * guests to report (`inspect@tether`) only while at least one client
 * reads it, and forgets every state when the last one goes.
 */
import type { AnyActorRef } from 'xstate';
import type { GuestStates } from '../../actors/sshClient.ts';
import { stateKey, watchActorStates } from '../../shared/actorStates.ts';
import type { ActorState } from '../../shared/wire.ts';

/** One message of the feed: an actor's state after a change, or as it was when the client connected. */
export interface LiveState {
  /** `appliance`, or `guest:<vm>` for a guest's actors. */
  system: string;
  /** The actor ids from the system's root down, e.g. `appliance/link3/ssh`, `appliance/attach/2`, `guest:web/link/ssh`. */
  actor: string;
  /** The machine's id: the key of machines/index.ts. */
  machine: string;
  state: ActorState['state'];
  status: ActorState['status'];
  /** The event whose processing led to this state; absent in the states sent on connect. */
  event?: string;
}

export type LiveListener = (state: LiveState) => void;

/** Reports states through `emit` from start until the stop it returns is called; its actors are named `<prefix>/<path>` in `system`. */
interface Source {
  system: string;
  prefix: string;
  start(emit: (state: ActorState) => void): () => void;
}

/** A guest over one link: its reports go to `emit` while the feed has it started. */
interface GuestLink {
  source: Source;
  emit?: (state: ActorState) => void;
}

export class LiveFeed implements GuestStates {
  readonly #listeners = new Set<LiveListener>();
  /** Every source, and its stop while it is started (exactly while anyone listens). */
  readonly #sources = new Map<Source, (() => void) | undefined>();
  /**
   * While anyone listens, the latest state of each live actor, by system and
   * actor, with the source that reported it last: a guest's next link takes
   * over its actors' names, and the end of the previous link must not take
   * them back.
   */
  readonly #latest = new Map<string, { state: LiveState; key: string; source: Source }>();
  readonly #guests = new Map<string, GuestLink>();

  /** Receives every live actor's state now (without events), then each change of a state value or status. */
  subscribe(listener: LiveListener): () => void {
    for (const { state } of this.#latest.values()) listener(withoutEvent(state));
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) for (const source of [...this.#sources.keys()]) this.#start(source);
    return () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return;
      for (const [source, stop] of this.#sources) {
        stop?.();
        this.#sources.set(source, undefined);
      }
      this.#latest.clear();
    };
  }

  /**
   * A local actor system, watched while anyone listens, its actors named
   * `<prefix>/<ids below the root>` in `system`. The returned function ends
   * it: its actors are reported stopped.
   */
  addSystem(system: string, prefix: string, root: AnyActorRef): () => void {
    return this.#add({ system, prefix, start: (emit) => watchActorStates(root, emit) });
  }

  linkUp(linkId: string, vm: string, inspect: (on: boolean) => void): void {
    const system = `guest:${vm}`;
    const guest: GuestLink = {
      source: {
        system,
        prefix: system,
        start: (emit) => {
          guest.emit = emit;
          inspect(true);
          return () => {
            guest.emit = undefined;
            // A link that went down has nobody left to tell.
            if (this.#guests.get(linkId) === guest) inspect(false);
          };
        },
      },
    };
    this.#guests.set(linkId, guest);
    this.#add(guest.source);
  }

  report(linkId: string, states: ActorState[]): void {
    // Unknown or not started: a report that crossed the link with an `off`.
    const emit = this.#guests.get(linkId)?.emit;
    if (emit) for (const state of states) emit(state);
  }

  linkDown(linkId: string): void {
    const guest = this.#guests.get(linkId);
    if (!guest) return;
    this.#guests.delete(linkId);
    this.#remove(guest.source);
  }

  #add(source: Source): () => void {
    this.#sources.set(source, undefined);
    if (this.#listeners.size > 0) this.#start(source);
    return () => this.#remove(source);
  }

  #start(source: Source): void {
    this.#sources.set(source, source.start((state) => this.#publish(source, liveState(source, state))));
  }

  #remove(source: Source): void {
    if (!this.#sources.has(source)) return;
    this.#sources.get(source)?.();
    this.#sources.delete(source);
    for (const { state, source: owner } of [...this.#latest.values()]) {
      if (owner === source) this.#publish(source, { ...withoutEvent(state), status: 'stopped' });
    }
  }

  #publish(source: Source, state: LiveState): void {
    const id = `${state.system} ${state.actor}`;
    const key = stateKey(state);
    const known = this.#latest.get(id);
    if (known?.key === key) {
      known.source = source;
      return;
    }
    // Nothing was said of it: nothing to take back.
    if (!known && state.status === 'stopped') return;
    if (state.status === 'stopped') this.#latest.delete(id);
    else this.#latest.set(id, { state, key, source });
    for (const listener of this.#listeners) listener(state);
  }
}

function liveState({ system, prefix }: Source, state: ActorState): LiveState {
  return {
    system,
    actor: [prefix, ...state.path].join('/'),
    machine: state.machine,
    state: state.state,
    status: state.status,
    ...(state.event === undefined ? {} : { event: state.event }),
  };
}

function withoutEvent({ system, actor, machine, state, status }: LiveState): LiveState {
  return { system, actor, machine, state, status };
}
