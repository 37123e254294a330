import { assign, enqueueActions, fromCallback, sendTo, setup, stopChild } from 'xstate';
import type { ContainerInfo } from '../shared/wire.ts';
import { applianceLinkMachine } from './applianceLink.ts';
import { withAssigned, mayReport, type Assignments } from './assignments.ts';
import { connectionMapMachine, type ConnectionMapEvent } from './connectionMap.ts';
import type { GuestCommand, GuestCommandResult, LinkReport } from './sshSession.ts';

/**
 * The appliance's root: it accepts serial-over-TCP connections, runs one link
 * per connection, feeds the connection map, keeps the inventory of
 * containers as their guests report them (what `docker ps` shows), and
 * carries commands (kill, stop) to the link the connection map named.
 *
 * A guest is untrusted: the inventory takes from a link only what it reports
 * of the containers assigned to its containerVM (machines/assignments.ts),
 * and a command goes to a link only for such a container. What else a guest
 * reports is refused and announced (GUEST_REFUSED), for the log.
 *
 * Every command gets exactly one COMMAND_DONE: the guest's answer, or a
 * failure when the link is not up or goes down before the answer came (a
 * link that ended drops what it was carrying without a word).
 */

export interface InventoryEntry {
  info: ContainerInfo;
  vm: string;
  linkId: string;
  linkUp: boolean;
  /** Why and when the link went down, for `docker inspect` and errors. */
  linkDetail: string;
}

export interface ApplianceInput {
  /** Seeds the links' handshake nonces (randomness is the assembly's job). */
  seed: number;
}

export interface ApplianceContext {
  links: number;
  seed: number;
  containers: Record<string, InventoryEntry>;
  /** Links whose SSH session is up (between their LINK_UP and LINK_DOWN): linkId → its containerVM. */
  linksUp: Record<string, string>;
  /** Which IDs each containerVM may report (LINK_UP, LINK_ASSIGNED: a launcher's later word, each exec sent). */
  assigned: Assignments;
  /** Commands sent and not yet answered: requestId → the link carrying it. */
  commands: Record<string, string>;
  listening?: string;
  listenError?: string;
}

export type ApplianceEvent =
  | { type: 'LISTENING'; address: string }
  | { type: 'LISTEN_FAILED'; error: string }
  | { type: 'CONNECTION_ACCEPTED'; handle: string; remote: string }
  /** From the API: send `command` to the guest on `linkId` (the link the connection map resolved). */
  | { type: 'GUEST_COMMAND'; requestId: string; linkId: string; command: GuestCommand }
  | LinkReport;

/**
 * COMMAND_DONE: once per GUEST_COMMAND (see `actor.on`). GUEST_REFUSED: a
 * guest reported containers not assigned to its containerVM; they were
 * left out.
 */
export type ApplianceEmitted =
  | { type: 'COMMAND_DONE'; requestId: string; result: GuestCommandResult }
  | { type: 'GUEST_REFUSED'; linkId: string; vm: string; report: 'container-ids' | 'container-info'; containerIds: string[] };

const linkFailure = (message: string): GuestCommandResult => ({ ok: false, failure: { kind: 'link', message } });
/** The `assigned` guard for one ID (a standalone enqueueActions' check is not typed with this setup's guards). */
const assignedTo = (vm: string, id: string) => ({ type: 'assigned', params: { vm, id } }) as never;

export const applianceMachine = setup({
  types: {
    context: {} as ApplianceContext,
    events: {} as ApplianceEvent,
    emitted: {} as ApplianceEmitted,
    input: {} as ApplianceInput,
  },
  actors: {
    /** The serial listener: CONNECTION_ACCEPTED per hypervisor connection. */
    listener: fromCallback(() => {}),
    link: applianceLinkMachine,
    connectionMap: connectionMapMachine,
  },
  guards: {
    /** Whether containerVM `vm` may report container `id`: the one check between a guest's word and the inventory. */
    assigned: ({ context }, { vm, id }: { vm: string; id: string }) => mayReport(context.assigned, vm, id),
  },
  actions: {
    startLink: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CONNECTION_ACCEPTED') return;
      const n = context.links + 1;
      enqueue.assign({ links: n });
      // Each link's nonces start from its own point of the appliance's seed.
      enqueue.spawnChild('link', { id: `link${n}`, input: { linkId: `link${n}`, handle: event.handle, seed: (context.seed + n * 7919) >>> 0 } });
    }),
    recordInfo: enqueueActions(({ context, event, enqueue, check }) => {
      if (event.type !== 'LINK_INFO') return;
      const containers = { ...context.containers };
      const refused: string[] = [];
      for (const info of event.containers) {
        if (!check(assignedTo(event.vm, info.id))) refused.push(info.id);
        else containers[info.id] = { info, vm: event.vm, linkId: event.linkId, linkUp: true, linkDetail: `connected on ${event.linkId}` };
      }
      enqueue.assign({ containers });
      if (refused.length > 0) enqueue.emit({ type: 'GUEST_REFUSED', linkId: event.linkId, vm: event.vm, report: 'container-info', containerIds: refused });
    }),
    /** Containers assigned to a link's containerVM since it connected, here and in the connection map. */
    assign: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'LINK_ASSIGNED') return;
      enqueue.assign({ assigned: withAssigned(context.assigned, event.vm, event.assigned) });
      enqueue.sendTo('connectionMap', { type: 'ASSIGN', vm: event.vm, ids: event.assigned } satisfies ConnectionMapEvent);
    }),
    /** The connection map decides what a link carries; the refusal is told here, where the link's containerVM is known. */
    refuseIds: enqueueActions(({ context, event, enqueue, check }) => {
      if (event.type !== 'LINK_IDS') return;
      const vm = context.linksUp[event.linkId];
      const refused = vm === undefined ? [] : event.ids.filter((id) => !check(assignedTo(vm, id)));
      if (vm !== undefined && refused.length > 0) enqueue.emit({ type: 'GUEST_REFUSED', linkId: event.linkId, vm, report: 'container-ids', containerIds: refused });
    }),
    recordLinkDown: assign({
      containers: ({ context, event }) => {
        if (event.type !== 'LINK_DOWN') return context.containers;
        const containers = { ...context.containers };
        for (const [id, entry] of Object.entries(containers)) {
          if (entry.linkId === event.linkId) containers[id] = { ...entry, linkUp: false, linkDetail: `link ${event.linkId} down since ${event.at}: ${event.reason}` };
        }
        return containers;
      },
    }),
    toMap: sendTo('connectionMap', ({ event }) => event as LinkReport),
    linkUp: assign(({ context, event }) =>
      event.type === 'LINK_UP'
        ? { linksUp: { ...context.linksUp, [event.linkId]: event.vm }, assigned: withAssigned(context.assigned, event.vm, event.assigned) }
        : {},
    ),
    /** The link's session ended: what it carried will not be answered. */
    failCommandsOfLink: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'LINK_DOWN') return;
      const { [event.linkId]: _, ...linksUp } = context.linksUp;
      const commands = { ...context.commands };
      for (const [requestId, linkId] of Object.entries(context.commands)) {
        if (linkId !== event.linkId) continue;
        delete commands[requestId];
        enqueue.emit({ type: 'COMMAND_DONE', requestId, result: linkFailure(`link ${linkId} went down before the guest answered: ${event.reason}`) });
      }
      enqueue.assign({ linksUp, commands });
    }),
    sendCommand: enqueueActions(({ context, event, enqueue, self, check }) => {
      if (event.type !== 'GUEST_COMMAND') return;
      const { requestId, linkId, command } = event;
      // A link reports LINK_DOWN before it ends, so an up link has its actor; sending to one that is gone would fail the appliance.
      const link = self.getSnapshot().children[linkId];
      const vm = context.linksUp[linkId];
      if (vm === undefined || !link) {
        enqueue.emit({ type: 'COMMAND_DONE', requestId, result: linkFailure(`link ${linkId} is not up`) });
        return;
      }
      // Another VM's container is none of this guest's business, whatever it reported.
      if (!check(assignedTo(vm, command.containerId))) {
        const message = `${command.kind} ${command.containerId}: container ${command.containerId} is not assigned to containerVM ${vm} (link ${linkId})`;
        enqueue.emit({ type: 'COMMAND_DONE', requestId, result: { ok: false, failure: { kind: 'refused', message } } });
        return;
      }
      enqueue.assign({ commands: { ...context.commands, [requestId]: linkId } });
      if (command.kind === 'exec') {
        // The exec's session is this VM's from now on: it may report it, and the connection map route to it.
        enqueue.raise({ type: 'LINK_ASSIGNED', linkId, vm, assigned: [command.sessionId] });
      }
      enqueue.sendTo(link, { type: 'GUEST_COMMAND', requestId, command });
    }),
    commandDone: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'LINK_COMMAND_DONE' || context.commands[event.requestId] !== event.linkId) return;
      const { [event.requestId]: _, ...commands } = context.commands;
      enqueue.assign({ commands });
      enqueue.emit({ type: 'COMMAND_DONE', requestId: event.requestId, result: event.result });
    }),
  },
}).createMachine({
  id: 'appliance',
  context: ({ input }) => ({ links: 0, containers: {}, linksUp: {}, assigned: {}, commands: {}, seed: input.seed }),
  invoke: [
    { id: 'listener', src: 'listener' },
    { id: 'connectionMap', src: 'connectionMap', systemId: 'connectionMap', input: {} },
  ],
  on: {
    LISTENING: { actions: assign({ listening: ({ event }) => event.address }) },
    LISTEN_FAILED: { actions: assign({ listenError: ({ event }) => event.error }) },
    CONNECTION_ACCEPTED: { actions: 'startLink' },
    LINK_UP: { actions: ['linkUp', 'toMap'] },
    LINK_IDS: { actions: ['refuseIds', 'toMap'] },
    LINK_ASSIGNED: { actions: 'assign' },
    LINK_INFO: { actions: ['recordInfo', 'toMap'] },
    LINK_DOWN: { actions: ['recordLinkDown', 'failCommandsOfLink', 'toMap'] },
    GUEST_COMMAND: { actions: 'sendCommand' },
    LINK_COMMAND_DONE: { actions: 'commandDone' },
    // A link whose connection ended is finished; drop the actor so the appliance does not grow with every reconnect.
    '*': {
      guard: ({ event }) => event.type.startsWith('xstate.done.actor.link'),
      actions: stopChild(({ event }) => event.type.slice('xstate.done.actor.'.length)),
    },
  },
});
