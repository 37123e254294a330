/**
 * `GET /tether/v1/inspect`: the live state of every machine actor of the
 * appliance, as Server-Sent Events, for `tether viz --serve`. On connect it
 * sends each live machine actor's current state, then every change xstate's
 * inspection API reports. Each message names its actor system, so the
 * guests' actors can join the same feed later.
 */
import type { Duplex } from 'node:stream';
import { type AnyActorRef, type AnyStateMachine, type InspectionEvent, type Snapshot, StateMachine, type StateValue } from 'xstate';
import type { Route } from './router.ts';

/** One SSE message: an actor's state after a change, or as it was when the client connected. */
export interface LiveState {
  /** `appliance`, or `guest:<vm>` for a guest's actors. */
  system: string;
  /** The actor ids from the system's root down, e.g. `appliance/link3/ssh`. */
  actor: string;
  /** The machine's id: the key of machines/index.ts. */
  machine: string;
  state: StateValue;
  status: 'active' | 'done' | 'stopped';
  /** The event whose processing led to this state; absent in the state sent on connect. */
  event?: string;
}

/** An actor system the route inspects, and the name the feed gives it. */
export interface InspectedSystem {
  name: string;
  root: AnyActorRef;
}

export const INSPECT_PATH = '/tether/v1/inspect';
export const EVENT_STREAM = 'text/event-stream';

/** A client that lets this much pile up unread is cut off rather than held in memory. */
const MAX_BUFFERED = 1 << 20;

export function inspectRoute(inspected: InspectedSystem): Route {
  return {
    method: 'GET',
    path: INSPECT_PATH,
    handler: () => ({ kind: 'hijack', contentType: EVENT_STREAM, take: (socket) => stream(inspected, socket) }),
  };
}

function stream(inspected: InspectedSystem, socket: Duplex): void {
  // Actors reported, and those reported stopped: nothing more is sent of those.
  const live = new Set<MachineActor>();
  const ended = new WeakSet<MachineActor>();
  const send = (ref: MachineActor, state: LiveState) => {
    if (socket.destroyed || ended.has(ref)) return;
    if (socket.writableLength > MAX_BUFFERED) {
      socket.destroy();
      return;
    }
    socket.write(`data: ${JSON.stringify(state)}\n\n`);
    if (state.status !== 'stopped') return void live.add(ref);
    live.delete(ref);
    ended.add(ref);
  };
  const report = (ref: MachineActor, snapshot: Snapshot<unknown>, event?: string) => {
    send(ref, liveState(inspected, ref, snapshot, event));
    // xstate reports nothing when a parent drops a finished child (a link
    // that closed), and the drop may come before the child's last snapshot
    // is reported: the child is reported stopped, as it is now, either way.
    for (const other of live) {
      if (dropped(other)) send(other, { ...liveState(inspected, other, other.getSnapshot() as Snapshot<unknown>, event), status: 'stopped' });
    }
  };
  for (const ref of machineActors(inspected.root)) report(ref, ref.getSnapshot() as Snapshot<unknown>);
  const subscription = inspected.root.system.inspect((inspection: InspectionEvent) => {
    if (inspection.type === '@xstate.snapshot' && isMachineActor(inspection.actorRef)) report(inspection.actorRef, inspection.snapshot, inspection.event.type);
  });
  socket.once('close', () => subscription.unsubscribe());
  if (socket.destroyed) subscription.unsubscribe();
}

function dropped(ref: MachineActor): boolean {
  const parent = ref._parent;
  return parent !== undefined && (parent.getSnapshot() as { children?: Record<string, unknown> }).children?.[ref.id] !== ref;
}

/** The root and its running descendants that are machines; only a machine has children. */
function machineActors(ref: AnyActorRef): MachineActor[] {
  if (!isMachineActor(ref)) return [];
  const { children, status } = ref.getSnapshot() as { children: Record<string, AnyActorRef>; status: string };
  if (status === 'stopped') return [];
  return [ref, ...Object.values(children).flatMap(machineActors)];
}

type MachineActor = AnyActorRef & { logic: AnyStateMachine };

function isMachineActor(ref: object): ref is MachineActor {
  return (ref as { logic?: unknown }).logic instanceof StateMachine;
}

function liveState(inspected: InspectedSystem, ref: MachineActor, snapshot: Snapshot<unknown>, event?: string): LiveState {
  const ids: string[] = [];
  for (let r: AnyActorRef | undefined = ref; r?._parent; r = r._parent) ids.unshift(r.id);
  return {
    system: inspected.name,
    // The root's id is xstate's session id, which says nothing; the system's name stands for it.
    actor: [inspected.name, ...ids].join('/'),
    machine: ref.logic.id,
    state: (snapshot as { value?: StateValue }).value ?? {},
    status: snapshot.status === 'active' || snapshot.status === 'done' ? snapshot.status : 'stopped',
    ...(event === undefined ? {} : { event }),
  };
}
