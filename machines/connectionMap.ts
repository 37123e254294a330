import { enqueueActions, fromCallback, setup } from 'xstate';
import { withAssigned, mayReport, type Assignments } from './assignments.ts';

/**
 * The appliance's connection map: which live link carries which container.
 *
 * Rules (each one a complaint about the reference implementation):
 * - a lookup of an ID on a live link is answered only after a liveness check
 *   (a fresh `container-ids` round trip), so a cached entry for a dead
 *   connection is never handed out;
 * - concurrent lookups of one ID share one check;
 * - a lookup of an ID whose link is down waits, with a deadline, and is served
 *   by the next link that reports the ID;
 * - an ID maps to at most one live link: the latest link to report it wins;
 * - a link carries only the IDs assigned to its containerVM
 *   (machines/assignments.ts): a guest that reports another VM's container
 *   is never routed to for it;
 * - a lookup of an ID nobody ever reported fails at once, naming the ID and
 *   what the map knows.
 */

export interface LinkEntry {
  vm: string;
  up: boolean;
  ids: string[];
  since: string;
  downReason?: string;
  reconnects: number;
}

interface Request {
  containerId: string;
  timeoutMs: number;
  /** The link being checked for this request, if a liveness check is in flight. */
  checking?: string;
}

export interface ConnectionMapContext {
  links: Record<string, LinkEntry>;
  /** containerId → the live link that carries it. */
  owner: Record<string, string>;
  /** containerId → vm of the link that last reported it (live or not). */
  lastSeen: Record<string, string>;
  requests: Record<string, Request>;
  /** containerId → link whose liveness check is in flight for it. */
  checks: Record<string, string>;
  /** vm → number of links it has had, for "(3 reconnects)" in errors. */
  vmLinks: Record<string, number>;
  /** Which IDs each containerVM may report (LINK_UP, ASSIGN), as the `assigned` guard reads them. */
  assigned: Assignments;
  pingTimeoutMs: number;
}

export type ConnectionMapEvent =
  /** `assigned`: the IDs the trust store gave the link's containerVM when it connected. */
  | { type: 'LINK_UP'; linkId: string; vm: string; assigned: string[]; at: string }
  | { type: 'LINK_IDS'; linkId: string; ids: string[] }
  /** Every container the link's guest knows, running or exited (its `container-info`). */
  | { type: 'LINK_INFO'; linkId: string; containers: Array<{ id: string }> }
  /** Containers assigned to containerVM `vm` since it connected: an exec the appliance started there, a launcher's new sessions. */
  | { type: 'ASSIGN'; vm: string; ids: string[] }
  | { type: 'LINK_DOWN'; linkId: string; reason: string; at: string }
  | { type: 'LOOKUP'; requestId: string; containerId: string; timeoutMs: number }
  | { type: 'CANCEL'; requestId: string }
  | { type: 'PING_REPLY'; linkId: string; containerId: string; ids: string[] }
  | { type: 'PING_FAILED'; linkId: string; containerId: string; reason: string }
  | { type: 'PING_TIMEOUT'; linkId: string; containerId: string }
  | { type: 'REQUEST_EXPIRED'; requestId: string };

export type ConnectionMapEmitted =
  | { type: 'RESOLVED'; requestId: string; containerId: string; linkId: string }
  | { type: 'FAILED'; requestId: string; containerId: string; reason: 'unknown' | 'deadline'; message: string };

/** Commands to the `links` actor, which owns the live SSH connections. */
export type LinksCommand =
  | { type: 'PING'; linkId: string; containerId: string }
  | { type: 'DROP'; linkId: string; reason: string };

export interface ConnectionMapInput {
  pingTimeoutMs?: number;
}

type Effect =
  | { kind: 'emit'; event: ConnectionMapEmitted }
  | { kind: 'links'; command: LinksCommand }
  | { kind: 'expireAfter'; requestId: string; delay: number }
  | { kind: 'cancelExpiry'; requestId: string }
  | { kind: 'pingTimeoutAfter'; linkId: string; containerId: string; delay: number }
  | { kind: 'cancelPingTimeout'; containerId: string };

type Step = { context: ConnectionMapContext; effects: Effect[] };

const expiryId = (requestId: string) => `expire:${requestId}`;
const pingTimerId = (containerId: string) => `ping:${containerId}`;

export const connectionMapMachine = setup({
  types: {
    context: {} as ConnectionMapContext,
    events: {} as ConnectionMapEvent,
    emitted: {} as ConnectionMapEmitted,
    input: {} as ConnectionMapInput,
  },
  actors: {
    /** The live links: answers PING with PING_REPLY / PING_FAILED, performs DROP. */
    links: fromCallback<LinksCommand>(() => {}),
  },
  guards: {
    /** Whether containerVM `vm` may report container `id`: the one check between a guest's word and the routing. */
    assigned: ({ context }, { vm, id }: { vm: string; id: string }) => mayReport(context.assigned, vm, id),
  },
  actions: {
    apply: enqueueActions(({ context, event, enqueue, check }) => {
      // A standalone enqueueActions' check is not typed with this setup's guards.
      const allowed = (vm: string, id: string) => check({ type: 'assigned', params: { vm, id } } as never);
      const { context: next, effects } = reduce(context, event as ConnectionMapEvent, allowed);
      enqueue.assign(() => next);
      for (const effect of effects) {
        switch (effect.kind) {
          case 'emit':
            enqueue.emit(effect.event);
            break;
          case 'links':
            enqueue.sendTo('links', effect.command);
            break;
          case 'expireAfter':
            enqueue.raise({ type: 'REQUEST_EXPIRED', requestId: effect.requestId }, { delay: effect.delay, id: expiryId(effect.requestId) });
            break;
          case 'cancelExpiry':
            enqueue.cancel(expiryId(effect.requestId));
            break;
          case 'pingTimeoutAfter':
            enqueue.raise(
              { type: 'PING_TIMEOUT', linkId: effect.linkId, containerId: effect.containerId },
              { delay: effect.delay, id: pingTimerId(effect.containerId) },
            );
            break;
          case 'cancelPingTimeout':
            enqueue.cancel(pingTimerId(effect.containerId));
            break;
        }
      }
    }),
  },
}).createMachine({
  id: 'connectionMap',
  context: ({ input }) => ({
    links: {},
    owner: {},
    lastSeen: {},
    requests: {},
    checks: {},
    vmLinks: {},
    assigned: {},
    pingTimeoutMs: input?.pingTimeoutMs ?? 5000,
  }),
  invoke: { id: 'links', src: 'links' },
  initial: 'serving',
  states: {
    serving: {
      on: {
        LINK_UP: { actions: 'apply' },
        LINK_IDS: { actions: 'apply' },
        LINK_INFO: { actions: 'apply' },
        ASSIGN: { actions: 'apply' },
        LINK_DOWN: { actions: 'apply' },
        LOOKUP: { actions: 'apply' },
        CANCEL: { actions: 'apply' },
        PING_REPLY: { actions: 'apply' },
        PING_FAILED: { actions: 'apply' },
        PING_TIMEOUT: { actions: 'apply' },
        REQUEST_EXPIRED: { actions: 'apply' },
      },
    },
  },
});

/** Whether containerVM `vm` may report container `id`. */
type Check = (vm: string, id: string) => boolean;

/**
 * The whole decision table, pure: context and event in, context and effects
 * out. `allowed` is the machine's `assigned` guard over the context's
 * assignments, passed in so that a mutant of the model checker can take it away.
 */
export function reduce(context: ConnectionMapContext, event: ConnectionMapEvent, allowed: Check): Step {
  const step: Step = { context: copy(context), effects: [] };
  switch (event.type) {
    case 'LINK_UP': {
      const c = step.context;
      // Only the newest link of a VM explains anything about it: forget older ones that are down.
      for (const [id, link] of Object.entries(c.links)) if (link.vm === event.vm && !link.up) delete c.links[id];
      c.vmLinks[event.vm] = (c.vmLinks[event.vm] ?? 0) + 1;
      c.links[event.linkId] = { vm: event.vm, up: true, ids: [], since: event.at, reconnects: c.vmLinks[event.vm] - 1 };
      c.assigned = withAssigned(c.assigned, event.vm, event.assigned);
      return step;
    }
    case 'ASSIGN':
      step.context.assigned = withAssigned(step.context.assigned, event.vm, event.ids);
      return step;
    case 'LINK_IDS':
      return reportIds(step, event.linkId, event.ids, allowed);
    case 'LINK_INFO':
      return reportKnown(step, event.linkId, event.containers.map((info) => info.id), allowed);
    case 'LINK_DOWN':
      return linkDown(step, event.linkId, event.reason, event.at);
    case 'LOOKUP':
      return lookup(step, event);
    case 'CANCEL':
      if (step.context.requests[event.requestId]) finish(step, event.requestId);
      return step;
    case 'PING_REPLY': {
      if (step.context.checks[event.containerId] !== event.linkId) return step;
      endCheck(step, event.containerId);
      // The answer proves the link alive, whether or not the container still
      // runs: the guest itself answers an attach to an exited one.
      return reportIds(step, event.linkId, event.ids, allowed);
    }
    case 'PING_FAILED':
    case 'PING_TIMEOUT': {
      if (step.context.checks[event.containerId] !== event.linkId) return step;
      const reason = event.type === 'PING_FAILED' ? `liveness check failed: ${event.reason}` : `liveness check got no answer in ${step.context.pingTimeoutMs} ms`;
      step.effects.push({ kind: 'links', command: { type: 'DROP', linkId: event.linkId, reason } });
      // The requests keep waiting: the guest reconnects and the next link serves them.
      return linkDown(step, event.linkId, reason);
    }
    case 'REQUEST_EXPIRED': {
      const request = step.context.requests[event.requestId];
      if (!request) return step;
      finish(step, event.requestId, {
        type: 'FAILED',
        requestId: event.requestId,
        containerId: request.containerId,
        reason: 'deadline',
        message: `waited ${request.timeoutMs} ms for a connection carrying container ${request.containerId}: ${describe(step.context, request.containerId)}`,
      });
      return step;
    }
  }
}

function lookup(step: Step, event: Extract<ConnectionMapEvent, { type: 'LOOKUP' }>): Step {
  const c = step.context;
  const { requestId, containerId, timeoutMs } = event;
  const linkId = carrier(c, containerId);
  if (!linkId && !c.lastSeen[containerId]) {
    step.effects.push({
      kind: 'emit',
      event: { type: 'FAILED', requestId, containerId, reason: 'unknown', message: `no containerVM has reported container ${containerId} (${summary(c)})` },
    });
    return step;
  }
  c.requests[requestId] = { containerId, timeoutMs };
  step.effects.push({ kind: 'expireAfter', requestId, delay: timeoutMs });
  if (linkId) check(step, requestId, linkId);
  return step;
}

/** Joins the liveness check in flight for the request's ID, or starts one. */
function check(step: Step, requestId: string, linkId: string): void {
  const c = step.context;
  const request = c.requests[requestId]!;
  request.checking = linkId;
  if (c.checks[request.containerId] === linkId) return;
  c.checks[request.containerId] = linkId;
  step.effects.push({ kind: 'links', command: { type: 'PING', linkId, containerId: request.containerId } });
  step.effects.push({ kind: 'pingTimeoutAfter', linkId, containerId: request.containerId, delay: c.pingTimeoutMs });
}

function endCheck(step: Step, containerId: string): void {
  delete step.context.checks[containerId];
  step.effects.push({ kind: 'cancelPingTimeout', containerId });
}

/** What a link reports it carries now: of it, the IDs its containerVM may report. */
function reportIds(step: Step, linkId: string, reported: string[], allowed: Check): Step {
  const c = step.context;
  const link = c.links[linkId];
  if (!link || !link.up) return step;
  const ids = reported.filter((id) => allowed(link.vm, id));
  for (const id of link.ids) if (!ids.includes(id) && c.owner[id] === linkId) delete c.owner[id];
  link.ids = [...ids];
  for (const id of ids) {
    const previous = c.owner[id];
    if (previous && previous !== linkId) {
      // The newest link wins: the VM reconnected before the old connection's death was noticed.
      const old = c.links[previous];
      if (old) old.ids = old.ids.filter((x) => x !== id);
    }
    c.owner[id] = linkId;
    c.lastSeen[id] = link.vm;
  }
  return serveWaiters(step, linkId);
}

/**
 * What a link's guest knows, exited containers too: one that exited before
 * the link came up is never among its running IDs, and its guest still
 * answers for it. A container another live link reports running stays that link's.
 */
function reportKnown(step: Step, linkId: string, known: string[], allowed: Check): Step {
  const c = step.context;
  const link = c.links[linkId];
  if (!link || !link.up) return step;
  for (const id of known) if (allowed(link.vm, id) && !c.owner[id]) c.lastSeen[id] = link.vm;
  return serveWaiters(step, linkId);
}

/**
 * A fresh report is as good as a liveness check: serve everyone whose
 * container this link now carries, exited ones included.
 */
function serveWaiters(step: Step, linkId: string): Step {
  const c = step.context;
  for (const [requestId, request] of Object.entries(c.requests)) {
    if (carrier(c, request.containerId) !== linkId) continue;
    if (c.checks[request.containerId]) endCheck(step, request.containerId);
    finish(step, requestId, { type: 'RESOLVED', requestId, containerId: request.containerId, linkId });
  }
  return step;
}

/**
 * The live link that carries a container: the one that reports it, or else
 * the newest live link of the containerVM that last reported it (a container
 * that has exited is no longer reported, but its guest still answers for it).
 */
export function carrier(c: ConnectionMapContext, containerId: string): string | undefined {
  const owner = c.owner[containerId];
  if (owner) return owner;
  const vm = c.lastSeen[containerId];
  if (!vm) return undefined;
  return Object.entries(c.links)
    .filter(([, link]) => link.up && link.vm === vm)
    .map(([id]) => id)
    .pop();
}

/** `at`: when the link's end was seen, if an actor saw it (a failed check has no clock). */
function linkDown(step: Step, linkId: string, reason: string, at?: string): Step {
  const c = step.context;
  const link = c.links[linkId];
  if (!link || !link.up) return step;
  link.up = false;
  link.downReason = at ? `${reason} (since ${at})` : reason;
  for (const id of link.ids) if (c.owner[id] === linkId) delete c.owner[id];
  for (const [containerId, checking] of Object.entries(c.checks)) if (checking === linkId) endCheck(step, containerId);
  for (const request of Object.values(c.requests)) if (request.checking === linkId) delete request.checking;
  return step;
}

function finish(step: Step, requestId: string, event?: ConnectionMapEmitted): void {
  delete step.context.requests[requestId];
  step.effects.push({ kind: 'cancelExpiry', requestId });
  if (event) step.effects.push({ kind: 'emit', event });
}

/** What the map knows about the link of a container, for error messages. */
export function describe(c: ConnectionMapContext, containerId: string): string {
  const linkId = carrier(c, containerId);
  if (linkId) return `it is on link ${linkId} of containerVM ${c.links[linkId]!.vm}, up since ${c.links[linkId]!.since}`;
  const vm = c.lastSeen[containerId];
  if (!vm) return `no containerVM has reported it yet (${summary(c)})`;
  const last = Object.entries(c.links).filter(([, l]) => l.vm === vm).pop();
  const reconnects = (c.vmLinks[vm] ?? 1) - 1;
  const down = last && !last[1].up ? `link ${last[0]} down: ${last[1].downReason}` : 'no live link';
  return `containerVM ${vm} last reported it; ${down}; ${reconnects} reconnect${reconnects === 1 ? '' : 's'} so far`;
}

function summary(c: ConnectionMapContext): string {
  const links = Object.values(c.links);
  const up = links.filter((l) => l.up).length;
  return `${up} link${up === 1 ? '' : 's'} up, ${links.length - up} down`;
}

/** Context is plain data; copy the parts reduce() mutates so snapshots stay immutable. */
function copy(c: ConnectionMapContext): ConnectionMapContext {
  const links: Record<string, LinkEntry> = {};
  for (const [id, link] of Object.entries(c.links)) links[id] = { ...link, ids: [...link.ids] };
  const requests: Record<string, Request> = {};
  for (const [id, request] of Object.entries(c.requests)) requests[id] = { ...request };
  return {
    links,
    owner: { ...c.owner },
    lastSeen: { ...c.lastSeen },
    requests,
    checks: { ...c.checks },
    vmLinks: { ...c.vmLinks },
    // Never changed in place: each change makes a new table.
    assigned: c.assigned,
    pingTimeoutMs: c.pingTimeoutMs,
  };
}
