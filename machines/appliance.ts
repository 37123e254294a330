import { assign, enqueueActions, fromCallback, sendTo, setup, stopChild } from 'xstate';
import type { ContainerInfo } from '../shared/wire.ts';
import { applianceLinkMachine } from './applianceLink.ts';
import { connectionMapMachine } from './connectionMap.ts';
import type { GuestCommand, GuestCommandResult, LinkReport } from './sshSession.ts';

/**
 * The appliance's root: it accepts serial-over-TCP connections, runs one link
 * per connection, feeds the connection map, keeps the inventory of
 * containers as their guests report them (what `docker ps` shows), and
 * carries commands (kill, stop) to the link the connection map named.
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
  /** Links whose SSH session is up (between their LINK_UP and LINK_DOWN). */
  linksUp: Record<string, true>;
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

/** Emitted once per GUEST_COMMAND (see `actor.on`). */
export type ApplianceEmitted = { type: 'COMMAND_DONE'; requestId: string; result: GuestCommandResult };

const linkFailure = (message: string): GuestCommandResult => ({ ok: false, failure: { kind: 'link', message } });

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
  actions: {
    startLink: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'CONNECTION_ACCEPTED') return;
      const n = context.links + 1;
      enqueue.assign({ links: n });
      // Each link's nonces start from its own point of the appliance's seed.
      enqueue.spawnChild('link', { id: `link${n}`, input: { linkId: `link${n}`, handle: event.handle, seed: (context.seed + n * 7919) >>> 0 } });
    }),
    recordInfo: assign({
      containers: ({ context, event }) => {
        if (event.type !== 'LINK_INFO') return context.containers;
        const containers = { ...context.containers };
        for (const info of event.containers) {
          containers[info.id] = { info, vm: event.vm, linkId: event.linkId, linkUp: true, linkDetail: `connected on ${event.linkId}` };
        }
        return containers;
      },
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
    linkUp: assign({
      linksUp: ({ context, event }): Record<string, true> => (event.type === 'LINK_UP' ? { ...context.linksUp, [event.linkId]: true } : context.linksUp),
    }),
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
    sendCommand: enqueueActions(({ context, event, enqueue, self }) => {
      if (event.type !== 'GUEST_COMMAND') return;
      const { requestId, linkId, command } = event;
      // A link reports LINK_DOWN before it ends, so an up link has its actor; sending to one that is gone would fail the appliance.
      const link = self.getSnapshot().children[linkId];
      if (!context.linksUp[linkId] || !link) {
        enqueue.emit({ type: 'COMMAND_DONE', requestId, result: linkFailure(`link ${linkId} is not up`) });
        return;
      }
      enqueue.assign({ commands: { ...context.commands, [requestId]: linkId } });
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
  context: ({ input }) => ({ links: 0, containers: {}, linksUp: {}, commands: {}, seed: input.seed }),
  invoke: [
    { id: 'listener', src: 'listener' },
    { id: 'connectionMap', src: 'connectionMap', systemId: 'connectionMap', input: {} },
  ],
  on: {
    LISTENING: { actions: assign({ listening: ({ event }) => event.address }) },
    LISTEN_FAILED: { actions: assign({ listenError: ({ event }) => event.error }) },
    CONNECTION_ACCEPTED: { actions: 'startLink' },
    LINK_UP: { actions: ['linkUp', 'toMap'] },
    LINK_IDS: { actions: 'toMap' },
    LINK_INFO: { actions: 'recordInfo' },
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
