/**
 * Mutants: each breaks one real machine in one way (through provide() or a
 * small change of its config), the kind of one-line mistake a tired
 * developer makes, together with a scenario in which the real machines
 * hold and the property the mutant must break there. A checker that never
 * fails is not a checker: `tether check --mutants` and
 * test/check-mutants.test.ts make sure each is caught.
 */
import { assign, createMachine, enqueueActions, type AnyActorRef, type AnyStateMachine } from 'xstate';
import type { ConnectionMapContext, ConnectionMapEmitted, ConnectionMapEvent } from '../../machines/connectionMap.ts';
import { decideAttach, REPLAY_PIECE_BYTES, replayNext, type GuestContext, type OutputLogCommand, type SshServerCommand } from '../../machines/guest.ts';
import type { Overrides } from './model.ts';
import { scenarios, type Scenario } from './scenario.ts';

export interface Mutant {
  /** What `tether check --mutant` takes. */
  id: string;
  /** What it breaks, in words. */
  name: string;
  /** The property it must break. */
  breaks: string;
  scenario: Scenario;
  overrides: Overrides;
}

const perfect = { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 };

function scenario(name: string, changes: Partial<Omit<Scenario, 'faults'>> & { faults?: Partial<Scenario['faults']> }): Scenario {
  return { ...scenarios.attach!, name, description: name, ...changes, faults: { ...perfect, ...changes.faults } };
}

/** The machine of a composed logic's actor slot, to mutate. */
const slot = (logic: AnyStateMachine, name: string) => logic.implementations.actors[name] as AnyStateMachine;
/** A machine's own action, to run inside a mutant's (enqueue takes an action object; its typing wants the machine's names). */
const original = (logic: AnyStateMachine, name: string) => logic.implementations.actions[name] as never;

/** One reader whose window fills twice: the smallest space where falling behind and catching up happen. */
const stalled = scenario('one-stalled-reader', { sessions: { c1: { chunks: 3, exitCode: 3, runBlock: true } }, attaches: [{ containerId: 'c1', logs: true }], faults: { stalls: 2 } });

/** An impostor guest reporting c1, the other containerVM's container, as its own; no attach (the CI's impostor scenario has one). */
const impostor = scenario('impostor-reports', { sessions: { c1: { chunks: 1, exitCode: 3, runBlock: true } }, impostor: ['imp', 'c1'], attaches: [] });

/** A primary that exits at once beside a session that never exits and ignores its stop signal, attached live. */
const stopped = scenario('stopped-beside-primary', {
  sessions: { c1: { chunks: 0, exitCode: 0 }, c2: { chunks: 0, exitCode: 0, exits: false } },
  attaches: [{ containerId: 'c2', logs: false }],
});

/** The appliance with its connection map's one action, `apply`, wrapped: `mutate` gets the original to run or not. */
const mapWith = (appliance: AnyStateMachine, mutate: (apply: never) => unknown) => {
  const map = slot(appliance, 'connectionMap');
  return appliance.provide({ actors: { connectionMap: map.provide({ actions: { apply: mutate(original(map, 'apply')) as never } }) as never } });
};

/** The live links a connection map knows, oldest first. */
const upLinks = (context: ConnectionMapContext) => Object.entries(context.links).filter(([, link]) => link.up).map(([id]) => id);

/** Two containerVMs, a container on each, an attach to the second's. */
const twoVms = scenario('two-vms-one-attach', {
  sessions: { c1: { chunks: 0, exitCode: 0, runBlock: true } },
  second: { c2: { chunks: 1, exitCode: 5 } },
  attaches: [{ containerId: 'c2', logs: true }],
});

/** A guest's link drops once under an attach to a container that keeps running. */
const dropUnderAttach = scenario('drop-under-attach', { sessions: { c1: { chunks: 1, exitCode: 0, exits: false } }, attaches: [{ containerId: 'c1', logs: true }], faults: { drops: 1 } });

/** The guest's process session machine, with `actions` of its own provided. */
const sessionWith = (guest: AnyStateMachine, actions: Record<string, unknown>) => guest.provide({ actions: {}, actors: { session: slot(guest, 'session').provide({ actions: actions as never }) as never } });

export const mutants: Mutant[] = [
  {
    id: 'map-trusts-reports',
    name: 'a connection map without its check that a containerVM reports only the IDs assigned to it',
    breaks: 'served-by-holder',
    scenario: impostor,
    overrides: {
      // The check is the map's `assigned` guard: always true, it is gone.
      appliance: (appliance) => appliance.provide({ actors: { connectionMap: slot(appliance, 'connectionMap').provide({ guards: { assigned: () => true } }) as never } }),
    },
  },
  {
    id: 'inventory-trusts-reports',
    name: 'an appliance inventory without its check that a containerVM reports only the IDs assigned to it',
    breaks: 'served-by-holder',
    scenario: impostor,
    overrides: { appliance: (appliance) => appliance.provide({ guards: { assigned: () => true } }) },
  },
  {
    id: 'run-block-ignored',
    name: 'a guest that launches a run-block session without waiting for unblock',
    breaks: 'run-block',
    scenario: scenario('run-block', {}),
    overrides: {
      guest: (guest) => guest.provide({ actors: { session: slot(guest, 'session').provide({ guards: { runBlock: () => false } }) as never } }),
    },
  },
  {
    id: 'forgetful-map',
    name: 'a connection map that forgets its waiters when a link comes up',
    breaks: 'link-found',
    scenario: scenario('forgetful-map', { sessions: { c1: { chunks: 1, exitCode: 0, runBlock: true } }, faults: { drops: 1 } }),
    overrides: {
      appliance: (appliance) =>
        mapWith(appliance, (apply) =>
          enqueueActions(({ event, enqueue }) => {
            enqueue(apply);
            if (event.type === 'LINK_UP') enqueue.assign({ requests: {} });
          }),
        ),
    },
  },
  {
    id: 'no-rehandshake',
    name: 'a serial link that stays put when its SSH session ends (no new handshake)',
    // The appliance's new handshake is never answered.
    breaks: 'no-deadlock',
    scenario: scenario('no-rehandshake', { sessions: { c1: { chunks: 1, exitCode: 0, runBlock: true } }, faults: { garbage: 1 } }),
    overrides: {
      guest: (guest) => {
        const link = slot(guest, 'link');
        type Config = { states: { line: { states: { serving: { on: object } } & object } & object } & object };
        const config = link.config as Config;
        const { line } = config.states;
        const serving = { ...line.states.serving, on: { ...line.states.serving.on, SSH_CLOSED: { actions: [] } } };
        const mutated = { ...config, states: { ...config.states, line: { ...line, states: { ...line.states, serving } } } };
        return guest.provide({ actors: { link: createMachine(mutated as never, link.implementations as never) as never } });
      },
    },
  },
  {
    id: 'exit-before-replay',
    name: 'a guest that sends an exited session’s status before replaying its log',
    breaks: 'output-after-exit',
    scenario: scenario('exit-before-replay', { sessions: { c1: { chunks: 1, exitCode: 4 } } }),
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            attachOpen: enqueueActions(({ context, event, enqueue, system }) => {
              if (event.type !== 'ATTACH_OPEN') return;
              const server = system.get('sshServer') as AnyActorRef;
              const decision = decideAttach(context as GuestContext, event.containerId, event.offset);
              const view = (context as GuestContext).sessions[event.containerId];
              if (!decision.accept || view?.state !== 'exited') return void enqueue(original(guest, 'attachOpen'));
              const command = (c: SshServerCommand) => c as SshServerCommand & { type: string };
              enqueue.sendTo(server, command({ type: 'ATTACH_ACCEPT', channelId: event.channelId, offset: decision.from }));
              enqueue.sendTo(server, command({ type: 'CHANNEL_EXIT', channelId: event.channelId, exitCode: view.exitCode ?? 0 }));
              enqueue.sendTo('outputLog', { type: 'REPLAY', sessionId: event.containerId, channelId: event.channelId, from: decision.from, limit: REPLAY_PIECE_BYTES } satisfies OutputLogCommand);
            }),
          },
        }),
    },
  },
  {
    id: 'crossed-channels',
    name: 'a guest that fans every session’s output out to every channel',
    breaks: 'routing',
    // c1 waits for its attach; c2 writes whenever it likes.
    scenario: scenario('crossed-channels', {
      sessions: { c1: { chunks: 0, exitCode: 0, runBlock: true }, c2: { chunks: 1, exitCode: 0 } },
      attaches: [{ containerId: 'c1', logs: false }],
    }),
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            sessionOutput: enqueueActions(({ context, event, enqueue, system }) => {
              enqueue(original(guest, 'sessionOutput'));
              if (event.type !== 'SESSION_OUTPUT') return;
              const server = system.get('sshServer') as AnyActorRef | undefined;
              for (const [channelId, channel] of Object.entries((context as GuestContext).channels)) {
                if (server && channel.sessionId !== event.sessionId) enqueue.sendTo(server, { type: 'CHANNEL_OUTPUT', channelId, stream: event.stream, data: event.data });
              }
            }),
          },
        }),
    },
  },
  {
    id: 'forgetful-window',
    name: 'a guest that forgets what a full channel missed once its window opens',
    breaks: 'output-order',
    scenario: stalled,
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            flowControl: enqueueActions(({ context, event, enqueue }) => {
              if (event.type !== 'CHANNEL_READY') return void enqueue(original(guest, 'flowControl'));
              const channel = (context as GuestContext).channels[event.channelId];
              if (!channel || channel.replaying) return;
              const { behind: _, ...live } = channel;
              enqueue.assign({ channels: { ...(context as GuestContext).channels, [event.channelId]: { ...live, blocked: false } } });
            }),
          },
        }),
    },
  },
  {
    id: 'exit-while-behind',
    name: 'a guest that sends the exit status to a channel still catching up',
    breaks: 'exit-status',
    scenario: stalled,
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            sessionChanged: enqueueActions(({ context, event, enqueue, system }) => {
              enqueue(original(guest, 'sessionChanged'));
              if (event.type !== 'SESSION_CHANGED' || event.view.state !== 'exited') return;
              const server = system.get('sshServer') as AnyActorRef | undefined;
              for (const [channelId, channel] of Object.entries((context as GuestContext).channels)) {
                if (server && channel.behind !== undefined) enqueue.sendTo(server, { type: 'CHANNEL_EXIT', channelId, exitCode: event.view.exitCode ?? 0 });
              }
            }),
          },
        }),
    },
  },
  {
    id: 'forgets-queued-stdin',
    name: 'a container channel that forgets the stdin typed while it reconnected',
    breaks: 'stdin-delivered',
    scenario: scenario('typed-while-reconnecting', {
      sessions: { c1: { chunks: 0, exitCode: 0, runBlock: true, readsStdin: true } },
      attaches: [{ containerId: 'c1', logs: false, stdin: 2, closeStdin: true }],
      faults: { drops: 1 },
    }),
    overrides: {
      attach: (attach) => attach.provide({
        actions: {
          channelOpened: enqueueActions(({ enqueue }) => {
            enqueue.assign({ pendingStdin: [] });
            enqueue(original(attach, 'channelOpened'));
          }),
        },
      }),
    },
  },
  {
    id: 'live-from-log-start',
    name: 'a guest that names the log\'s end to a live attach but feeds it from the log\'s start',
    breaks: 'opened-offset',
    // c2 writes before the live attach to it opens.
    scenario: scenario('late-live-attach', {
      sessions: { c1: { chunks: 0, exitCode: 0, runBlock: true }, c2: { chunks: 2, exitCode: 0 } },
      attaches: [{ containerId: 'c2', logs: false }],
    }),
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            attachOpen: enqueueActions(({ context, event, enqueue, system }) => {
              const server = system.get('sshServer') as AnyActorRef | undefined;
              const decision = event.type === 'ATTACH_OPEN' && event.offset === 'live' ? decideAttach(context as GuestContext, event.containerId, 'live') : undefined;
              if (!server || !decision?.accept || event.type !== 'ATTACH_OPEN') return void enqueue(original(guest, 'attachOpen'));
              // The original, but the channel starts behind, at the log's first byte.
              const log = (context as GuestContext).logs[event.containerId]!;
              enqueue.sendTo(server, { type: 'ATTACH_ACCEPT', channelId: event.channelId, offset: decision.from } satisfies SshServerCommand as never);
              const opened = { sessionId: event.containerId, blocked: false, behind: log.start, replaying: false, holding: false, loose: false };
              enqueue.assign({ channels: { ...(context as GuestContext).channels, [event.channelId]: replayNext(enqueue as never, event.channelId, opened) } });
            }),
          },
        }),
    },
  },
  {
    id: 'exit-to-one-channel',
    name: 'a guest that sends the exit status to only one of the channels attached to a session',
    breaks: 'attach-settles',
    scenario: scenario('two-attached', {
      sessions: { c1: { chunks: 1, exitCode: 3, runBlock: true } },
      attaches: [{ containerId: 'c1', logs: false }, { containerId: 'c1', logs: false }],
    }),
    overrides: {
      guest: (guest) =>
        guest.provide({
          actions: {
            sessionChanged: enqueueActions(({ context, event, enqueue }) => {
              if (event.type !== 'SESSION_CHANGED' || event.view.state !== 'exited') return void enqueue(original(guest, 'sessionChanged'));
              // The original, run as if the session had one channel: the others are forgotten.
              const channels = Object.entries((context as GuestContext).channels);
              const first = channels.find(([, channel]) => channel.sessionId === event.sessionId)?.[0];
              const others = Object.fromEntries(channels.filter(([id, channel]) => channel.sessionId !== event.sessionId || id === first));
              enqueue.assign({ channels: others });
              enqueue(original(guest, 'sessionChanged'));
            }),
          },
        }),
    },
  },
  {
    id: 'stop-never-kills',
    name: 'a process session whose stop timeout runs out without sending SIGKILL',
    breaks: 'stopped-in-time',
    scenario: stopped,
    overrides: { guest: (guest) => sessionWith(guest, { kill: () => {} }) },
  },
  {
    id: 'signal-status-lost',
    name: 'a process session that records a signalled exit as code 0, not 128 + the signal',
    breaks: 'exit-status',
    scenario: stopped,
    overrides: {
      guest: (guest) =>
        sessionWith(guest, {
          recordExit: assign(({ event }) => ({ exitCode: (event as { exitCode?: number }).exitCode ?? 0 })),
        }),
    },
  },
  {
    id: 'map-any-link',
    name: 'a connection map that answers a lookup with whichever link is up',
    breaks: 'routing',
    scenario: twoVms,
    overrides: {
      appliance: (appliance) =>
        mapWith(appliance, (apply) =>
          enqueueActions(({ context, event: e, enqueue }) => {
            const event = e as ConnectionMapEvent;
            const any = upLinks(context as ConnectionMapContext).pop();
            if (event.type !== 'LOOKUP' || !any) return void enqueue(apply);
            enqueue.emit({ type: 'RESOLVED', requestId: event.requestId, containerId: event.containerId, linkId: any } satisfies ConnectionMapEmitted as never);
          }),
        ),
    },
  },
  {
    id: 'map-answers-from-cache',
    name: 'a connection map that answers a lookup from its cache, without a liveness check',
    breaks: 'one-live-owner',
    scenario: dropUnderAttach,
    overrides: {
      appliance: (appliance) =>
        mapWith(appliance, (apply) =>
          enqueueActions(({ context, event: e, enqueue }) => {
            const event = e as ConnectionMapEvent;
            const cached = event.type === 'LOOKUP' ? (context as ConnectionMapContext).owner[event.containerId] : undefined;
            if (event.type !== 'LOOKUP' || !cached) return void enqueue(apply);
            enqueue.emit({ type: 'RESOLVED', requestId: event.requestId, containerId: event.containerId, linkId: cached } satisfies ConnectionMapEmitted as never);
          }),
        ),
    },
  },
  {
    id: 'map-misses-link-down',
    name: 'a connection map that never learns that a link went down',
    breaks: 'one-live-owner',
    scenario: dropUnderAttach,
    overrides: { appliance: (appliance) => mapWith(appliance, (apply) => enqueueActions(({ event, enqueue }) => void (event.type !== 'LINK_DOWN' && enqueue(apply)))) },
  },
  {
    id: 'map-forgets-exited',
    name: 'a connection map that stops serving a container once it has exited (no longer reported, its guest still answers for it)',
    breaks: 'link-found',
    scenario: scenario('attach-after-exit', { sessions: { c1: { chunks: 1, exitCode: 3 } }, attaches: [{ containerId: 'c1', logs: true }] }),
    overrides: {
      appliance: (appliance) =>
        mapWith(appliance, (apply) =>
          enqueueActions(({ context, event: e, enqueue }) => {
            const event = e as ConnectionMapEvent;
            const map = context as ConnectionMapContext;
            if (event.type === 'LOOKUP' && !map.owner[event.containerId]) {
              const { [event.containerId]: _, ...lastSeen } = map.lastSeen;
              enqueue.assign({ lastSeen } satisfies Partial<ConnectionMapContext> as never);
            }
            enqueue(apply);
          }),
        ),
    },
  },
  {
    id: 'map-never-expires',
    name: 'a connection map whose waiters never reach their deadline',
    breaks: 'waiter-deadline',
    scenario: scenario('never-expires', { sessions: { c1: { chunks: 0, exitCode: 0, runBlock: true } }, faults: { garbage: 1, lateMessages: 1 } }),
    overrides: { appliance: (appliance) => mapWith(appliance, (apply) => enqueueActions(({ event, enqueue }) => void (event.type !== 'REQUEST_EXPIRED' && enqueue(apply)))) },
  },
];
