import type { AnyActorLogic, AnyActorRef, InspectionEvent } from 'xstate';
import { composeAppliance, composeAttach } from '../../appliance/composition.ts';
import { composeGuest } from '../../guest/composition.ts';
import type { GuestConfig } from '../../shared/config.ts';
import { DEFAULT_SECURITY } from '../../shared/security.ts';
import { ACK, NAK, PROBE, SYN } from '../../shared/handshake.ts';
import type { TraceStep } from './report.ts';
import type { ConnectionMapEmitted } from '../../machines/connectionMap.ts';
import { LiveSystem, pathOf, type SystemState } from './runtime.ts';
import { Runs, type Delivery } from './runs.ts';
import { containerVMs, handshakeBound, holderOf, trustOf, VM, type ProcessScript, type Scenario } from './scenario.ts';
import type { PostBox } from './sim.ts';
import { applianceEffects, attachEffects, chunkStart, guestEffects, noiseOf, type ChannelSim, type ClientSim, type ConnectionSim, type PortPhase, type ProcessSim, type ServerSim } from './sims.ts';
import { attachIndex, attachSystem, GUEST, IMPOSTOR, type AttachProgress, type Connection, type Line, type Mail, type Post, type SshMessage, type Wire, type WorldState } from './world.ts';

/**
 * The composed model: the guest and appliance compositions of the bundles
 * with simulated effects, the world between them, and the steps the
 * environment can take from any state: deliver what is in flight, fire the
 * next timer, let a process write or exit, let the hypervisor connect or the
 * line fail, let the API client act. `steps()` lists what is enabled and
 * `apply()` takes one, returning a new world; neither mutates its input.
 * Each guest (the scenario's containerVM, and an impostor when it has one)
 * is a system of its own with a line of its own; `guest` names it.
 */

export type Step =
  | { kind: 'toGuest'; guest: string }
  | { kind: 'toAppliance'; guest: string }
  | { kind: 'mail'; system: string }
  | { kind: 'timer'; system: string; source: string; id: string; late: boolean }
  | { kind: 'connect'; guest: string }
  | { kind: 'drop'; guest: string }
  | { kind: 'garbage'; guest: string; toGuest: boolean }
  | { kind: 'duplicateSyn'; guest: string }
  | { kind: 'portOpened'; guest: string }
  | { kind: 'portClosed'; guest: string }
  /** An attach's reader stops reading and its channel's window fills; or it reads again and the window opens. */
  | { kind: 'window'; guest: string; ch: string; full: boolean }
  | { kind: 'process'; guest: string; sessionId: string; action: 'start' | 'write' | 'exit' }
  | { kind: 'client'; attach: number; action: 'attach' | 'stdin' | 'closeStdin' | 'detach' };

export interface Applied {
  world: WorldState;
  trace: TraceStep;
}

/** Mutations of the machines under test, for the checker's own tests: each replaces one machine's logic (a guest's, in every guest). */
export interface Overrides {
  guest?: (logic: ReturnType<typeof composeGuest>) => AnyActorLogic;
  appliance?: (logic: ReturnType<typeof composeAppliance>) => AnyActorLogic;
  attach?: (logic: ReturnType<typeof composeAttach>) => AnyActorLogic;
}

const MAX_EVENTS_PER_STEP = 10_000;
const GARBAGE = Uint8Array.of(0x00, 0x7f, SYN, 0x41, 0x06);
const STDIN = new TextEncoder().encode('in');

/** The guest config of a containerVM whose sessions are `scripts` (the first is its primary). */
export function guestConfig(scripts: Record<string, ProcessScript>): GuestConfig {
  const [primary] = Object.keys(scripts);
  return {
    id: primary!,
    name: 'demo',
    hostname: 'demo',
    sessions: Object.fromEntries(
      Object.entries(scripts).map(([id, script]) => [
        id,
        { cmd: ['/bin/sim', id], env: [], cwd: '/', tty: script.tty ?? false, openStdin: true, runBlock: script.runBlock ?? false, stopSignal: 'TERM', stopTimeout: 10, restart: { name: 'no' } },
      ]),
    ),
    ssh: { hostKey: 'simulated', authorizedKeys: [] },
    serial: { device: '/dev/ttyS0' },
    outputLogBytes: 1 << 20,
    rootfs: 'host',
    logDir: '/var/log/tether',
    hide: [],
    security: DEFAULT_SECURITY,
  };
}

export class Model {
  readonly scenario: Scenario;
  /** What each guest's processes do, by guest system: the impostor's never start, so it has none. */
  readonly #scripts: Record<string, Record<string, ProcessScript>>;
  readonly #guests: Record<string, AnyActorLogic>;
  readonly #appliance: AnyActorLogic;
  readonly #attach: AnyActorLogic;
  /** The world a step is building, and the system whose actors are running. */
  #draft: WorldState | undefined;
  #system = '';
  /** Runs of a system taken once and replayed (runs.ts): every call a run makes on the world goes through `#runs.effect`. */
  readonly #runs = new Runs();
  readonly #box: PostBox<Post> = { post: (item, from) => this.#runs.effect(this.#posted, item, pathOf(from)) };
  readonly #posted = (item: Post, from: string) => this.#post(item, from);
  readonly #unblocked = (guest: string) => ({ unblocked: this.#draft!.unblocked[guest] ?? {} });

  constructor(scenario: Scenario, overrides: Overrides = {}) {
    this.scenario = scenario;
    const impostor = scenario.impostor && Object.fromEntries(scenario.impostor.map((id): [string, ProcessScript] => [id, { chunks: 0, exitCode: 0 }]));
    this.#scripts = { ...containerVMs(scenario), ...(impostor ? { [IMPOSTOR]: impostor } : {}) };
    const guest = (name: string, vm: string) => {
      const logic = composeGuest(guestEffects(this.#scripts[name]!, vm, this.#box, () => this.#runs.effect(this.#unblocked, name) as { unblocked: Record<string, true> }));
      return overrides.guest?.(logic) ?? logic;
    };
    this.#guests = Object.fromEntries(Object.keys(this.#scripts).map((name) => [name, guest(name, VM[name]!)]));
    const appliance = composeAppliance(applianceEffects(this.#box, trustOf(scenario)));
    const attach = composeAttach(attachEffects(this.#box));
    this.#appliance = overrides.appliance?.(appliance) ?? appliance;
    this.#attach = overrides.attach?.(attach) ?? attach;
  }

  initial(): WorldState {
    const world: WorldState = {
      systems: {},
      mail: {},
      lines: Object.fromEntries(Object.keys(this.#guests).map((guest): [string, Line] => [guest, { connections: 0, toGuest: [], toAppliance: [] }])),
      attaches: this.scenario.attaches.map(
        (): AttachProgress => ({ started: false, stdinSent: 0, closedStdin: false, detached: false, received: [], exitDelivered: false, lookups: 0, channels: 0, stdinLost: 0 }),
      ),
      faults: { ...this.scenario.faults },
      now: 0,
      stopDue: {},
      unblocked: {},
      violations: {},
    };
    this.#draft = world;
    for (const [n, guest] of Object.keys(this.#guests).entries()) world.systems[guest] = this.#start(guest, { config: guestConfig(this.#scripts[guest]!), seed: 1 + 2 * n });
    world.systems.appliance = this.#start('appliance', { seed: 2 });
    this.#draft = undefined;
    return world;
  }

  // ---- what can happen ---------------------------------------------------------

  steps(w: WorldState): Step[] {
    if (this.exhausted(w)) return [];
    const steps: Step[] = [];
    for (const guest of Object.keys(this.#guests)) {
      if (this.#guestReceiver(w, guest)) steps.push({ kind: 'toGuest', guest });
      if (this.#applianceReceiver(w, guest)) steps.push({ kind: 'toAppliance', guest });
    }
    for (const [system, queue] of Object.entries(w.mail)) if (queue.length > 0) steps.push({ kind: 'mail', system });
    for (const guest of Object.keys(this.#guests)) {
      const port = simState<{ phase: PortPhase }>(w.systems[guest]!, 'link/port');
      if (port?.phase === 'opening') steps.push({ kind: 'portOpened', guest });
      if (port?.phase === 'closing') steps.push({ kind: 'portClosed', guest });
      if (!w.lines[guest]!.connection) steps.push({ kind: 'connect', guest });
      const server = simState<ServerSim>(w.systems[guest]!, 'link/ssh/server');
      for (const [ch, channel] of Object.entries(server?.channels ?? {})) {
        if (channel.state !== 'open') continue;
        if (channel.full) steps.push({ kind: 'window', guest, ch, full: false });
        else if (w.faults.stalls > 0) steps.push({ kind: 'window', guest, ch, full: true });
      }
    }
    // Messages, and the hypervisor's opening and connecting, take far less than
    // any timeout: a timer fires only when none of them is pending, unless the
    // scenario lets a message be late. (Otherwise a retry timer could fire
    // forever while a port waits to open, and no state space would be finite.)
    const busy = steps.length > 0;
    if (!busy || w.faults.lateMessages > 0) {
      for (const [system, timer] of nextTimers(w)) steps.push({ kind: 'timer', system, source: timer.source, id: timer.id, late: busy });
    }
    // The faults strike the scenario's own line (an impostor's has none).
    const line = w.lines[GUEST]!;
    if (line.connection && w.faults.drops > 0) steps.push({ kind: 'drop', guest: GUEST });
    if (w.faults.garbage > 0) steps.push({ kind: 'garbage', guest: GUEST, toGuest: true }, { kind: 'garbage', guest: GUEST, toGuest: false });
    if (w.faults.duplicateSyns > 0 && line.toGuest.some(isSyn)) steps.push({ kind: 'duplicateSyn', guest: GUEST });
    for (const [guest, scripts] of Object.entries(containerVMs(this.scenario))) {
      for (const [sessionId, script] of Object.entries(scripts)) {
        const p = simState<ProcessSim>(w.systems[guest]!, `session:${sessionId}/process`);
        if (!p) continue;
        if (p.launched && !p.started) steps.push({ kind: 'process', guest, sessionId, action: 'start' });
        if (p.started && !p.exited && !p.paused && p.written < script.chunks) steps.push({ kind: 'process', guest, sessionId, action: 'write' });
        if (p.started && !p.exited && script.exits !== false && p.written === script.chunks && (!script.readsStdin || p.stdinClosed)) steps.push({ kind: 'process', guest, sessionId, action: 'exit' });
      }
    }
    this.scenario.attaches.forEach((script, attach) => {
      const progress = w.attaches[attach]!;
      if (!progress.started) return void steps.push({ kind: 'client', attach, action: 'attach' });
      const system = w.systems[attachSystem(attach)]!;
      if (statusOf(system) !== 'active') return;
      const attached = simState<{ attached: boolean }>(system, 'user')?.attached === true;
      if (attached && progress.stdinSent < (script.stdin ?? 0)) steps.push({ kind: 'client', attach, action: 'stdin' });
      else if (attached && script.closeStdin && !progress.closedStdin) steps.push({ kind: 'client', attach, action: 'closeStdin' });
      if (script.detach && !progress.detached) steps.push({ kind: 'client', attach, action: 'detach' });
    });
    return steps;
  }

  /** Which of the scenario's bounds this state has reached, if any: nothing more is explored from it. */
  exhausted(w: WorldState): string | undefined {
    const handshakes = [...Object.keys(this.#guests).map((guest) => nodeAt(w.systems[guest]!, 'link/handshake')), ...Object.values(nodeAt(w.systems.appliance!, '')?.children ?? {}).map((c) => c.snapshot.children?.handshake?.snapshot)];
    for (const h of handshakes) {
      const attempts = (h?.context as { attempts?: number } | undefined)?.attempts ?? 0;
      const bound = handshakeBound(this.scenario);
      if (attempts > bound) return `a handshake started ${attempts} exchanges, more than the scenario's bound of ${bound}`;
    }
    return undefined;
  }

  /** Which actor of `guest` the next byte or message toward it reaches, if any can now. */
  #guestReceiver(w: WorldState, guest: string): 'port' | 'server' | undefined {
    if (w.lines[guest]!.toGuest.length === 0) return undefined;
    const phase = simState<{ phase: PortPhase }>(w.systems[guest]!, 'link/port')?.phase;
    if (phase === 'open') return 'port';
    if (phase === 'handedOff' && simState(w.systems[guest]!, 'link/ssh/server')) return 'server';
    return undefined;
  }

  /** Which appliance actor the next byte or message from `guest` reaches, if any can now. */
  #applianceReceiver(w: WorldState, guest: string): string | undefined {
    const line = w.lines[guest]!;
    const connection = line.connection;
    if (line.toAppliance.length === 0 || !connection?.link) return undefined;
    const sim = simState<ConnectionSim>(w.systems.appliance!, `${connection.link}/connection`);
    if (!sim) return undefined;
    if (!sim.handedOff) return `${connection.link}/connection`;
    return simState<ClientSim>(w.systems.appliance!, `${connection.link}/ssh/client`) ? `${connection.link}/ssh/client` : undefined;
  }

  // ---- taking a step -------------------------------------------------------------

  apply(world: WorldState, step: Step): Applied {
    const w = draftOf(world);
    this.#draft = w;
    try {
      return { world: w, trace: this.#take(w, step) };
    } finally {
      this.#draft = undefined;
    }
  }

  #take(w: WorldState, step: Step): TraceStep {
    switch (step.kind) {
      case 'toGuest': {
        const receiver = this.#guestReceiver(w, step.guest)!;
        const wire = w.lines[step.guest]!.toGuest.shift()!;
        if (receiver === 'port') this.#run(w, step.guest, (s) => s.send('link/port', { type: 'sim.bytes', data: bytesOf(wire) }));
        else this.#run(w, step.guest, (s) => s.send('link/ssh/server', { type: 'sim.recv', wire }));
        return { from: 'appliance', to: step.guest, label: describeWire(wire) };
      }
      case 'toAppliance':
        return this.#deliverToAppliance(w, step.guest);
      case 'mail': {
        const mail = w.mail[step.system]!.shift()!;
        if (w.mail[step.system]!.length === 0) delete w.mail[step.system];
        if (mail.event.type === 'LOOKUP') {
          const attach = w.attaches[attachIndex(String(mail.event.requestId).split('.')[0]!)]!;
          attach.lookupDue = w.now + Number(mail.event.timeoutMs);
        }
        this.#run(w, step.system, (s) => s.send(mail.path, mail.event));
        return { from: mail.from, to: step.system, label: describeEvent(mail.event) };
      }
      case 'timer': {
        const timer = w.systems[step.system]!.timers.find((t) => t.source === step.source && t.id === step.id)!;
        if (step.late) w.faults.lateMessages--;
        w.now = Math.max(w.now, timer.due);
        this.#run(w, step.system, (s) => s.fire(step.source, step.id));
        return { from: 'clock', to: step.system, label: `${timer.event.type.startsWith('xstate.after') ? `after ${timer.delay} ms` : timer.event.type} at ${step.source || step.system}${step.late ? ' (a message is late)' : ''}` };
      }
      case 'connect': {
        const line = w.lines[step.guest]!;
        // The first guest's connections are conn1, conn2...; an impostor's are named for it.
        const handle = `${step.guest === GUEST ? '' : `${step.guest}-`}conn${++line.connections}`;
        line.connection = { handle, replies: [], channels: {} };
        this.#run(w, 'appliance', (s) => s.send('', { type: 'CONNECTION_ACCEPTED', handle, remote: 'hypervisor' }));
        return { from: 'hypervisor', to: 'appliance', label: `connects (${handle})` };
      }
      case 'drop':
        w.faults.drops--;
        this.#dropConnection(w, step.guest, 'the hypervisor connection dropped');
        return { from: 'hypervisor', to: 'appliance', label: 'the connection drops; bytes in flight are lost' };
      case 'garbage': {
        const line = w.lines[step.guest]!;
        w.faults.garbage--;
        (step.toGuest ? line.toGuest : line.toAppliance).push({ kind: 'bytes', data: GARBAGE });
        return { from: 'line', to: step.toGuest ? step.guest : 'appliance', label: 'garbage bytes' };
      }
      case 'duplicateSyn': {
        const toGuest = w.lines[step.guest]!.toGuest;
        w.faults.duplicateSyns--;
        const at = toGuest.findIndex(isSyn);
        toGuest.splice(at, 0, toGuest[at]!);
        return { from: 'line', to: step.guest, label: `duplicates ${describeWire(toGuest[at]!)}` };
      }
      case 'portOpened':
        this.#run(w, step.guest, (s) => s.send('link/port', { type: 'sim.opened' }));
        return { from: 'hypervisor', to: step.guest, label: 'ttyS0 opened' };
      case 'portClosed':
        this.#run(w, step.guest, (s) => s.send('link/port', { type: 'sim.closed' }));
        return { from: 'hypervisor', to: step.guest, label: 'ttyS0 closed' };
      case 'window':
        if (step.full) w.faults.stalls--;
        this.#run(w, step.guest, (s) => s.send('link/ssh/server', { type: 'sim.window', ch: step.ch, full: step.full }));
        return { from: 'appliance', to: step.guest, label: step.full ? `${step.ch}: the reader stops reading; the window is full` : `${step.ch}: the reader reads; the window opens` };
      case 'process': {
        const path = `session:${step.sessionId}/process`;
        const written = simState<ProcessSim>(w.systems[step.guest]!, path)!.written;
        this.#run(w, step.guest, (s) => s.send(path, { type: `sim.${step.action}` }));
        if (step.action === 'exit' && step.sessionId === Object.keys(this.#scripts[step.guest]!)[0]) this.#stopsDue(w, step.guest);
        const label =
          step.action === 'start' ? `${step.sessionId} started` : step.action === 'write' ? `${step.sessionId} writes ${step.sessionId}:${written}` : `${step.sessionId} exits ${this.#scripts[step.guest]![step.sessionId]!.exitCode}`;
        return { from: 'process', to: step.guest, label };
      }
      case 'client':
        return this.#client(w, step.attach, step.action);
    }
  }

  #deliverToAppliance(w: WorldState, guest: string): TraceStep {
    const path = this.#applianceReceiver(w, guest)!;
    const line = w.lines[guest]!;
    const wire = line.toAppliance.shift()!;
    const connection = line.connection!;
    const trace = { from: guest, to: 'appliance', label: describeWire(wire) };
    if (path.endsWith('/connection')) {
      this.#run(w, 'appliance', (s) => s.send(path, { type: 'sim.bytes', data: bytesOf(wire) }));
      return trace;
    }
    const msg = wire.kind === 'ssh' ? wire.msg : undefined;
    if (msg?.t === 'reply') {
      const owner = connection.replies.shift();
      if (owner?.kind === 'ping') {
        this.#run(w, 'appliance', (s) => s.send('connectionMap', { type: 'PING_REPLY', linkId: owner.linkId, containerId: owner.containerId, ids: msg.ids ?? [] }));
        return { ...trace, label: `${trace.label} (liveness check)` };
      }
    }
    if (msg && 'ch' in msg) {
      const system = connection.channels[msg.ch];
      if (msg.t === 'exit') delete connection.channels[msg.ch];
      // A channel whose attach moved on (detached, or reopened elsewhere) is gone: its messages are dropped.
      if (system && simState<ChannelSim>(w.systems[system]!, 'channel')?.ch === msg.ch) {
        this.#run(w, system, (s) => s.send('channel', { type: 'sim.recv', msg }));
        return { ...trace, to: system };
      }
      return { ...trace, label: `${trace.label} (no one listens)` };
    }
    this.#run(w, 'appliance', (s) => s.send(path, { type: 'sim.recv', wire }));
    return trace;
  }

  #client(w: WorldState, attach: number, action: 'attach' | 'stdin' | 'closeStdin' | 'detach'): TraceStep {
    const script = this.scenario.attaches[attach]!;
    const progress = w.attaches[attach]!;
    const system = attachSystem(attach);
    const to = system;
    switch (action) {
      case 'attach':
        progress.started = true;
        w.systems[system] = this.#start(system, { containerId: script.containerId, offset: script.logs ? 0 : 'live', timeoutMs: this.scenario.attachTimeoutMs });
        return { from: 'client', to, label: `attach ${script.containerId}${script.logs ? ' --logs' : ''}` };
      case 'stdin':
        progress.stdinSent++;
        this.#run(w, system, (s) => s.send('', { type: 'STDIN', data: STDIN }));
        return { from: 'client', to, label: 'stdin' };
      case 'closeStdin':
        progress.closedStdin = true;
        this.#run(w, system, (s) => s.send('', { type: 'CLOSE_STDIN' }));
        return { from: 'client', to, label: 'half-close' };
      case 'detach':
        progress.detached = true;
        this.#run(w, system, (s) => s.send('', { type: 'DETACH' }));
        return { from: 'client', to, label: 'detach' };
    }
  }

  /** The primary of `guest` exited: every other session still running must end within its stop timeout from now. */
  #stopsDue(w: WorldState, guest: string): void {
    const sessions = guestConfig(this.#scripts[guest]!).sessions;
    const due: Record<string, number> = {};
    for (const [sessionId, spec] of Object.entries(sessions)) {
      const process = simState<ProcessSim>(w.systems[guest]!, `session:${sessionId}/process`);
      if (process?.launched && !process.exited) due[sessionId] = w.now + spec.stopTimeout * 1000;
    }
    w.stopDue[guest] = due;
  }

  /** A stdin chunk on channel `ch` (named `<attach>.<n>`) is lost with its link. */
  #stdinLost(w: WorldState, ch: string): void {
    const progress = w.attaches[attachIndex(ch.slice(0, ch.indexOf('.')))];
    if (progress) progress.stdinLost++;
  }

  /** The hypervisor's connection of `guest` is gone: in-flight bytes are lost and the appliance's side learns of it. */
  #dropConnection(w: WorldState, guest: string, reason: string): void {
    const line = w.lines[guest]!;
    const connection = line.connection;
    if (!connection) return;
    line.connection = undefined;
    for (const wire of line.toGuest) if (wire.kind === 'ssh' && wire.msg.t === 'stdin') this.#stdinLost(w, wire.msg.ch);
    line.toGuest = [];
    line.toAppliance = [];
    if (connection.link) {
      const sim = simState<ConnectionSim>(w.systems.appliance!, `${connection.link}/connection`);
      if (sim && !sim.handedOff) mail(w, 'appliance', { path: `${connection.link}/connection`, event: { type: 'sim.closed' }, from: 'hypervisor' });
      else if (sim) mail(w, 'appliance', { path: `${connection.link}/ssh/client`, event: { type: 'sim.closed', reason: `ssh: ${reason}` }, from: 'hypervisor' });
    }
    for (const owner of connection.replies) {
      if (owner.kind === 'ping') mail(w, 'appliance', { path: 'connectionMap', event: { type: 'PING_FAILED', linkId: owner.linkId, containerId: owner.containerId, reason }, from: 'hypervisor' });
    }
    for (const system of new Set(Object.values(connection.channels))) mail(w, system, { path: 'channel', event: { type: 'sim.lost', reason }, from: 'hypervisor' });
  }

  // ---- running a system ----------------------------------------------------------

  #logic(system: string): { logic: AnyActorLogic; systemId?: string } {
    // Each guest is an actor system of its own, whose root is `guest` as in the bundle.
    const guest = this.#guests[system];
    if (guest) return { logic: guest, systemId: 'guest' };
    if (system === 'appliance') return { logic: this.#appliance, systemId: 'appliance' };
    return { logic: this.#attach };
  }

  #start(system: string, input: unknown): SystemState {
    return this.#within(system, () => this.#runs.run(system, undefined, input, this.#draft!.now, () => {}, () => this.#live(system, undefined, input)));
  }

  #run(w: WorldState, system: string, act: (live: Delivery) => unknown): void {
    const state = w.systems[system];
    if (!state) return;
    w.systems[system] = this.#within(system, () => this.#runs.run(system, state, undefined, w.now, act, () => this.#live(system, state)));
    const status = statusOf(w.systems[system]!);
    if (status === 'error') {
      const error = (w.systems[system]!.snapshot as { error?: unknown }).error;
      w.violations['no-crash'] ??= `the ${system} actor system failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Runs `fn` with `system` as the one whose simulations post. */
  #within<T>(system: string, fn: () => T): T {
    const previous = this.#system;
    this.#system = system;
    try {
      return fn();
    } finally {
      this.#system = previous;
    }
  }

  #live(system: string, state: SystemState | undefined, input?: unknown): LiveSystem {
    const { logic, systemId } = this.#logic(system);
    const live = new LiveSystem(logic, state, this.#draft!.now, { systemId, input, inspect: this.#watchdog(system) });
    if (system === 'appliance') this.#listenToMap(live);
    return live;
  }

  /**
   * Counts the events and microsteps of one step inside a system. Machines
   * that keep sending each other events, or an eventless transition that
   * keeps firing, would hang the search: past the limit the step is stopped
   * by an error (the system fails) and recorded.
   */
  #watchdog(system: string): (event: InspectionEvent) => void {
    let events = 0;
    const recent: string[] = [];
    return (inspection) => {
      // Events between actors, and microsteps (an eventless transition that keeps firing takes no event).
      if (inspection.type !== '@xstate.event' && inspection.type !== '@xstate.microstep') return;
      const what = inspection.type === '@xstate.event' ? inspection.event.type : `microstep to ${JSON.stringify((inspection.snapshot as { value?: unknown }).value)}`;
      recent.push(`${what} at ${pathOf(inspection.actorRef as AnyActorRef) || system}`);
      if (recent.length > 6) recent.shift();
      if (++events <= MAX_EVENTS_PER_STEP) return;
      const message = `the ${system} actor system ran away: more than ${MAX_EVENTS_PER_STEP} events and microsteps in one step, ending with ${recent.join(', ')}`;
      this.#runs.effect(this.#ranAway, message);
      throw new Error(message);
    };
  }

  readonly #ranAway = (message: string) => void (this.#draft!.violations['no-crash'] ??= message);

  /** The connection map answers lookups by emitting: the answers go to the attach that asked. */
  #listenToMap(live: LiveSystem): void {
    live.find('connectionMap')?.on('*', (emitted: ConnectionMapEmitted) => this.#runs.effect(this.#mapEmitted, emitted));
  }

  readonly #mapEmitted = (emitted: ConnectionMapEmitted): void => {
    const w = this.#draft!;
    if (emitted.type === 'RESOLVED' && !Object.values(w.lines).some((line) => line.connection?.linkId === emitted.linkId)) {
      w.violations['one-live-owner'] ??= `the connection map answered lookup ${emitted.requestId} of ${emitted.containerId} with link ${emitted.linkId}, whose connection is gone`;
    }
    const carrier = emitted.type === 'FAILED' ? servingCarrier(w, this.scenario, emitted.containerId) : undefined;
    if (carrier && emitted.type === 'FAILED') w.violations['link-found'] ??= `the connection map failed lookup ${emitted.requestId} of ${emitted.containerId} ("${emitted.message}") while link ${carrier} carries it, up and with nothing in flight`;
    const [system, n] = emitted.requestId.split('.');
    const progress = w.attaches[attachIndex(system!)];
    if (!progress || progress.lookups !== Number(n) || progress.lookupDue === undefined) return;
    const event = emitted.type === 'RESOLVED' ? { type: 'sim.resolved', linkId: emitted.linkId } : { type: 'sim.failed', message: emitted.message };
    mail(w, system!, { path: 'lookup', event, from: 'appliance' });
  };

  // ---- what the simulations hand over ---------------------------------------------

  #post(item: Post, from: string): unknown {
    const w = this.#draft;
    if (!w) return undefined;
    const system = this.#system;
    const progress = system.startsWith('attach') ? w.attaches[attachIndex(system)] : undefined;
    // The guest line whose live connection has this handle or link; a socket the appliance still uses after the hypervisor dropped it has none.
    const lineWhere = (matches: (c: Connection) => boolean): [string, Line & { connection: Connection }] | undefined =>
      Object.entries(w.lines).find((entry): entry is [string, Line & { connection: Connection }] => entry[1].connection !== undefined && matches(entry[1].connection));
    const byHandle = (handle: string) => lineWhere((c) => c.handle === handle);
    const byLink = (linkId: string) => lineWhere((c) => c.linkId === linkId)?.[1];
    switch (item.kind) {
      case 'toAppliance':
        w.lines[system]!.toAppliance.push(item.wire);
        return undefined;
      case 'toGuest': {
        const line = byHandle(item.handle)?.[1];
        if (!line) return undefined;
        line.toGuest.push(item.wire);
        if (item.owner) line.connection.replies.push(item.owner);
        return undefined;
      }
      case 'connection': {
        const connection = byHandle(item.handle)?.[1].connection;
        if (connection) connection.link = from.split('/').slice(0, -1).join('/');
        return undefined;
      }
      case 'register': {
        const connection = byHandle(item.handle)?.[1].connection;
        if (connection) connection.linkId = item.linkId;
        return undefined;
      }
      case 'socketClosed': {
        const guest = byHandle(item.handle)?.[0];
        if (guest) this.#dropConnection(w, guest, 'the appliance closed the connection');
        return undefined;
      }
      case 'endLink': {
        const connection = byLink(item.linkId)?.connection;
        if (connection) {
          mail(w, 'appliance', { path: `${connection.link}/ssh/client`, event: { type: 'sim.closed', reason: 'ended by the connection map' }, from: 'appliance' });
        }
        return undefined;
      }
      case 'ping': {
        const line = byLink(item.linkId);
        if (line) {
          line.toGuest.push(ssh({ t: 'query', what: 'ids' }));
          line.connection.replies.push({ kind: 'ping', linkId: item.linkId, containerId: item.containerId });
        } else {
          mail(w, 'appliance', { path: 'connectionMap', event: { type: 'PING_FAILED', linkId: item.linkId, containerId: item.containerId, reason: `link ${item.linkId} has no SSH connection` }, from: 'appliance' });
        }
        return undefined;
      }
      case 'openChannel': {
        const line = byLink(item.linkId);
        if (!line || !progress) {
          mail(w, system, { path: 'channel', event: { type: 'sim.lost', reason: `link ${item.linkId} is gone` }, from: 'appliance' });
          return undefined;
        }
        const ch = `${system}.${++progress.channels}`;
        line.connection.channels[ch] = system;
        line.toGuest.push(ssh({ t: 'open', ch, containerId: item.containerId, offset: item.offset }));
        return ch;
      }
      case 'channel': {
        const line = byLink(item.linkId);
        if (line) line.toGuest.push(ssh(item.msg));
        else if (item.msg.t === 'stdin' && progress) progress.stdinLost++;
        return undefined;
      }
      case 'stdinLost':
        this.#stdinLost(w, item.ch);
        return undefined;
      case 'lookup': {
        if (!progress) return undefined;
        const requestId = `${system}.${++progress.lookups}`;
        // Due from when the map sees it (the mail step sets it); until then, waiting but not yet timed.
        progress.lookupDue = Number.POSITIVE_INFINITY;
        mail(w, 'appliance', { path: 'connectionMap', event: { type: 'LOOKUP', requestId, containerId: item.containerId, timeoutMs: item.timeoutMs }, from: system });
        return undefined;
      }
      case 'lookupSettled':
        if (progress) progress.lookupDue = undefined;
        return undefined;
      case 'lookupCancelled':
        if (progress?.lookupDue !== undefined) {
          mail(w, 'appliance', { path: 'connectionMap', event: { type: 'CANCEL', requestId: `${system}.${progress.lookups}` }, from: system });
          progress.lookupDue = undefined;
        }
        return undefined;
      case 'unblocked':
        w.unblocked[system] = { ...w.unblocked[system], [item.sessionId]: true };
        return undefined;
      case 'opened':
        if (progress) progress.openedAt = item.offset;
        return undefined;
      case 'received': {
        if (!progress) return undefined;
        if (progress.exitDelivered) w.violations['output-after-exit'] ??= `${system} received ${item.label} after the exit status`;
        if (progress.openedAt !== undefined) {
          const at = item.label.lastIndexOf(':');
          const start = chunkStart(item.label.slice(0, at), Number(item.label.slice(at + 1)));
          if (start < progress.openedAt) w.violations['opened-offset'] ??= `${system}'s channel opened at offset ${progress.openedAt}, and its first chunk ${item.label} starts at ${start}`;
          delete progress.openedAt;
        }
        progress.received.push(item.label);
        return undefined;
      }
      case 'exitDelivered':
        if (progress) progress.exitDelivered = true;
        return undefined;
      case 'violation':
        w.violations[item.property] ??= item.message;
        return undefined;
    }
  }
}

// ---- helpers -------------------------------------------------------------------


const ssh = (msg: SshMessage): Wire => ({ kind: 'ssh', msg });
const isSyn = (wire: Wire) => wire.kind === 'bytes' && wire.data[0] === SYN;
const bytesOf = (wire: Wire) => (wire.kind === 'bytes' ? wire.data : noiseOf(wire.msg));

function mail(w: WorldState, system: string, message: Mail): void {
  (w.mail[system] ??= []).push(message);
}

/** A world to change: everything but the (immutable) system states is copied. */
function draftOf(world: WorldState): WorldState {
  const lineOf = ({ connection, connections, toGuest, toAppliance }: Line): Line => ({
    connections,
    toGuest: [...toGuest],
    toAppliance: [...toAppliance],
    connection: connection && { ...connection, replies: [...connection.replies], channels: { ...connection.channels } },
  });
  return {
    systems: { ...world.systems },
    mail: Object.fromEntries(Object.entries(world.mail).map(([k, v]) => [k, [...v]])),
    lines: Object.fromEntries(Object.entries(world.lines).map(([guest, line]) => [guest, lineOf(line)])),
    attaches: world.attaches.map((a) => ({ ...a, received: [...a.received] })),
    faults: { ...world.faults },
    now: world.now,
    stopDue: { ...world.stopDue },
    unblocked: { ...world.unblocked },
    violations: { ...world.violations },
  };
}

/** The timers that can fire next: the earliest due, in every system. */
function nextTimers(w: WorldState): Array<[string, SystemState['timers'][number]]> {
  let due = Number.POSITIVE_INFINITY;
  for (const state of Object.values(w.systems)) for (const t of state.timers) due = Math.min(due, t.due);
  const next: Array<[string, SystemState['timers'][number]]> = [];
  for (const [system, state] of Object.entries(w.systems)) for (const t of state.timers) if (t.due === due) next.push([system, t]);
  return next;
}

interface PersistedNode {
  status?: string;
  value?: unknown;
  context?: unknown;
  children?: Record<string, { snapshot: PersistedNode }>;
}

/** The link ID of `guest`'s connection when it serves: the SSH session up at both ends and nothing in flight on the line. */
export function servingLink(w: WorldState, guest: string): string | undefined {
  const line = w.lines[guest]!;
  const { connection } = line;
  if (!connection?.link || !connection.linkId || line.toGuest.length > 0 || line.toAppliance.length > 0) return undefined;
  const server = simState<ServerSim>(w.systems[guest]!, 'link/ssh/server');
  const client = simState<ClientSim>(w.systems.appliance!, `${connection.link}/ssh/client`);
  return server?.ready && !server.ended && client?.phase === 'ready' ? connection.linkId : undefined;
}

/** The link of the containerVM that runs `containerId` when it serves and its guest knows the container. */
export function servingCarrier(w: WorldState, scenario: Scenario, containerId: string): string | undefined {
  const guest = holderOf(scenario, containerId);
  const link = guest === undefined ? undefined : servingLink(w, guest);
  return link && simState<ServerSim>(w.systems[guest!]!, 'link/ssh/server')!.info.some((c) => c.id === containerId) ? link : undefined;
}

/** The persisted snapshot of the actor at `path` in a system ("" for the root). */
export function nodeAt(state: SystemState, path: string): PersistedNode | undefined {
  let node = state.snapshot as PersistedNode | undefined;
  if (path === '') return node;
  for (const id of path.split('/')) {
    node = node?.children?.[id]?.snapshot;
    if (!node) return undefined;
  }
  return node;
}

/** A simulation's state (or a machine's context) at `path`. */
export function simState<S>(state: SystemState, path: string): S | undefined {
  return nodeAt(state, path)?.context as S | undefined;
}

export function statusOf(state: SystemState): string | undefined {
  return nodeAt(state, '')?.status;
}

export function describeWire(wire: Wire): string {
  if (wire.kind === 'bytes') return describeBytes(wire.data);
  const { t, ...rest } = wire.msg;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${v instanceof Uint8Array ? JSON.stringify(new TextDecoder().decode(v)) : typeof v === 'object' ? (Array.isArray(v) ? `[${v.map((x) => (typeof x === 'object' ? x.id : x)).join(',')}]` : JSON.stringify(v)) : v}`)
    .join(' ');
  return `ssh ${t}${fields ? ' ' + fields : ''}`;
}

/** Handshake frames by name (shared/handshake.ts), anything else as hex. */
function describeBytes(data: Uint8Array): string {
  const hex = (b: number) => b.toString(16).padStart(2, '0');
  const [first, second, third] = data;
  if (data.length === 2 && first === SYN) return `SYN p=${hex(second!)}`;
  if (data.length === 3 && first === ACK) return `SYN-ACK p+1=${hex(second!)} q=${hex(third!)}`;
  if (data.length === 2 && first === ACK) return `ACK q+1=${hex(second!)}`;
  if (data.length === 1 && first === ACK) return 'ACK (line clean)';
  if (data.length === 1 && first === NAK) return 'NAK';
  if (data.length === PROBE.length && data.every((b, i) => b === PROBE[i])) return 'probe/echo';
  return `bytes ${Array.from(data.subarray(0, 8), hex).join(' ')}${data.length > 8 ? ' …' : ''}`;
}

function describeEvent(event: { type: string; [k: string]: unknown }): string {
  const fields = Object.entries(event)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');
  return `${event.type}${fields ? ' ' + fields : ''}`;
}
