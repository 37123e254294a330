import type { AttachFailure, ContainerInfo } from '../../shared/wire.ts';
import type { SystemState } from './runtime.ts';
import type { SimEvent } from './sim.ts';

/**
 * The state of the whole composed model, as plain data: the actor systems
 * (persisted), what is in flight between them (each guest's serial line, its
 * two directions, messages between systems), the environment's progress (the
 * API client's script, faults left) and ghost state that the properties read
 * (what each user received, which sessions were unblocked).
 */

/** An SSH message, abstracted from ssh2's packets: what the extension's protocol carries. */
export type SshMessage =
  // appliance → guest
  | { t: 'hello' }
  | { t: 'query'; what: 'ids' | 'info' | 'keepalive' }
  | { t: 'open'; ch: string; containerId: string; offset: number | 'live' }
  | { t: 'stdin'; ch: string; data: Uint8Array }
  | { t: 'request'; ch: string; name: 'unblock' | 'close-stdin' | 'resize' | 'signal'; cols?: number; rows?: number; signal?: string }
  | { t: 'close'; ch: string }
  // guest → appliance
  | { t: 'welcome'; vm: string }
  | { t: 'reply'; what: 'ids' | 'info' | 'keepalive'; ids?: string[]; info?: ContainerInfo[] }
  | { t: 'push'; what: 'ids' | 'info'; ids?: string[]; info?: ContainerInfo[] }
  | { t: 'openOk'; ch: string; offset: number }
  | { t: 'openFail'; ch: string; failure: AttachFailure }
  | { t: 'data'; ch: string; stream: 'stdout' | 'stderr'; data: Uint8Array }
  | { t: 'exit'; ch: string; exitCode: number; signal?: string };

/** What travels on the serial line: raw bytes (handshake, garbage) or, once SSH runs, its messages. */
export type Wire = { kind: 'bytes'; data: Uint8Array } | { kind: 'ssh'; msg: SshMessage };

/** Who waits for the reply to a global request, in order (SSH answers them in order). */
export type ReplyOwner = { kind: 'query' } | { kind: 'ping'; linkId: string; containerId: string };

/** The hypervisor's TCP connection to the appliance's serial listener. */
export interface Connection {
  handle: string;
  /** Path of the appliance's link actor serving it. */
  link?: string;
  /** The link ID its SSH client registered. */
  linkId?: string;
  replies: ReplyOwner[];
  /** Attach channel → the attach system that opened it. */
  channels: Record<string, string>;
}

export interface Line {
  connection?: Connection;
  connections: number;
  toGuest: Wire[];
  toAppliance: Wire[];
}

/** An event for an actor of another system: delivered as a step of its own. */
export interface Mail {
  path: string;
  event: SimEvent;
  /** Who sent it, for the sequence diagram. */
  from: string;
}

export interface AttachProgress {
  started: boolean;
  stdinSent: number;
  closedStdin: boolean;
  detached: boolean;
  /** Output chunk labels the user received, in order. */
  received: string[];
  /** The channel machine got the exit status. */
  exitDelivered: boolean;
  /** Lookups asked so far (their request IDs are `<attach>.<n>`). */
  lookups: number;
  /** When the lookup in flight is due to be answered, on the world's clock; absent while none waits. */
  lookupDue?: number;
  /** Attach channels opened so far (their names are `<attach>.<n>`). */
  channels: number;
  /**
   * Ghost: stdin chunks lost with a link, on their way (a dropped
   * connection, a link already gone, a guest SSH session that ended under
   * its channel). The rest must reach a process that reads its stdin.
   */
  stdinLost: number;
  /** Ghost: the offset the guest named for the channel just opened, until its first output chunk arrives. */
  openedAt?: number;
}

export interface WorldState {
  systems: Record<string, SystemState>;
  mail: Record<string, Mail[]>;
  /** Each guest's serial line, by the guest's system: `guest`, and `guest2` and `impostor` in a scenario that has them. */
  lines: Record<string, Line>;
  attaches: AttachProgress[];
  faults: { drops: number; garbage: number; duplicateSyns: number; lateMessages: number; stalls: number };
  /** The simulated clock, in ms. */
  now: number;
  /**
   * Ghost: by when each session's process must have ended, on the world's
   * clock, by guest system: set when the guest's primary exits, since the
   * guest then stops every other session (its stop signal, SIGKILL after its
   * stop timeout).
   */
  stopDue: Record<string, Record<string, number>>;
  /** Sessions the appliance unblocked, by guest system. */
  unblocked: Record<string, Record<string, true>>;
  /** Safety violations seen by the simulations while a step ran: property → message. */
  violations: Record<string, string>;
}

/**
 * What simulations hand to the world (see tools/check/sim.ts). The world
 * knows which system the posting actor belongs to, so attach-side posts need
 * not name their attach.
 */
export type Post =
  | { kind: 'toAppliance'; wire: Wire }
  | { kind: 'toGuest'; handle: string; wire: Wire; owner?: ReplyOwner }
  /** A connection actor started: the link actor above it serves `handle`. */
  | { kind: 'connection'; handle: string }
  | { kind: 'register'; handle: string; linkId: string }
  | { kind: 'socketClosed'; handle: string }
  | { kind: 'endLink'; linkId: string }
  | { kind: 'ping'; linkId: string; containerId: string }
  /** Opens an attach channel on the link; the world answers with the channel's name. */
  | { kind: 'openChannel'; linkId: string; containerId: string; offset: number | 'live' }
  | { kind: 'channel'; linkId: string; msg: SshMessage }
  | { kind: 'lookup'; containerId: string; timeoutMs: number }
  | { kind: 'lookupSettled' }
  | { kind: 'lookupCancelled' }
  | { kind: 'unblocked'; sessionId: string }
  | { kind: 'received'; label: string }
  | { kind: 'exitDelivered' }
  /** The guest accepted an attach channel, naming the offset its first byte is at. */
  | { kind: 'opened'; offset: number }
  /** The guest's SSH server dropped stdin on channel `ch`: its session or the channel is gone with the link. */
  | { kind: 'stdinLost'; ch: string }
  | { kind: 'violation'; property: string; message: string };

/** The guest systems of a world: the scenario's containerVM, a second one when it has one, then the impostor's. */
export const GUEST = 'guest';
export const SECOND = 'guest2';
export const IMPOSTOR = 'impostor';

export const attachSystem = (index: number) => `attach${index}`;
export const attachIndex = (system: string) => Number(system.slice('attach'.length));
