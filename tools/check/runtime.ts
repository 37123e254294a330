import { createActor, type AnyActorLogic, type AnyActorRef, type EventObject, type InspectionEvent } from 'xstate';
import type { SimEvent } from './sim.ts';

/**
 * One actor system of the composed model (the guest, the appliance, one
 * attach) as plain data, and the way back to live actors: the checker keeps
 * every explored state as persisted snapshots, and to take a step it
 * restores the system the step touches, delivers, and persists it again.
 *
 * Restoring is xstate's own (`createActor(logic, { snapshot })`), so the
 * machines run exactly as in the bundles. What xstate does not restore is its
 * scheduler: pending delayed events live in the system with live actor refs.
 * They are saved here by actor path and scheduled again after a restore; the
 * clock never fires on its own: the checker fires a timer as a step.
 *
 * This module is the checker's only use of xstate internals (`system.scheduler`,
 * `system._snapshot._scheduledEvents`, `system._relay`, `actor._parent`);
 * test/check-runtime.test.ts pins them.
 */

/** A pending delayed event, addressed by actor path. `due` is relative to the world's clock. */
export interface Timer {
  source: string;
  target: string;
  event: EventObject;
  delay: number;
  id: string;
  due: number;
}

export interface SystemState {
  /** The root's persisted snapshot (children included). */
  snapshot: unknown;
  timers: Timer[];
}

interface ScheduledEvent {
  source: AnyActorRef;
  target: AnyActorRef;
  event: EventObject;
  delay: number;
  id: string;
}

interface Internals {
  scheduler: { schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, id: string): void; cancel(source: AnyActorRef, id: string): void };
  _snapshot: { _scheduledEvents: Record<string, ScheduledEvent> };
  _relay(source: AnyActorRef | undefined, target: AnyActorRef, event: EventObject): void;
}

const internals = (actor: AnyActorRef) => actor.system as unknown as Internals;

/** A clock that never fires: timers are the checker's steps. */
const stillClock = { setTimeout: () => 0, clearTimeout: () => {} };

export interface SystemOptions {
  systemId?: string;
  inspect?: (event: InspectionEvent) => void;
}

/** A live system restored from `state` (or started fresh from `input` when `state` is undefined). */
export class LiveSystem {
  readonly root: AnyActorRef;
  /** Timers restored, by source path and id: they keep their due time. */
  readonly #known = new Map<string, Timer>();
  /** Timers scheduled since the restore (a re-entered state schedules the same id anew): due from now. */
  readonly #fresh = new Set<string>();
  #now: number;

  constructor(logic: AnyActorLogic, state: SystemState | undefined, now: number, options: SystemOptions & { input?: unknown }) {
    this.#now = now;
    this.root = createActor(logic, {
      clock: stillClock,
      systemId: options.systemId,
      inspect: options.inspect,
      ...(state ? { snapshot: state.snapshot as never } : { input: options.input }),
    });
    this.root.start();
    for (const timer of state?.timers ?? []) {
      const source = this.find(timer.source);
      const target = this.find(timer.target);
      if (!source || !target) continue;
      internals(this.root).scheduler.schedule(source, target, timer.event, timer.delay, timer.id);
      this.#known.set(key(timer.source, timer.id), timer);
    }
    const scheduler = internals(this.root).scheduler;
    const schedule = scheduler.schedule.bind(scheduler);
    scheduler.schedule = (source, target, event, delay, id) => {
      // xstate names a delayed send without an id at random; the model needs the same name in every run.
      const named = id ?? `anonymous:${event.type}`;
      this.#fresh.add(key(pathOf(source), named));
      schedule(source, target, event, delay, named);
    };
  }

  /** The actor at `path` ("" is the root; "link/ssh/server" a descendant by ids). */
  find(path: string): AnyActorRef | undefined {
    let actor: AnyActorRef | undefined = this.root;
    if (path === '') return actor;
    for (const id of path.split('/')) {
      const children: Record<string, AnyActorRef> | undefined = (actor?.getSnapshot() as { children?: Record<string, AnyActorRef> }).children;
      actor = children?.[id];
      if (!actor) return undefined;
    }
    return actor;
  }

  send(path: string, event: SimEvent): boolean {
    const actor = this.find(path);
    if (!actor) return false;
    actor.send(event);
    return true;
  }

  /** Fires the pending timer of `source` named `id`, as xstate's scheduler would. */
  fire(source: string, id: string): boolean {
    const system = internals(this.root);
    const entry = Object.values(system._snapshot._scheduledEvents).find((e) => pathOf(e.source) === source && e.id === id);
    if (!entry) return false;
    system.scheduler.cancel(entry.source, entry.id);
    system._relay(entry.source, entry.target, entry.event);
    return true;
  }

  persist(): SystemState {
    const timers: Timer[] = [];
    for (const e of Object.values(internals(this.root)._snapshot._scheduledEvents)) {
      const source = pathOf(e.source);
      const known = this.#fresh.has(key(source, e.id)) ? undefined : this.#known.get(key(source, e.id));
      timers.push(known ?? { source, target: pathOf(e.target), event: e.event, delay: e.delay, id: e.id, due: this.#now + e.delay });
    }
    timers.sort((a, b) => (a.source + a.id < b.source + b.id ? -1 : 1));
    return { snapshot: this.root.getPersistedSnapshot(), timers };
  }

  stop(): void {
    this.root.stop();
  }
}

const key = (source: string, id: string) => `${source}#${id}`;

/** An actor's path from its system's root, by ids. */
export function pathOf(actor: AnyActorRef): string {
  const ids: string[] = [];
  for (let a: AnyActorRef | undefined = actor; a?._parent; a = a._parent) ids.unshift(a.id);
  return ids.join('/');
}
