/**
 * The container lifecycle: `POST /containers/create`, `POST
 * /containers/{id}/start`, `.../restart`, `.../rename` and `DELETE
 * /containers/{id}` (`docker create`, `docker start`, `docker run`,
 * `docker restart`, `docker rename`, `docker rm`).
 *
 * Creating a container resolves its image, builds the guest config
 * document its containerVM will boot from (docs/CONFIG.md) and keeps both
 * in the container store; starting it hands the document to the launcher,
 * again for each later start. Once the guest is up it reports the container
 * through the inventory like any other, so ps, inspect, attach, logs, wait,
 * kill, stop and exec need nothing from here but an attach that comes
 * before the start (below).
 *
 * containerVMs outlive the appliance: closing it leaves them running, and
 * the next appliance on the same state directory adopts them (`adopt`).
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ConfigError, DEFAULT_STOP_TIMEOUT, isHostname, parseSessionConfig, sessionDocument } from '../../shared/config.ts';
import { MAX_STOP_TIMEOUT } from '../../shared/wire.ts';
import type { UsernsConfig } from '../../shared/security.ts';
import type { ContainerChanges, ContainerStore, CreateConfig, StoredContainer } from '../containerStore.ts';
import { AmbiguousImage, HOST_IMAGE, type ImageStore, type StoredImage } from '../images.ts';
import type { LaunchedVm, Launcher, VmExit } from '../launcher.ts';
import { freeUsernsRange } from '../usernsRanges.ts';
import { isRunning } from './containerState.ts';
import { readJsonBody } from './body.ts';
import { findContainer } from './containers.ts';
import { parseHostSecurity, type HostSecuritySettings } from './hostSecurity.ts';
import type { Attachment, AttachOptions, ContainerControl, ContainerDirectory } from './directory.ts';
import { ApiError, messageOf } from './errors.ts';
import type { ApiLog } from './log.ts';
import { boolParam, intParam } from './query.ts';
import { json, type Reply } from './reply.ts';
import type { Route } from './router.ts';
import { withinStopDeadline } from './stopDeadline.ts';

export interface LifecycleOptions {
  readonly store: ContainerStore;
  readonly images: ImageStore;
  readonly launcher: Launcher;
  /** The directory over the inventory and the store (appliance/directory.ts). */
  readonly directory: ContainerDirectory & ContainerControl;
  /**
   * Resolves once a guest has reported container `id` in the inventory (on
   * a link the store does not hide): from then on it can be attached to.
   * Rejects once `signal` aborts.
   */
  readonly reported: (id: string, signal: AbortSignal) => Promise<void>;
  /** The links whose reports of containerVM `vm` the inventory holds. */
  readonly reportingLinks: (vm: string) => string[];
  readonly log: ApiLog;
}

/** Attaches to a container that has not started, waiting for its start. */
interface Waiting {
  attaches: number;
  readonly started: Promise<LaunchedVm>;
  start(vm: LaunchedVm): void;
  abandon(error: Error): void;
}

const DOCKER_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class Lifecycle {
  /** The directory the API serves: the given one, with attaches that may come before the start. */
  readonly directory: ContainerDirectory & ContainerControl;
  readonly #vms = new Map<string, LaunchedVm>();
  /** Set once the appliance has let go of its VMs: nothing of theirs is shut down or removed from here on. */
  #closed = false;
  readonly #waiting = new Map<string, Waiting>();
  /** Each container's open attaches: an auto-removed container goes once they have delivered its output. */
  readonly #attaches = new Map<string, Set<Promise<unknown>>>();

  constructor(private readonly options: LifecycleOptions) {
    const inner = options.directory;
    this.directory = {
      ...inner,
      attach: (id, want) => this.#attach(id, want),
      // A container whose containerVM is not running has nothing to stop; no guest could be asked.
      stop: async (id, stopOptions) => (this.#vmDown(id) ? 'not-running' : inner.stop(id, stopOptions)),
    };
  }

  /**
   * Takes over the containerVMs an earlier appliance on this state directory
   * launched: those still running are watched again (their guests reconnect
   * on their own), and shut down if their container has exited; those that
   * ended meanwhile are recorded as exited, or removed if due (--rm).
   */
  adopt(): void {
    for (const stored of this.options.store.list()) {
      if (stored.State === 'created') continue;
      // An exited container's exit came from its guest; its containerVM may have been on its way out when the last appliance closed.
      const vm = stored.State === 'exited' ? this.options.launcher.running(stored.Id) : this.options.launcher.adopt(stored.Id);
      if (vm && 'exited' in vm) this.#track(stored, vm);
      // --rm: its removal was due, or under way when the last appliance closed.
      else if (stored.HostConfig.AutoRemove) this.options.store.remove(stored.Id);
      else if (vm) this.#ended(stored, vm);
    }
  }

  async create(nameParam: string | null, body: unknown): Promise<{ Id: string; Warnings: string[] }> {
    const request = parseCreate(body);
    if (nameParam) checkName(nameParam);
    const image = await this.#image(request.image);
    const id = randomBytes(32).toString('hex');
    // Checked after the last await, and the record added in the same turn: two creates cannot both take a name.
    const name = nameParam ? nameParam.replace(/^\//, '') : `tether_${id.slice(0, 12)}`;
    this.#checkNameFree(name);
    const config = withImageDefaults(request.config, image.record.Config);
    const hostname = config.Hostname || id.slice(0, 12);
    this.options.store.add({
      Id: id,
      Name: name,
      Created: new Date().toISOString(),
      Image: request.image,
      ImageID: image.record.Id,
      Config: { ...config, Hostname: hostname },
      HostConfig: { AutoRemove: request.autoRemove, ...request.hostSecurity },
      GuestConfig: {
        id,
        name,
        hostname: checkHostname(hostname),
        rootfs: image === HOST_IMAGE ? 'host' : image.rootfs,
        sessions: { [id]: primarySession(config) },
        security: this.#withUserns(request.hostSecurity, request.security),
      },
      State: 'created',
    });
    return { Id: id, Warnings: [] };
  }

  /**
   * The container's security with a user namespace of its own, unless it
   * asked for the host's IDs or is privileged (which gives it the host's
   * devices: their owners must be the host's).
   */
  #withUserns(settings: HostSecuritySettings, security: Record<string, unknown>): Record<string, unknown> {
    if (settings.Privileged || settings.UsernsMode === 'host') return security;
    const taken = this.options.store.list().map((stored) => (stored.GuestConfig.security as { userns?: UsernsConfig } | undefined)?.userns?.hostId);
    return { ...security, userns: freeUsernsRange(taken.filter((id) => id !== undefined)) };
  }

  /** 'started', or 'running' when it already was. A container that has run is launched again from its stored config. */
  async start(ref: string): Promise<'started' | 'running'> {
    const found = findContainer(this.options.directory, ref);
    const stored = this.options.store.get(found.vm);
    if (isRunning(found)) return 'running';
    if (!stored) throw new ApiError(409, `cannot start container ${ref}: its containerVM was not created through this appliance's API, so the appliance cannot boot it`);
    // Its process has ended and its containerVM is on its way out (or held up by an attach that is not reading): a VM at a time.
    const previous = this.#vms.get(stored.Id);
    if (previous) await previous.stop();
    // Another start got here first (this one's record was read before its await).
    if (stored.State === 'running') return 'running';
    const id = stored.Id;
    const before: ContainerChanges = { State: stored.State, StartedAt: stored.StartedAt, ExitCode: stored.ExitCode, Error: stored.Error };
    // Before the launch's await: a second start meanwhile sees it started, and what the last run's guest reported shows no more.
    this.options.store.hideReports(id, this.options.reportingLinks(id));
    // As Docker's, FinishedAt stays the last run's until this one ends.
    this.options.store.update(stored, { State: 'running', StartedAt: new Date().toISOString(), ExitCode: undefined, Error: undefined });
    const waiting = this.#waiting.get(id);
    // Held until an attach that is waiting for this start opens, so it sees the first byte.
    const document = {
      ...stored.GuestConfig,
      name: stored.Name,
      sessions: { [id]: { ...primarySessionOf(stored), runBlock: (waiting?.attaches ?? 0) > 0 } },
    };
    let vm: LaunchedVm;
    try {
      vm = await this.options.launcher.launch(document, { source: `container ${stored.Name} (${id})` });
    } catch (error) {
      this.options.store.update(stored, before);
      throw new ApiError(500, `cannot start container ${ref}: ${messageOf(error)}`);
    }
    this.#waiting.delete(id);
    waiting?.start(vm);
    this.#track(stored, vm);
    // Answered once the guest has reported it, as Docker answers once the process runs: an exec or a stop right after reaches it.
    await untilReported(this.options.reported, id, vm).catch((error: unknown) => {
      throw new ApiError(500, `cannot start container ${ref}: ${messageOf(error)}; its console, ${this.options.launcher.consoleTail(id)}`);
    });
    return 'started';
  }

  /** `docker restart`: stop (with `timeout` seconds before SIGKILL) when running, then start. */
  async restart(ref: string, timeout: number | undefined): Promise<void> {
    const found = findContainer(this.options.directory, ref);
    if (!this.options.store.get(found.vm)) {
      throw new ApiError(409, `cannot restart container ${ref}: its containerVM was not created through this appliance's API, so the appliance cannot boot it again`);
    }
    try {
      const stopping = this.directory.stop(found.id, timeout === undefined ? {} : { timeout });
      await withinStopDeadline(stopping, ref, timeout ?? found.stopTimeout ?? DEFAULT_STOP_TIMEOUT);
    } catch (error) {
      // Its guest cannot be reached, or its process outlived SIGKILL: its init is told instead, and stops every session the same way.
      const vm = this.#vms.get(found.vm);
      if (!vm) throw error;
      this.options.log('warn', `restarting container ${ref}: ${messageOf(error)}; stopping its containerVM instead`);
      await vm.stop();
    }
    await this.start(found.vm);
  }

  /** `docker rename`: the new name shows in ps and inspect at once, and is the guest's from its next boot. */
  rename(ref: string, nameParam: string | null): void {
    if (!nameParam) throw new ApiError(400, `cannot rename container ${ref}: the new name is empty`);
    checkName(nameParam);
    const found = findContainer(this.options.directory, ref);
    const stored = this.options.store.get(found.vm);
    if (!stored || found.id !== stored.Id) {
      throw new ApiError(409, `cannot rename container ${ref}: its containerVM was not created through this appliance's API; its name is the one its guest config gives it`);
    }
    const name = nameParam.replace(/^\//, '');
    if (name === stored.Name) throw new ApiError(400, `Renaming a container with the same name as its current name (${name})`);
    this.#checkNameFree(name);
    this.options.store.update(stored, { Name: name });
  }

  async remove(ref: string, force: boolean): Promise<void> {
    const found = findContainer(this.options.directory, ref);
    const stored = this.options.store.get(found.vm);
    if (!stored) throw new ApiError(409, `cannot remove container ${ref}: its containerVM was not created through this appliance's API; stop it where it runs`);
    if (isRunning(found) && !force) {
      throw new ApiError(409, `You cannot remove a running container ${stored.Id}. Stop the container before attempting removal or force remove`);
    }
    await this.#discard(stored);
  }

  /**
   * Lets go of the containerVMs, which go on running: the appliance is
   * closing, and the next one adopts them. A shut-down under way is not
   * waited for (a stop may take its whole timeout): its monitor carries it
   * out and records the exit, which the next appliance reads (`adopt`).
   */
  close(): void {
    this.#closed = true;
    for (const vm of this.#vms.values()) vm.release();
  }

  /** Stops every containerVM this appliance runs (whoever tears the whole system down). */
  async stopContainers(): Promise<void> {
    await Promise.all([...this.#vms.values()].map((vm) => vm.stop()));
  }

  /** Follows a launched or adopted containerVM until it ends; the container is exited from then on. */
  #track(stored: StoredContainer, vm: LaunchedVm): void {
    const id = stored.Id;
    this.#vms.set(id, vm);
    void vm.exited.then((exit) => {
      if (this.#vms.get(id) === vm) this.#vms.delete(id);
      this.#ended(stored, exit);
    });
    void this.#shutDownWhenOver(stored, vm);
  }

  /**
   * Records the run as over, once, from what its guest last reported of the
   * exit where it did (it knows the session's error), else from the
   * containerVM's own exit. A later word of the same run changes nothing.
   */
  #ended(stored: StoredContainer, exit?: VmExit): void {
    if (this.options.store.get(stored.Id)?.State !== 'running') return;
    const seen = this.options.directory.find(stored.Id);
    const reported = seen && seen.vm === stored.Id && !isRunning(seen) && seen.state !== 'created' ? seen : undefined;
    if (!reported && !exit) return;
    this.options.store.update(stored, {
      State: 'exited',
      ExitCode: reported?.exitCode ?? exit?.status,
      FinishedAt: reported?.finishedAt ?? exit?.finishedAt,
      Error: reported?.error ?? exit?.error,
    });
  }

  async #discard(stored: StoredContainer): Promise<void> {
    const id = stored.Id;
    this.#waiting.get(id)?.abandon(new Error(`container ${stored.Name} (${id}) was removed before it started`));
    this.#waiting.delete(id);
    const vm = this.#vms.get(id);
    if (vm) await vm.stop();
    this.options.store.remove(id);
  }

  /**
   * A guest whose container has exited goes on serving its link until it is
   * shut down; a stopped container has no processes, in Docker's terms, so
   * its containerVM is shut down (and with --rm the container removed) once
   * its attaches have had its output.
   */
  async #shutDownWhenOver(stored: StoredContainer, vm: LaunchedVm): Promise<void> {
    try {
      const over = await Promise.race([this.options.directory.wait(stored.Id, 'not-running').then(() => undefined), vm.exited]);
      // Its guest said so first: the container has exited, in Docker's terms, while its containerVM shuts down.
      if (over === undefined) this.#ended(stored);
      await Promise.allSettled(this.#attaches.get(stored.Id) ?? []);
      // The appliance let go of its VMs meanwhile: the next one shuts this one down (adopt), and removes it then if due.
      if (this.#closed) return;
      if (stored.HostConfig.AutoRemove) await this.#discard(stored);
      else await vm.stop();
    } catch (error) {
      this.options.log('warn', `could not shut down the containerVM of container ${stored.Name} (${stored.Id}) after it exited: ${messageOf(error)}`);
    }
  }

  /** Whether `ref` is a container of the API's whose containerVM is not running (never started, or ended). */
  #vmDown(ref: string): boolean {
    const found = this.options.directory.find(ref);
    const state = found && this.options.store.get(found.vm)?.State;
    return state !== undefined && state !== 'running';
  }

  /** A 409 naming the holder when a container (the API's or a guest's) has the name. */
  #checkNameFree(name: string): void {
    const holder = this.options.directory.list().find((record) => record.name === name);
    if (holder) {
      throw new ApiError(
        409,
        `Conflict. The container name "/${name}" is already in use by container "${holder.vm}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
  }

  async #image(reference: string): Promise<StoredImage> {
    let image: StoredImage | undefined;
    try {
      image = await this.options.images.find(reference);
    } catch (error) {
      if (error instanceof AmbiguousImage) throw new ApiError(400, error.message);
      throw error;
    }
    if (!image) throw new ApiError(404, `No such image: ${reference}`);
    return image;
  }

  async #attach(ref: string, want: AttachOptions): Promise<Attachment> {
    const found = this.options.directory.find(ref);
    const stored = found && this.options.store.get(found.vm);
    // A streaming attach to a container that is not running waits for its next start (`docker start -a`).
    const attachment =
      stored && found?.primary && !isRunning(found) && want.stream ? this.#attachOnStart(stored, want) : await this.options.directory.attach(ref, want);
    if (found) {
      const open = this.#attaches.get(found.id) ?? new Set();
      this.#attaches.set(found.id, open.add(attachment.done));
      void attachment.done.finally(() => open.delete(attachment.done)).catch(() => {});
    }
    return attachment;
  }

  /**
   * `docker run` attaches before it starts the container, and waits for the
   * attach's upgrade before it sends the start: this attach answers at once
   * with streams of its own, and joins them to the real attach once the
   * containerVM is launched.
   */
  #attachOnStart(stored: StoredContainer, want: AttachOptions): Attachment {
    const waiting = this.#waitingFor(stored.Id);
    waiting.attaches++;
    const tty = stored.Config.Tty;
    const stdout = new PassThrough();
    const stderr = tty ? undefined : new PassThrough();
    const stdin = want.stdin && stored.Config.OpenStdin ? new PassThrough() : undefined;
    let detached = false;
    let real: Attachment | undefined;
    type Outcome = Awaited<Attachment['done']>;
    const joined: Promise<Outcome | { failed: unknown }> = waiting.started
      .then(async (vm) => {
        // The attach needs the link that carries the container, which its guest opens as it boots.
        await untilReported(this.options.reported, stored.Id, vm);
        if (detached) return { detached: true };
        real = await this.options.directory.attach(stored.Id, want);
        if (detached) real.detach();
        real.stdout.pipe(stdout);
        if (stderr) {
          if (real.stderr) real.stderr.pipe(stderr);
          else stderr.end();
        }
        if (stdin) {
          if (real.stdin) stdin.pipe(real.stdin);
          else stdin.resume();
        }
        return real.done;
      })
      .catch((error: unknown) => ({ failed: error }));
    const outputs = [stdout, ...(stderr ? [stderr] : [])];
    const done = joined.then(async (result): Promise<Outcome> => {
      // After the upgrade the client's streams are all there is to tell it why.
      const told = stderr ?? stdout;
      if ('failed' in result && !told.writableEnded) told.write(`tether: cannot attach to container ${stored.Name}: ${messageOf(result.failed)}\n`);
      if (!real || 'failed' in result) for (const output of outputs) output.end();
      // The session ends the connection on `done`: only after the client has had every byte.
      await Promise.all(outputs.map((output) => finished(output).catch(() => {})));
      return 'failed' in result ? { detached: false } : result;
    });
    return {
      tty,
      stdout,
      stderr,
      stdin,
      detach: () => {
        if (detached) return;
        detached = true;
        if (real) real.detach();
        else {
          waiting.attaches--;
          for (const output of outputs) output.end();
        }
      },
      done,
    };
  }

  #waitingFor(id: string): Waiting {
    const existing = this.#waiting.get(id);
    if (existing) return existing;
    let start = (_vm: LaunchedVm) => {};
    let abandon = (_error: Error) => {};
    const started = new Promise<LaunchedVm>((resolve, reject) => {
      start = resolve;
      abandon = reject;
    });
    started.catch(() => {});
    const waiting = { attaches: 0, started, start, abandon };
    this.#waiting.set(id, waiting);
    return waiting;
  }
}

/** Rejects when the containerVM exits before its guest has reported; the wait for the report ends either way. */
async function untilReported(reported: LifecycleOptions['reported'], id: string, vm: LaunchedVm): Promise<void> {
  const over = new AbortController();
  const report = reported(id, over.signal);
  report.catch(() => {});
  const gone = vm.exited.then((exit) =>
    Promise.reject(new Error(`its containerVM exited with status ${exit.status} before its guest reported the container${exit.error ? ` (${exit.error})` : ''}`)),
  );
  gone.catch(() => {});
  try {
    await Promise.race([report, gone]);
  } finally {
    over.abort();
  }
}

export function lifecycleRoutes(lifecycle: Lifecycle): Route[] {
  const empty = (status: number): Reply => ({ kind: 'full', status, headers: {}, body: '' });
  return [
    {
      method: 'POST',
      path: '/containers/create',
      handler: async ({ query, body }) => json(201, await lifecycle.create(query.get('name'), await readJsonBody(body, 'container create'))),
    },
    {
      method: 'POST',
      path: '/containers/{id}/start',
      handler: async ({ params }) => empty((await lifecycle.start(params.id!)) === 'started' ? 204 : 304),
    },
    {
      method: 'POST',
      path: '/containers/{id}/restart',
      handler: async ({ params, query }) => {
        await lifecycle.restart(params.id!, intParam(query, 't', { min: 0, max: MAX_STOP_TIMEOUT }));
        return empty(204);
      },
    },
    {
      method: 'POST',
      path: '/containers/{id}/rename',
      handler: ({ params, query }) => {
        lifecycle.rename(params.id!, query.get('name'));
        return empty(204);
      },
    },
    {
      method: 'DELETE',
      path: '/containers/{id}',
      handler: async ({ params, query }) => {
        await lifecycle.remove(params.id!, boolParam(query, 'force'));
        return empty(204);
      },
    },
  ];
}

/** What a create body asks for; throws a 400 naming the field. */
function parseCreate(body: unknown): {
  image: string;
  config: CreateConfig;
  autoRemove: boolean;
  hostSecurity: HostSecuritySettings;
  security: Record<string, unknown>;
} {
  const what = 'container create';
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, `${what}: expected a JSON object body`);
  const o = body as Record<string, unknown>;
  const absent = (value: unknown) => value === undefined || value === null;
  const strings = (name: string, value: unknown): string[] => {
    if (absent(value)) return [];
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    throw new ApiError(400, `${what}: ${name} must be an array of strings, got ${JSON.stringify(value)}`);
  };
  const text = (name: string, value: unknown): string => {
    if (absent(value)) return '';
    if (typeof value === 'string') return value;
    throw new ApiError(400, `${what}: ${name} must be a string, got ${JSON.stringify(value)}`);
  };
  const flag = (name: string, value: unknown): boolean => {
    if (absent(value)) return false;
    if (typeof value === 'boolean') return value;
    throw new ApiError(400, `${what}: ${name} must be true or false, got ${JSON.stringify(value)}`);
  };
  const image = text('Image', o.Image);
  if (image === '') throw new ApiError(400, `${what}: Image is required: the image whose root file system the container runs`);
  const host = (o.HostConfig ?? {}) as Record<string, unknown>;
  if (typeof host !== 'object' || Array.isArray(host)) throw new ApiError(400, `${what}: HostConfig must be an object`);
  // What tether cannot do yet is refused rather than silently left out.
  for (const field of ['Binds', 'Mounts', 'PortBindings'] as const) {
    const value = host[field];
    if (!absent(value) && Object.keys(value as object).length > 0) {
      throw new ApiError(400, `${what}: HostConfig.${field} is not supported by tether yet (got ${JSON.stringify(value)})`);
    }
  }
  const { settings: hostSecurity, security } = parseHostSecurity(host, what);
  const stopTimeout = o.StopTimeout;
  if (!absent(stopTimeout) && !Number.isInteger(stopTimeout)) throw new ApiError(400, `${what}: StopTimeout must be a whole number of seconds, got ${JSON.stringify(stopTimeout)}`);
  return {
    image,
    autoRemove: flag('HostConfig.AutoRemove', host.AutoRemove),
    hostSecurity,
    security,
    config: {
      Cmd: [...strings('Entrypoint', o.Entrypoint), ...strings('Cmd', o.Cmd)],
      Env: strings('Env', o.Env),
      WorkingDir: text('WorkingDir', o.WorkingDir),
      User: text('User', o.User),
      Hostname: text('Hostname', o.Hostname),
      Tty: flag('Tty', o.Tty),
      OpenStdin: flag('OpenStdin', o.OpenStdin),
      StopSignal: text('StopSignal', o.StopSignal),
      ...(absent(stopTimeout) ? {} : { StopTimeout: stopTimeout as number }),
    },
  };
}

/** The image's Cmd, Env (overridden key by key), WorkingDir, User and StopSignal where the create body gives none. */
function withImageDefaults(config: CreateConfig, image: Readonly<Record<string, unknown>>): CreateConfig {
  const list = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const given = new Set(config.Env.map((entry) => entry.split('=')[0]));
  return {
    ...config,
    Cmd: config.Cmd.length > 0 ? config.Cmd : [...list(image.Entrypoint), ...list(image.Cmd)],
    Env: [...list(image.Env).filter((entry) => !given.has(entry.split('=')[0])), ...config.Env],
    WorkingDir: config.WorkingDir || text(image.WorkingDir),
    User: config.User || text(image.User),
    StopSignal: config.StopSignal || text(image.StopSignal),
  };
}

/** The container's process as its guest's primary session; a 400 listing every problem with it. */
function primarySession(config: CreateConfig): Record<string, unknown> {
  if (config.Cmd.length === 0) throw new ApiError(400, 'No command specified');
  const document = {
    cmd: config.Cmd,
    env: config.Env,
    ...(config.WorkingDir ? { cwd: config.WorkingDir } : {}),
    ...(config.User ? { user: config.User } : {}),
    tty: config.Tty,
    openStdin: config.OpenStdin,
    ...(config.StopSignal ? { stopSignal: config.StopSignal } : {}),
    ...(config.StopTimeout === undefined ? {} : { stopTimeout: config.StopTimeout }),
  };
  try {
    return sessionDocument(parseSessionConfig(document, 'container', 'the create request'));
  } catch (error) {
    if (error instanceof ConfigError) throw new ApiError(400, error.message);
    throw error;
  }
}

function primarySessionOf(stored: StoredContainer): Record<string, unknown> {
  return (stored.GuestConfig.sessions as Record<string, Record<string, unknown>>)[stored.Id]!;
}

/** Docker's rule for container names; a 400 otherwise. */
function checkName(name: string): void {
  if (!DOCKER_NAME.test(name)) throw new ApiError(400, `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
}

/** The container's host name, as the guest will take it (RFC 1123); a 400 otherwise. */
function checkHostname(hostname: string): string {
  if (!isHostname(hostname)) {
    throw new ApiError(400, `invalid hostname ${JSON.stringify(hostname)}: expected dot-separated labels of letters, digits and inner hyphens, each at most 63 characters`);
  }
  return hostname;
}

