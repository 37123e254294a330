import { PassThrough, Writable } from 'node:stream';
import { createActor, fromCallback, toPromise, type Actor, type AnyActorRef } from 'xstate';
import { createAttachChannelActor } from '../actors/attachChannel.ts';
import { createLookupActor } from '../actors/lookup.ts';
import type { LinkRegistry } from '../actors/links.ts';
import type { applianceMachine, InventoryEntry } from '../machines/appliance.ts';
import { describe, type ConnectionMapContext } from '../machines/connectionMap.ts';
import type { AttachOutcome, ContainerChannelEvent, UserCommand } from '../machines/containerChannel.ts';
import type { CommandFailure, GuestCommand, GuestCommandResult } from '../machines/sshSession.ts';
import type { SessionConfig } from '../shared/config.ts';
import type { Log } from '../shared/log.ts';
import { isRunning } from './api/containerState.ts';
import { ApiError, noSuchContainer } from './api/errors.ts';
import type { Attachment, AttachOptions, ContainerControl, ContainerDirectory, ContainerRecord, WaitCondition } from './api/directory.ts';
import type { RecordWithSettings } from './api/containerViews.ts';
import type { LiveFeed } from './api/liveFeed.ts';
import { composeAttach } from './composition.ts';

export interface DirectoryOptions {
  registry: LinkRegistry;
  /** Each attach's container channel is shown there while it lives, as `appliance/attach/<n>`. */
  feed: Pick<LiveFeed, 'addSystem'>;
  log: Log;
  /** How long an attach, a kill or a stop waits for a link carrying its container. */
  attachTimeoutMs: number;
  /** Containers created through the API, listed before their guests report them. */
  created?: CreatedContainers;
  /**
   * Records in the trust store that session `id` is containerVM `vm`'s (an
   * exec about to start there), so that after an appliance restart its
   * guest may still report it (appliance/trust.ts assignToGuest).
   */
  assign: (vm: string, id: string) => void;
}

/** What the directory needs of the containers the API creates (appliance/containerStore.ts). */
export interface CreatedContainers {
  /** Each such container as the API knows it, for when no guest has reported it (yet), with its create-time settings. */
  records(): RecordWithSettings[];
  /**
   * Whether what link `linkId` reported of containerVM `vm` no longer shows:
   * the container was removed, or it was started again since, and the
   * inventory still holds the reports of its earlier run.
   */
  hides(vm: string, linkId: string): boolean;
  /** Calls `listener` after every change; returns what stops it. */
  subscribe(listener: () => void): () => void;
}

/**
 * The Docker API's view of the appliance: the inventory the guests report,
 * attaches run by the container channel machine over the connection map, and
 * kill and stop sent by the appliance machine to the link the map names.
 */
export function createDirectory(appliance: Actor<typeof applianceMachine>, options: DirectoryOptions): ContainerDirectory & ContainerControl {
  const firstSeen = new Map<string, string>();
  const attached = new Map<string, Set<AnyActorRef>>();
  let attaches = 0;
  const map = () => appliance.system.get('connectionMap') as AnyActorRef;

  const lookup = createLookupActor(map);
  const channel = createAttachChannelActor(options.registry, options.log);

  const entries = (): Record<string, InventoryEntry> => {
    const all = appliance.getSnapshot().context.containers;
    const created = options.created;
    return created ? Object.fromEntries(Object.entries(all).filter(([, entry]) => !created.hides(entry.vm, entry.linkId))) : all;
  };
  const record = (entry: InventoryEntry): ContainerRecord => {
    const { info } = entry;
    if (!firstSeen.has(info.id)) firstSeen.set(info.id, info.startedAt ?? new Date().toISOString());
    return {
      ...info,
      // A VM's container is the session with the VM's own ID (its host key names the VM): a guest cannot make an exec a container.
      primary: info.id === entry.vm,
      created: firstSeen.get(info.id)!,
      vm: entry.vm,
      link: { up: entry.linkUp, detail: entry.linkDetail },
    };
  };
  /**
   * What the guests report, then what the API created and no guest has
   * reported. Of a container the API created, its name (a rename is the
   * API's), creation time and settings are the API's; and once the API knows
   * its containerVM is gone, a guest's last word that it runs is out of date.
   */
  const records = (): RecordWithSettings[] => {
    const created = new Map((options.created?.records() ?? []).map((r) => [r.id, r]));
    const reported = Object.values(entries()).map((entry): RecordWithSettings => {
      const own = created.get(entry.info.id);
      created.delete(entry.info.id);
      if (!own) return record(entry);
      const guest = record(entry);
      if (own.state === 'exited' && !isOver(entry)) return { ...own, link: guest.link };
      return { ...guest, name: own.name, created: own.created, settings: own.settings };
    });
    return [...reported, ...created.values()];
  };
  /**
   * By full ID, then by name, then by a unique ID prefix, as Docker looks
   * up. A name the API gave wins over one a guest reports: a guest names its
   * sessions as it likes, and must not take a container's name.
   */
  const find = (ref: string): ContainerRecord | undefined => {
    const all = records();
    const name = ref.replace(/^\//, '');
    const named = all.filter((r) => r.name === name);
    const apiNamed = () => new Set((options.created?.records() ?? []).map((r) => r.id));
    const exact = all.find((r) => r.id === ref) ?? (named.length > 1 ? named.find((r) => apiNamed().has(r.id)) : undefined) ?? named[0];
    if (exact) return exact;
    const prefixed = all.filter((r) => r.id.startsWith(ref));
    return prefixed.length === 1 ? prefixed[0] : undefined;
  };
  const mustFind = (ref: string) => find(ref) ?? Promise.reject(noSuchContainer(ref, describe(map().getSnapshot().context as ConnectionMapContext, ref)));

  async function attach(id: string, want: AttachOptions): Promise<Attachment> {
    const container = await mustFind(id);
    // Nothing could answer before the attach's deadline: an exited container's guest is shut down, or not there to ask.
    if (!isRunning(container) && container.state !== 'created' && container.state !== 'blocked' && !container.link.up) {
      throw new ApiError(409, `You cannot attach to a stopped container, start it first (container ${id} exited with code ${container.exitCode ?? 0}; its containerVM's link is down)`);
    }
    const tty = container.tty;
    const stdout = new PassThrough();
    const stderr = tty ? undefined : new PassThrough();
    let actor: Actor<ReturnType<typeof composeAttach>>;
    let opened: () => void;
    const ready = new Promise<void>((resolve) => (opened = resolve));

    // The client's input waits here (its connection paused) while the machine says to hold it.
    let holdingStdin = false;
    let heldWrite: (() => void) | undefined;
    const releaseStdin = () => {
      holdingStdin = false;
      const write = heldWrite;
      heldWrite = undefined;
      write?.();
    };
    const user = fromCallback<UserCommand>(({ receive, sendBack }) => {
      const blocked = new Set<PassThrough>();
      receive((command) => {
        if (command.type === 'STDIN_HOLD') return void (holdingStdin = true);
        if (command.type === 'STDIN_GO') return releaseStdin();
        if (command.type === 'ATTACHED') {
          releaseStdin();
          return opened();
        }
        const wanted = command.stream === 'stderr' ? want.stderr : want.stdout;
        const target = command.stream === 'stderr' && stderr ? stderr : stdout;
        if (!wanted || target.write(command.data)) return;
        // The user reads slower than the container writes: hold the channel.
        if (blocked.size === 0) sendBack({ type: 'USER_BLOCKED' } satisfies ContainerChannelEvent);
        blocked.add(target);
        target.once('drain', () => {
          blocked.delete(target);
          if (blocked.size === 0) sendBack({ type: 'USER_READY' } satisfies ContainerChannelEvent);
        });
      });
    });
    actor = createActor(composeAttach({ lookup, channel, user }), {
      input: { containerId: container.id, offset: want.logs ? 0 : 'live', timeoutMs: options.attachTimeoutMs },
    });
    const refs = attached.get(container.id) ?? new Set();
    attached.set(container.id, refs.add(actor));
    // Its own actor system, not a child of the appliance: the feed is told of it apart.
    const unlist = options.feed.addSystem('appliance', `appliance/attach/${++attaches}`, actor);
    const outcome = toPromise(actor).finally(() => {
      unlist();
      refs.delete(actor);
      // Input held for a channel that is gone now goes nowhere; the stream must not wait for it.
      releaseStdin();
      stdout.end();
      stderr?.end();
    });
    actor.start();
    const first = await Promise.race([ready.then(() => undefined), outcome]);
    if (first) throw refusal(container, first);

    const stdin =
      want.stdin && container.openStdin
        ? new Writable({
            write(chunk: Buffer, _encoding, done) {
              actor.send({ type: 'STDIN', data: chunk });
              if (holdingStdin) heldWrite = done;
              else done();
            },
            final(done) {
              actor.send({ type: 'CLOSE_STDIN' });
              done();
            },
          })
        : undefined;
    return {
      tty,
      stdout,
      stderr,
      stdin,
      detach: () => actor.send({ type: 'DETACH' }),
      done: outcome.then((o) => ({ exitCode: o.exitCode, signal: o.signal, detached: o.outcome === 'detached' })),
    };
  }

  async function resize(id: string, size: { cols: number; rows: number }): Promise<void> {
    const container = await mustFind(id);
    // With nothing attached there is no channel to carry it; Docker answers 200 all the same, and each attach sends its own size.
    for (const ref of attached.get(container.id) ?? []) ref.send({ type: 'RESIZE', ...size });
  }

  /**
   * Docker's conditions: `not-running` is met at once by a container that is
   * not running (a created one too), `next-exit` by the next time a running
   * container stops (one not running must start first), `removed` by its
   * removal. A removal ends every wait, with the last status known, so no
   * wait outlives its container. A container only a guest reports cannot be
   * removed through the API: `removed` waits for its exit instead.
   */
  async function wait(id: string, condition: WaitCondition): Promise<{ exitCode: number; error?: string }> {
    const container = await mustFind(id);
    const removable = options.created?.records().some((r) => r.id === container.id) ?? false;
    const until = condition === 'removed' && !removable ? 'not-running' : condition;
    if (until === 'not-running' && !isRunning(container)) return result(container);
    let last = container;
    let sawRunning = isRunning(container);
    return new Promise((resolve) => {
      let stopWatching = () => {};
      const check = () => {
        const now = find(container.id);
        // Ended, not merely not running: a restarted container's guest first reports it created.
        const ended = now !== undefined && (now.state === 'exited' || now.state === 'failed');
        if (now === undefined || (until !== 'removed' && ended && (until === 'not-running' || sawRunning))) {
          stopWatching();
          resolve(result(now ?? last));
          return;
        }
        last = now;
        if (isRunning(now)) sawRunning = true;
      };
      const subscription = appliance.subscribe(check);
      const unsubscribe = options.created?.subscribe(check);
      stopWatching = () => {
        subscription.unsubscribe();
        unsubscribe?.();
      };
    });
  }

  let commands = 0;
  /** Carries a command to the guest on the link the connection map names for the container; never rejects. */
  async function command(container: ContainerRecord, request: GuestCommand): Promise<GuestCommandResult> {
    let linkId: string;
    try {
      ({ linkId } = await toPromise(createActor(lookup, { input: { containerId: container.id, timeoutMs: options.attachTimeoutMs } }).start()));
    } catch (err) {
      return { ok: false, failure: { kind: 'link', message: (err as Error).message } };
    }
    const requestId = `command${++commands}`;
    return new Promise((resolve) => {
      // The appliance answers every command exactly once, possibly while it takes it in.
      const subscription = appliance.on('COMMAND_DONE', (done) => {
        if (done.requestId !== requestId) return;
        subscription.unsubscribe();
        resolve(done.result);
      });
      appliance.send({ type: 'GUEST_COMMAND', requestId, linkId, command: request });
    });
  }

  async function kill(id: string, signal: string, { group = false }: { group?: boolean } = {}): Promise<void> {
    const container = await mustFind(id);
    if (!isRunning(container)) throw new ApiError(409, `Container ${container.id} is not running`);
    const result = await command(container, { kind: 'kill', containerId: container.id, signal, group });
    if (!result.ok) throw commandError('kill', container, result.failure, signal);
  }

  /**
   * Resolves when the container's guest reports it over; fails when its link
   * goes down first, since the exit can then not be known. Watch before
   * asking: the exit may be reported before the answer.
   */
  function watchExit(container: ContainerRecord) {
    let unsubscribe = () => {};
    const over = new Promise<void>((resolve, reject) => {
      const check = (entry: InventoryEntry | undefined): boolean => {
        if (isOver(entry)) resolve();
        else if (entry && !entry.linkUp) reject(new ApiError(504, `Cannot stop container ${container.id}: it did not report its exit before its link went down (${entry.linkDetail})`));
        else return false;
        return true;
      };
      if (check(entries()[container.id])) return;
      const subscription = appliance.subscribe((snapshot) => {
        if (check(snapshot.context.containers[container.id])) subscription.unsubscribe();
      });
      unsubscribe = () => subscription.unsubscribe();
    });
    // Whoever stops waiting early has had their answer; a later failure is nobody's news.
    over.catch(() => {});
    return { over, cancel: () => unsubscribe() };
  }

  async function stop(id: string, { timeout, signal }: { timeout?: number; signal?: string } = {}): Promise<'stopped' | 'not-running'> {
    const container = await mustFind(id);
    if (isOver(entries()[container.id])) return 'not-running';
    const exit = watchExit(container);
    try {
      const result = await command(container, {
        kind: 'stop',
        containerId: container.id,
        ...(signal === undefined ? {} : { signal }),
        ...(timeout === undefined ? {} : { timeout }),
      });
      if (!result.ok) {
        // It ended between the inventory's word and the guest's.
        if (result.failure.kind === 'not-running') return 'not-running';
        throw commandError('stop', container, result.failure, signal);
      }
      await exit.over;
      return 'stopped';
    } finally {
      exit.cancel();
    }
  }

  async function exec(id: string, sessionId: string, spec: SessionConfig, size?: { cols: number; rows: number }): Promise<ContainerRecord> {
    const named = await mustFind(id);
    // The container is its VM's primary session, whichever session was named.
    const container = find(named.vm) ?? named;
    if (!isRunning(container)) throw new ApiError(409, `Container ${container.id} is not running`);
    // Watched before asking: the guest may list the session before its answer arrives.
    let resolveListed: (record: ContainerRecord) => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    const listed = new Promise<ContainerRecord>((resolve, reject) => {
      resolveListed = resolve;
      timer = setTimeout(() => reject(new ApiError(504, `Cannot exec in container ${container.id}: its guest took the exec ${sessionId} but has not listed it after ${options.attachTimeoutMs} ms`)), options.attachTimeoutMs);
    });
    listed.catch(() => {});
    const check = () => {
      const entry = entries()[sessionId];
      if (entry) resolveListed(record(entry));
    };
    const subscription = appliance.subscribe(check);
    try {
      try {
        options.assign(container.vm, sessionId);
      } catch (err) {
        throw new ApiError(500, `Cannot exec in container ${container.id}: ${(err as Error).message}`);
      }
      const result = await command(container, { kind: 'exec', containerId: container.id, sessionId, spec, ...(size === undefined ? {} : { size }) });
      if (!result.ok) throw commandError('exec', container, result.failure);
      check();
      return await listed;
    } finally {
      clearTimeout(timer);
      subscription.unsubscribe();
    }
  }

  return {
    list: records,
    find,
    explainUnknown: (ref) => describe(map().getSnapshot().context as ConnectionMapContext, ref),
    attach,
    resize,
    wait,
    kill,
    stop,
    exec,
  };
}

const isOver = (entry: InventoryEntry | undefined) => entry?.info.state === 'exited' || entry?.info.state === 'failed';

/** A command the guest did not carry out, as the HTTP error Docker would give. */
function commandError(what: 'kill' | 'stop' | 'exec', container: ContainerRecord, failure: CommandFailure, signal?: string): ApiError {
  switch (failure.kind) {
    case 'unknown-id':
      return noSuchContainer(container.id, failure.message);
    case 'not-running':
      return new ApiError(409, `Container ${container.id} is not running (${failure.message})`);
    case 'unknown-signal':
      return new ApiError(400, `Invalid signal: ${signal} (${failure.message})`);
    case 'link':
      return new ApiError(504, `Cannot ${what} container ${container.id}: ${failure.message}`);
    case 'malformed':
      // An exec's spec is the user's; anything else malformed is tether's own doing.
      return new ApiError(what === 'exec' ? 400 : 500, `Cannot ${what} container ${container.id}: ${failure.message}`);
    case 'refused':
      return new ApiError(500, `Cannot ${what} container ${container.id}: ${failure.message}`);
  }
}

function result(record: ContainerRecord): { exitCode: number; error?: string } {
  return record.error ? { exitCode: record.exitCode ?? 127, error: record.error } : { exitCode: record.exitCode ?? 0 };
}

/** Why an attach ended before its channel opened, as the HTTP error Docker would give. */
function refusal(container: ContainerRecord, outcome: AttachOutcome): ApiError {
  switch (outcome.failure) {
    case 'unknown-id':
      return new ApiError(404, `No such container: ${container.id} (${outcome.error})`);
    case 'launch-failed':
      return new ApiError(409, `container ${container.id} failed to launch: ${outcome.error}`);
    case 'link':
      return new ApiError(504, `cannot attach to container ${container.id}: ${outcome.error}`);
    default:
      return new ApiError(409, `You cannot attach to a stopped container, start it first (container ${container.id} exited with code ${outcome.exitCode ?? 0})`);
  }
}
