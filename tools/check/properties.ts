import type { ConnectionMapContext } from '../../machines/connectionMap.ts';
import type { ApplianceContext } from '../../machines/appliance.ts';
import type { AttachOutcome } from '../../machines/containerChannel.ts';
import { nodeAt, servingCarrier, simState, statusOf } from './model.ts';
import { containerVMs, holderOf, trustOf, type ProcessScript, type Scenario } from './scenario.ts';
import type { ProcessSim } from './sims.ts';
import { attachSystem, type WorldState } from './world.ts';

/**
 * What the checker proves about every explored state. A safety property
 * holds in every state; an `eventually` property holds in every state where
 * nothing more can happen (a terminal state), and, under fair scheduling,
 * every state must be able to reach a terminal state where they all hold.
 * Each check returns what is wrong, in words, or nothing.
 */
export interface Property {
  name: string;
  description: string;
  kind: 'safety' | 'eventually';
  check(w: WorldState, scenario: Scenario): string | undefined;
}

const seen = (property: string) => (w: WorldState) => w.violations[property];

/** Chunk labels are `<session>:<n>`. */
const parse = (label: string) => {
  const at = label.lastIndexOf(':');
  return { sessionId: label.slice(0, at), n: Number(label.slice(at + 1)) };
};

/** An exit status in words: `exited 3`, or `exited 137 (killed by KILL)`. */
const statusText = (status: { exitCode?: number; signal?: string }) => `exited ${status.exitCode}${status.signal ? ` (killed by ${status.signal})` : ''}`;

/** The simulated process of session `id`, in the containerVM that runs it. */
const processOf = (w: WorldState, scenario: Scenario, id: string) => {
  const guest = holderOf(scenario, id);
  return guest === undefined ? undefined : simState<ProcessSim>(w.systems[guest]!, `session:${id}/process`);
};

/** Every session of the scenario's containerVMs, with what its process does. */
const sessionsOf = (scenario: Scenario): Record<string, ProcessScript> => Object.assign({}, ...Object.values(containerVMs(scenario)));

const outcomeOf = (w: WorldState, attach: number) => {
  const state = w.systems[attachSystem(attach)];
  return state && statusOf(state) === 'done' ? (nodeAt(state, '') as { output?: AttachOutcome }).output : undefined;
};

export const properties: Property[] = [
  {
    name: 'no-crash',
    description: 'no actor system fails (an action throws, an event is malformed)',
    kind: 'safety',
    check: seen('no-crash'),
  },
  {
    name: 'routing',
    description: 'a channel is never routed to a container other than the one asked for, nor to a containerVM that does not hold it',
    kind: 'safety',
    check: (w, scenario) => {
      for (const [i, a] of w.attaches.entries()) {
        const asked = scenario.attaches[i]!.containerId;
        const wrong = a.received.find((label) => parse(label).sessionId !== asked);
        if (wrong) return `attach${i} asked for ${asked} and received ${wrong}`;
        // Every container a scenario attaches to exists: a guest that does not know it was asked in its place.
        const outcome = outcomeOf(w, i);
        if (outcome?.failure === 'unknown-id') return `attach${i} asked for ${asked} and was told: ${outcome.error}`;
      }
      return undefined;
    },
  },
  {
    name: 'output-order',
    description: 'an output byte is never delivered twice or out of order, and a replay from the log starts at its first byte',
    kind: 'safety',
    check: (w, scenario) => {
      for (const [i, a] of w.attaches.entries()) {
        const ns = a.received.map((label) => parse(label).n);
        if (scenario.attaches[i]!.logs && ns.length > 0 && ns[0] !== 0) return `attach${i} replayed the log from ${a.received[0]}, not from its start`;
        for (let k = 1; k < ns.length; k++) {
          if (ns[k] !== ns[k - 1]! + 1) return `attach${i} received ${a.received[k]} after ${a.received[k - 1]} (${ns[k]! <= ns[k - 1]! ? 'twice or out of order' : 'a gap'})`;
        }
      }
      return undefined;
    },
  },
  {
    name: 'opened-offset',
    description: "an attach channel's first byte is at or after the offset the guest named when it opened",
    kind: 'safety',
    check: seen('opened-offset'),
  },
  {
    name: 'output-after-exit',
    description: 'no output is delivered after the exit status',
    kind: 'safety',
    check: seen('output-after-exit'),
  },
  {
    name: 'exit-status',
    description: "an attach that ends with the exit status got the process's own code, after its last byte",
    kind: 'safety',
    check: (w, scenario) => {
      for (const [i, a] of w.attaches.entries()) {
        const outcome = outcomeOf(w, i);
        if (outcome?.outcome !== 'exited') continue;
        const process = processOf(w, scenario, scenario.attaches[i]!.containerId)!;
        // A status named at the channel's open (the process had exited and nothing was left to replay) carries the code alone.
        if (outcome.exitCode !== process.exitCode || (outcome.signal !== undefined && outcome.signal !== process.signal)) return `attach${i} ended with ${statusText(outcome)}; the process ${statusText(process)}`;
        const last = a.received.length > 0 ? parse(a.received[a.received.length - 1]!).n : -1;
        const expected = scenario.attaches[i]!.logs || a.received.length > 0 ? process.written - 1 : -1;
        if (last !== expected) return `attach${i} got the exit status after ${a.received.length} chunk(s) [${a.received.join(' ')}]; the process wrote ${process.written}`;
      }
      return undefined;
    },
  },
  {
    name: 'waiter-deadline',
    description: 'a lookup waiting for a link is never left waiting after its deadline',
    kind: 'safety',
    check: (w) => {
      for (const [i, a] of w.attaches.entries()) {
        if (a.lookupDue !== undefined && a.lookupDue < w.now) return `attach${i}'s lookup was due at ${a.lookupDue} ms and still waits at ${w.now} ms`;
      }
      return undefined;
    },
  },
  {
    name: 'link-found',
    description: 'a lookup never waits while a live link carries its container with nothing in flight (so an attach fails for want of a link only when none was up)',
    kind: 'safety',
    check: (w, scenario) => {
      const seen = w.violations['link-found'];
      if (seen) return seen;
      for (const [i, a] of w.attaches.entries()) {
        // Waiting, and seen by the map (its deadline runs from then).
        if (a.lookupDue === undefined || a.lookupDue === Number.POSITIVE_INFINITY || w.mail[attachSystem(i)]?.length || w.mail.appliance?.length) continue;
        const { containerId } = scenario.attaches[i]!;
        const link = servingCarrier(w, scenario, containerId);
        if (link) return `attach${i}'s lookup of ${containerId} waits while link ${link} carries it, up and with nothing in flight`;
      }
      return undefined;
    },
  },
  {
    name: 'stdin',
    description: 'stdin reaches the process at most once per chunk the user typed, and nothing after the half-close',
    kind: 'safety',
    check: (w, scenario) => {
      const seen = w.violations.stdin;
      if (seen) return seen;
      for (const sessionId of Object.keys(sessionsOf(scenario))) {
        const got = processOf(w, scenario, sessionId)?.stdin ?? 0;
        const typed = w.attaches.filter((_, i) => scenario.attaches[i]!.containerId === sessionId).reduce((n, a) => n + a.stdinSent, 0);
        if (got > typed) return `session ${sessionId} got ${got} stdin chunks; the user typed ${typed}`;
      }
      return undefined;
    },
  },
  {
    name: 'stdin-delivered',
    description: 'stdin typed reaches a process that reads it to its end, unless the link carrying it dropped',
    kind: 'eventually',
    check: (w, scenario) => {
      for (const [sessionId, script] of Object.entries(sessionsOf(scenario))) {
        if (!script.readsStdin) continue;
        const mine = w.attaches.filter((_, i) => scenario.attaches[i]!.containerId === sessionId);
        // A detached or failed attach takes what it had not sent yet with it.
        const ended = scenario.attaches.some((a, i) => a.containerId === sessionId && (outcomeOf(w, i)?.outcome ?? 'exited') !== 'exited');
        if (ended) continue;
        const typed = mine.reduce((n, a) => n + a.stdinSent, 0);
        const lost = mine.reduce((n, a) => n + a.stdinLost, 0);
        const got = processOf(w, scenario, sessionId)?.stdin ?? 0;
        if (got < typed - lost) return `session ${sessionId} got ${got} stdin chunks; the user typed ${typed}${lost === 0 ? '' : `, of which ${lost} went down with a link`}`;
      }
      return undefined;
    },
  },
  {
    name: 'stopped-in-time',
    description: 'once the primary exits, every other session ends within its stop timeout (its stop signal, then SIGKILL)',
    kind: 'safety',
    check: (w) => {
      for (const [guest, due] of Object.entries(w.stopDue)) {
        for (const [sessionId, at] of Object.entries(due)) {
          if (w.now <= at || simState<ProcessSim>(w.systems[guest]!, `session:${sessionId}/process`)?.exited) continue;
          return `${sessionId} is still running at ${w.now} ms; its primary exited and its stop timeout ran out at ${at} ms`;
        }
      }
      return undefined;
    },
  },
  {
    name: 'run-block',
    description: 'the guest never launches a run-block session before the appliance unblocks it',
    kind: 'safety',
    check: seen('run-block'),
  },
  {
    name: 'one-live-owner',
    description: "the connection map maps an ID to one live link, which carries it, and answers a lookup only with a link whose connection is live in the world",
    kind: 'safety',
    check: (w) => {
      const seen = w.violations['one-live-owner'];
      if (seen) return seen;
      const map = nodeAt(w.systems.appliance!, 'connectionMap')?.context as ConnectionMapContext | undefined;
      if (!map) return undefined;
      // The world's connections, once the appliance has heard all there is to hear of their ends.
      const live = w.mail.appliance?.length ? undefined : new Set(Object.values(w.lines).map((line) => line.connection?.linkId));
      for (const [id, linkId] of Object.entries(map.owner)) {
        const link = map.links[linkId];
        if (!link?.up) return `container ${id} is mapped to link ${linkId}, which is ${link ? 'down' : 'unknown'}`;
        if (live && !live.has(linkId)) return `container ${id} is mapped to link ${linkId}, whose connection is gone`;
        if (!link.ids.includes(id)) return `container ${id} is mapped to link ${linkId}, which does not carry it`;
        const others = Object.entries(map.links).filter(([other, l]) => other !== linkId && l.up && l.ids.includes(id));
        if (others.length > 0) return `container ${id} is carried by live links ${[linkId, ...others.map(([o]) => o)].join(', ')}`;
      }
      return undefined;
    },
  },
  {
    name: 'served-by-holder',
    description: 'a container ID is served only by the VM that holds it: the connection map routes it, and the inventory lists it, only from the containerVM the appliance assigned it to',
    kind: 'safety',
    check: (w, scenario) => {
      const trust = trustOf(scenario);
      const wrong = (id: string, vm: string | undefined) => vm !== undefined && !trust[vm]?.includes(id);
      const holder = (id: string) => Object.entries(trust).find(([, ids]) => ids.includes(id))?.[0] ?? 'no containerVM';
      const map = nodeAt(w.systems.appliance!, 'connectionMap')?.context as ConnectionMapContext | undefined;
      for (const [id, linkId] of Object.entries(map?.owner ?? {})) {
        const vm = map!.links[linkId]?.vm;
        if (wrong(id, vm)) return `the connection map routes container ${id} to link ${linkId} of containerVM ${vm}; it is ${holder(id)}'s`;
      }
      // A container no longer reported is served by the newest live link of the VM that last reported it.
      for (const [id, vm] of Object.entries(map?.lastSeen ?? {})) {
        if (wrong(id, vm)) return `the connection map takes containerVM ${vm} for the last to report container ${id}; it is ${holder(id)}'s`;
      }
      const containers = (nodeAt(w.systems.appliance!, '')?.context as ApplianceContext).containers;
      for (const [id, entry] of Object.entries(containers)) {
        if (wrong(id, entry.vm)) return `the inventory lists container ${id} as containerVM ${entry.vm}'s; it is ${holder(id)}'s`;
      }
      return undefined;
    },
  },
  {
    name: 'attach-settles',
    description: 'every attach request ends with an outcome (exit status, error, detach), or streams from a process still running',
    kind: 'eventually',
    check: (w, scenario) => {
      for (const [i, a] of w.attaches.entries()) {
        if (!a.started) continue;
        const state = w.systems[attachSystem(i)]!;
        if (statusOf(state) === 'done') continue;
        const value = JSON.stringify(nodeAt(state, '')?.value);
        const attached = simState<{ attached: boolean }>(state, 'user')?.attached;
        if (!(attached && value === '{"connected":"streaming"}')) return `attach${i} is stuck in ${value}${attached ? '' : ' and was never attached'}`;
        // Nothing more can happen: a status that has not come by now never will.
        const { containerId } = scenario.attaches[i]!;
        const process = processOf(w, scenario, containerId);
        if (process?.exited) return `attach${i} still streams from ${containerId}, whose process exited ${process.exitCode}: its exit status never came`;
      }
      return undefined;
    },
  },
  {
    name: 'status-reaches-appliance',
    description: "every exited process's status reaches the appliance",
    kind: 'eventually',
    check: (w, scenario) => {
      const containers = (nodeAt(w.systems.appliance!, '')?.context as ApplianceContext).containers;
      for (const sessionId of Object.keys(sessionsOf(scenario))) {
        const process = processOf(w, scenario, sessionId);
        if (!process?.exited) continue;
        const info = containers[sessionId]?.info;
        if (info?.state !== 'exited' || info.exitCode !== process.exitCode || info.signal !== process.signal) {
          return `${sessionId} ${statusText(process)} but the appliance shows ${info ? `${info.state}${info.exitCode === undefined ? '' : `, ${statusText(info)}`}` : 'nothing'}`;
        }
      }
      return undefined;
    },
  },
  {
    name: 'progress',
    description: 'under fair scheduling every run ends in a state where all of the above hold (checked over the whole graph: no livelock)',
    kind: 'eventually',
    // The explorer checks this one over the explored graph, not state by state.
    check: () => undefined,
  },
  {
    name: 'no-deadlock',
    description: 'nothing is left in flight when nothing more can happen',
    kind: 'eventually',
    check: (w) => {
      const stuck: string[] = [];
      for (const [guest, line] of Object.entries(w.lines)) {
        if (line.toGuest.length) stuck.push(`${line.toGuest.length} toward the ${guest}`);
        if (line.toAppliance.length) stuck.push(`${line.toAppliance.length} from the ${guest} toward the appliance`);
      }
      for (const [system, queue] of Object.entries(w.mail)) if (queue.length) stuck.push(`${queue.length} for ${system}`);
      return stuck.length ? `stuck: ${stuck.join(', ')}` : undefined;
    },
  },
];
