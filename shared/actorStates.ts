/**
 * The states of an actor system's machine actors, read off xstate's
 * inspection API: what the appliance's inspect feed shows of its own actor
 * systems, and what a guest reports over the link when the appliance asks.
 *
 * Watching costs a little on every event the system processes (the guest's
 * processes one per output chunk), so a watcher exists only while someone
 * reads what it reports; with none attached, xstate's inspection is a size
 * check.
 */
import { type AnyActorRef, type AnyStateMachine, type InspectionEvent, type Snapshot, StateMachine, type StateValue } from 'xstate';
import type { ActorState } from './wire.ts';

/** A state's identity for "did it change": the value and the status, not the context or the event. */
export function stateKey(state: Pick<ActorState, 'state' | 'status'>): string {
  return `${state.status} ${JSON.stringify(state.state)}`;
}

type MachineActor = AnyActorRef & { logic: AnyStateMachine };

function isMachineActor(ref: object): ref is MachineActor {
  return (ref as { logic?: unknown }).logic instanceof StateMachine;
}

type Children = Record<string, AnyActorRef>;
const childrenOf = (ref: AnyActorRef): Children | undefined => (ref.getSnapshot() as { children?: Children }).children;

/** The root and its running descendants that are machines; only a machine has children. */
function machineActors(ref: AnyActorRef): MachineActor[] {
  if (!isMachineActor(ref)) return [];
  const { children, status } = ref.getSnapshot() as { children: Children; status: string };
  if (status === 'stopped') return [];
  return [ref, ...Object.values(children).flatMap(machineActors)];
}

/** xstate says nothing when a parent drops a finished child (a link that closed): it is gone from the parent's children. */
function dropped(ref: AnyActorRef): boolean {
  const parent = ref._parent;
  return parent !== undefined && childrenOf(parent)?.[ref.id] !== ref;
}

function actorState(root: AnyActorRef, ref: MachineActor, snapshot: Snapshot<unknown>, event?: string): ActorState {
  const path: string[] = [];
  // The root's id is xstate's session id, which says nothing: paths start below it.
  for (let r: AnyActorRef | undefined = ref; r && r !== root; r = r._parent) path.unshift(r.id);
  return {
    path,
    machine: ref.logic.id,
    state: (snapshot as { value?: StateValue }).value ?? {},
    status: snapshot.status === 'active' || snapshot.status === 'done' ? snapshot.status : 'stopped',
    ...(event === undefined ? {} : { event }),
  };
}

/**
 * Reports the state of every live machine actor under `root` (the root
 * included) at once, then every state they process into, until the returned
 * function is called. An actor its parent drops is reported `stopped` once,
 * and nothing after. `report` runs inside the actors' processing: it must
 * not throw.
 */
export function watchActorStates(root: AnyActorRef, report: (state: ActorState) => void): () => void {
  // Live actors by parent, and the parent's children when last looked at:
  // children are replaced, never changed in place, so an unchanged object
  // means no child was dropped, and most events cost no scan.
  const live = new Map<AnyActorRef | undefined, Set<MachineActor>>();
  const seenChildren = new WeakMap<AnyActorRef, Children | undefined>();
  const ended = new WeakSet<MachineActor>();

  const send = (ref: MachineActor, state: ActorState) => {
    if (ended.has(ref)) return;
    report(state);
    const siblings = live.get(ref._parent) ?? new Set();
    if (state.status !== 'stopped') {
      live.set(ref._parent, siblings.add(ref));
      return;
    }
    siblings.delete(ref);
    ended.add(ref);
  };
  const stopped = (ref: MachineActor, event?: string) =>
    send(ref, { ...actorState(root, ref, ref.getSnapshot() as Snapshot<unknown>, event), status: 'stopped' });
  const changed = (ref: MachineActor, snapshot: Snapshot<unknown>, event?: string) => {
    if (dropped(ref)) stopped(ref, event);
    else send(ref, actorState(root, ref, snapshot, event));
    const children = childrenOf(ref);
    if (seenChildren.get(ref) === children) return;
    seenChildren.set(ref, children);
    for (const child of live.get(ref) ?? []) {
      if (dropped(child)) stopped(child, event);
    }
  };

  for (const ref of machineActors(root)) changed(ref, ref.getSnapshot() as Snapshot<unknown>);
  const subscription = root.system.inspect((inspection: InspectionEvent) => {
    if (inspection.type === '@xstate.snapshot' && isMachineActor(inspection.actorRef)) {
      changed(inspection.actorRef, inspection.snapshot, inspection.event.type);
    }
  });
  return () => subscription.unsubscribe();
}
