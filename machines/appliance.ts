import { assign, enqueueActions, fromCallback, sendTo, setup, stopChild } from 'xstate';
import type { ContainerInfo } from '../shared/wire.ts';
import { applianceLinkMachine } from './applianceLink.ts';
import { connectionMapMachine } from './connectionMap.ts';
import type { LinkReport } from './sshSession.ts';

/**
 * The appliance's root: it accepts serial-over-TCP connections, runs one link
 * per connection, feeds the connection map, and keeps the inventory of
 * containers as their guests report them (what `docker ps` shows).
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
  listening?: string;
  listenError?: string;
}

export type ApplianceEvent =
  | { type: 'LISTENING'; address: string }
  | { type: 'LISTEN_FAILED'; error: string }
  | { type: 'CONNECTION_ACCEPTED'; handle: string; remote: string }
  | LinkReport;

export const applianceMachine = setup({
  types: {
    context: {} as ApplianceContext,
    events: {} as ApplianceEvent,
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
  },
}).createMachine({
  id: 'appliance',
  context: ({ input }) => ({ links: 0, containers: {}, seed: input.seed }),
  invoke: [
    { id: 'listener', src: 'listener' },
    { id: 'connectionMap', src: 'connectionMap', systemId: 'connectionMap', input: {} },
  ],
  on: {
    LISTENING: { actions: assign({ listening: ({ event }) => event.address }) },
    LISTEN_FAILED: { actions: assign({ listenError: ({ event }) => event.error }) },
    CONNECTION_ACCEPTED: { actions: 'startLink' },
    LINK_UP: { actions: 'toMap' },
    LINK_IDS: { actions: 'toMap' },
    LINK_INFO: { actions: 'recordInfo' },
    LINK_DOWN: { actions: ['recordLinkDown', 'toMap'] },
    // A link whose connection ended is finished; drop the actor so the appliance does not grow with every reconnect.
    '*': {
      guard: ({ event }) => event.type.startsWith('xstate.done.actor.link'),
      actions: stopChild(({ event }) => event.type.slice('xstate.done.actor.'.length)),
    },
  },
});
