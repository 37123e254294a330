import type { Assignments } from '../../machines/assignments.ts';
import { GUEST, IMPOSTOR, SECOND } from './world.ts';

/**
 * A scenario bounds what the checker explores: one containerVM with its
 * sessions and what each process does (and, if it says so, a second one with
 * sessions of its own, or an impostor: a containerVM whose guest reports
 * what it was not given), the attach
 * requests of an API client, and how many faults the line may suffer.
 * Everything in it is explored in every order; nothing outside it happens.
 */

export interface ProcessScript {
  /** Output chunks it writes, one by one, each labelled `<session>:<n>`. */
  chunks: number;
  exitCode: number;
  runBlock?: boolean;
  tty?: boolean;
  /** Exits only once its stdin is closed, as `cat` does: every chunk typed before must reach it. */
  readsStdin?: boolean;
  /** False: it never exits by itself, as a server does; only a signal ends it. */
  exits?: boolean;
  /** What its stop signal does: nothing (only SIGKILL ends it), or end it, killed by that signal. */
  onStop?: 'ignore' | 'exit';
}

export interface AttachScript {
  containerId: string;
  /** Replay the log from its start (docker attach --logs), or join live. */
  logs: boolean;
  /** Stdin chunks the client sends, then whether it half-closes. */
  stdin?: number;
  closeStdin?: boolean;
  /** The client may detach at any point. */
  detach?: boolean;
}

export interface Scenario {
  name: string;
  description: string;
  sessions: Record<string, ProcessScript>;
  /** The sessions of a second containerVM (`vm2`), with a line of its own that suffers no faults; their IDs differ from the first's. */
  second?: Record<string, ProcessScript>;
  /**
   * The session IDs in the config of another containerVM (`vm3`), a
   * compromised guest: the appliance assigned it only the first, its own,
   * and it reports them all (the others are the first VM's). Its processes
   * never start, and its line suffers no faults.
   */
  impostor?: string[];
  attaches: AttachScript[];
  faults: {
    /** Hypervisor connections dropped. */
    drops: number;
    /** Runs of garbage bytes written onto the line (either way). */
    garbage: number;
    /** SYN frames the line delivers twice. */
    duplicateSyns: number;
    /** Timer firings while messages are still in flight (a message slower than a timeout). */
    lateMessages: number;
    /** Times an attach's reader stops reading until its channel's window is full (and later reads again). */
    stalls: number;
  };
  /**
   * Exchanges a handshake may start before the model stops there: a guest
   * that never answers makes the appliance retry forever, each time with a
   * fresh nonce, so without this bound such a run never ends. By default two
   * per fault, plus three.
   */
  handshakeAttempts?: number;
  /** How long an attach waits for a link carrying its container. */
  attachTimeoutMs: number;
  /** Stop after this many distinct states (the report says the space was truncated). */
  maxStates: number;
}

const common = { attachTimeoutMs: 10_000 };

/** The containerVM names the model's guests present with their host keys, by guest system. */
export const VM: Record<string, string> = { [GUEST]: 'vm1', [SECOND]: 'vm2', [IMPOSTOR]: 'vm3' };

/** The honest containerVMs of a scenario, by guest system: what their processes do. */
export function containerVMs(s: Scenario): Record<string, Record<string, ProcessScript>> {
  return { [GUEST]: s.sessions, ...(s.second ? { [SECOND]: s.second } : {}) };
}

/** The guest system whose containerVM runs session `id`. */
export function holderOf(s: Scenario, id: string): string | undefined {
  return Object.entries(containerVMs(s)).find(([, scripts]) => id in scripts)?.[0];
}

/** The trust store of a scenario: what its launchers assigned each containerVM. */
export function trustOf(s: Scenario): Assignments {
  const honest = Object.entries(containerVMs(s)).map(([guest, scripts]) => [VM[guest]!, Object.keys(scripts)]);
  return { ...Object.fromEntries(honest), ...(s.impostor ? { [VM[IMPOSTOR]!]: s.impostor.slice(0, 1) } : {}) };
}

/** The handshake bound of a scenario (see Scenario.handshakeAttempts). */
export function handshakeBound(s: Scenario): number {
  const { drops, garbage, duplicateSyns, lateMessages } = s.faults;
  return s.handshakeAttempts ?? 3 + 2 * (drops + garbage + duplicateSyns + lateMessages);
}

const faults: Scenario = {
  name: 'faults',
  description: 'the attach path through line noise: a run of garbage and a duplicated SYN, one output chunk',
  sessions: { c1: { chunks: 1, exitCode: 3, runBlock: true } },
  attaches: [{ containerId: 'c1', logs: true }],
  faults: { drops: 0, garbage: 1, duplicateSyns: 1, lateMessages: 0, stalls: 0 },
  ...common,
  maxStates: 2_000_000,
};

export const scenarios: Record<string, Scenario> = {
  default: {
    name: 'default',
    description: 'one run-block container writing 2 chunks and reading its stdin to its end; one attach with logs that types, then half-closes; one dropped connection',
    sessions: { c1: { chunks: 2, exitCode: 3, runBlock: true, readsStdin: true } },
    attaches: [{ containerId: 'c1', logs: true, stdin: 1, closeStdin: true }],
    faults: { drops: 1, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  attach: {
    name: 'attach',
    description: 'the attach path on a perfect line: one run-block container writing 2 chunks, one attach with logs',
    sessions: { c1: { chunks: 2, exitCode: 3, runBlock: true } },
    attaches: [{ containerId: 'c1', logs: true }],
    faults: { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  faults,
  late: {
    ...faults,
    name: 'late',
    description: 'the faults scenario plus one message slower than a timeout (about 250,000 states: minutes)',
    faults: { ...faults.faults, lateMessages: 1 },
  },
  reconnect: {
    name: 'reconnect',
    description: 'two dropped connections under an attach to a container writing 3 chunks',
    sessions: { c1: { chunks: 3, exitCode: 0, runBlock: true } },
    attaches: [{ containerId: 'c1', logs: true }],
    faults: { drops: 2, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  stall: {
    name: 'stall',
    description: 'readers that stop reading: a container writing 3 chunks, two attaches (one with logs) whose windows fill twice in all',
    sessions: { c1: { chunks: 3, exitCode: 3, runBlock: true } },
    attaches: [{ containerId: 'c1', logs: true }, { containerId: 'c1', logs: false }],
    faults: { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 2 },
    ...common,
    maxStates: 2_000_000,
  },
  'two-vms': {
    name: 'two-vms',
    description: 'two containerVMs, each with its own link and container writing a chunk; an attach with logs to each',
    sessions: { c1: { chunks: 1, exitCode: 3, runBlock: true } },
    second: { c2: { chunks: 1, exitCode: 5, runBlock: true } },
    attaches: [{ containerId: 'c1', logs: true }, { containerId: 'c2', logs: true }],
    faults: { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  stop: {
    name: 'stop',
    description: 'a primary that exits while another session runs: one that never exits and ignores its stop signal (attached, live), one that its stop signal ends',
    sessions: { c1: { chunks: 1, exitCode: 0 }, c2: { chunks: 1, exitCode: 0, exits: false }, c3: { chunks: 0, exitCode: 0, exits: false, onStop: 'exit' } },
    attaches: [{ containerId: 'c2', logs: false }],
    faults: { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  impostor: {
    name: 'impostor',
    description: 'an impostor: a second containerVM whose guest reports the first one\'s container as its own, beside one attach to that container',
    sessions: { c1: { chunks: 1, exitCode: 3, runBlock: true } },
    impostor: ['imp', 'c1'],
    attaches: [{ containerId: 'c1', logs: true }],
    faults: { drops: 0, garbage: 0, duplicateSyns: 0, lateMessages: 0, stalls: 0 },
    ...common,
    maxStates: 2_000_000,
  },
  large: {
    name: 'large',
    description: 'two containers, two attaches (one detaching), stdin, every fault: the benchmark, cut at a million states',
    sessions: { c1: { chunks: 3, exitCode: 3, runBlock: true }, c2: { chunks: 2, exitCode: 0 } },
    attaches: [
      { containerId: 'c1', logs: true, stdin: 1, closeStdin: true },
      { containerId: 'c2', logs: false, detach: true },
    ],
    faults: { drops: 1, garbage: 1, duplicateSyns: 1, lateMessages: 1, stalls: 0 },
    ...common,
    maxStates: 1_000_000,
  },
};
