import type { ActorLogic, ActorScope, AnyActorRef, EventObject, Snapshot } from 'xstate';

/**
 * Simulated effect actors for the model checker. Each one stands where a real
 * actor (serial port, ssh2 server, process, ...) stands in a bundle, given to
 * the same composition through `provide()`, but its state is plain data in
 * its snapshot, so that xstate persists it with the machines around it and
 * restores it in any explored state. (A callback or promise actor would be
 * restarted on restore and lose what it was doing.)
 *
 * A simulation reacts to the events its machine sends and to `sim.*` events
 * from the checker's environment (a byte arriving on the line, a process
 * writing). What it does beyond its own state goes through `io`: events to
 * its parent or to an actor of its system, and posts to the checker's world
 * (bytes onto the line, a message to another actor system).
 */

/**
 * Any event: a simulation reads and writes the events of the machines it
 * stands beside, whose types are those machines' own; it is checked against
 * them by running with them, not by the compiler.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SimEvent = { type: string; [field: string]: any };

export interface SimIO<Post> {
  /** Sends to the parent machine, after this transition (as `sendBack` would). */
  toParent(event: SimEvent): void;
  /** Sends to an actor of this system by systemId, after this transition; dropped when there is none. */
  toSystem(systemId: string, event: SimEvent): void;
  /** Hands something to the world (see tools/check/world.ts); some posts get an answer. */
  post(item: Post): unknown;
}

/** What a simulation's `receive` returns: its next state, or the end of the actor. */
export type SimResult<S> = S | { done: unknown; state: S } | { fail: string; state: S };

export interface SimSpec<S, I, Post> {
  init(input: I): S;
  /** Called once when the actor starts (never again when it is restored). */
  start?(state: S, io: SimIO<Post>): S;
  receive(state: S, event: SimEvent, io: SimIO<Post>): SimResult<S>;
  /** The actor is being stopped by its parent. */
  stop?(state: S, io: SimIO<Post>): void;
}

export type SimSnapshot<S> = Snapshot<unknown> & {
  context: S;
  started: boolean;
};

/** Where a simulation's posts go during one step of the checker. */
export interface PostBox<Post> {
  post(item: Post, from: AnyActorRef): unknown;
}

const START = '@sim.start';

export function simulated<S, I = unknown, Post = unknown>(box: PostBox<Post>, spec: SimSpec<S, I, Post>): ActorLogic<SimSnapshot<S>, EventObject, I> {
  const io = (scope: ActorScope<SimSnapshot<S>, EventObject>): SimIO<Post> => ({
    toParent: (event) => scope.defer(() => scope.self._parent?.send(event)),
    toSystem: (systemId, event) => scope.defer(() => (scope.system.get(systemId) as AnyActorRef | undefined)?.send(event)),
    post: (item) => box.post(item, scope.self),
  });
  const apply = (snapshot: SimSnapshot<S>, result: SimResult<S>): SimSnapshot<S> => {
    if (result !== null && typeof result === 'object' && 'done' in result) return { context: result.state, started: snapshot.started, status: 'done', output: result.done, error: undefined };
    if (result !== null && typeof result === 'object' && 'fail' in result) return { context: result.state, started: snapshot.started, status: 'error', output: undefined, error: new Error(result.fail) };
    return { ...snapshot, context: result as S };
  };
  return {
    config: spec,
    getInitialSnapshot: (_scope, input) => ({ status: 'active', output: undefined, error: undefined, context: spec.init(input), started: false }),
    // The start hook must run once in the actor's life, but xstate starts a
    // restored actor too: the first start sends itself sim.start, which marks it started.
    start: (snapshot, scope) => {
      if (!snapshot.started) scope.self.send({ type: START });
    },
    transition: (snapshot, event, scope) => {
      if (snapshot.status !== 'active') return snapshot;
      if (event.type === START) {
        const state = spec.start ? spec.start(snapshot.context, io(scope)) : snapshot.context;
        return { ...snapshot, context: state, started: true };
      }
      if (event.type === 'xstate.stop') {
        spec.stop?.(snapshot.context, io(scope));
        return { ...snapshot, status: 'stopped' };
      }
      return apply(snapshot, spec.receive(snapshot.context, event, io(scope)));
    },
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (snapshot) => snapshot as SimSnapshot<S>,
  };
}
