/**
 * The containers created through the Docker API (`docker create`, `docker
 * run`), from their creation to their removal. Each is kept in the
 * appliance's state directory as `containers/<id>/container.json`, written
 * whole on every change (a temporary file renamed over it), and loaded when
 * the appliance starts: containers, like their containerVMs, outlive an
 * appliance restart. A removal deletes the container's whole directory
 * (its output logs and console too): a removed container leaves nothing.
 *
 * Once a container's containerVM is up, its guest reports it in the
 * inventory like any other, and from then on the inventory is what the API
 * shows of it. Until then (created, booting, or waiting for its guest to
 * reconnect to a restarted appliance) the store's own view stands in for it
 * (`records`). The inventory keeps a guest's last reports after its link
 * is gone, so the store tells the directory which to hide (`hides`): those
 * of a removed container, and those of a run before a restart.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerSettings, RecordWithSettings } from './api/containerViews.ts';
import type { CreatedContainers } from './directory.ts';
import { readJson, writeJsonAtomic } from './jsonFile.ts';

/** created: never started; running: its containerVM launched; exited: its containerVM's init has exited. */
export type LifecycleState = 'created' | 'running' | 'exited';

/** The fields of a create body's Config that tether uses, as the client sent them. */
export interface CreateConfig {
  readonly Cmd: readonly string[];
  readonly Env: readonly string[];
  readonly WorkingDir: string;
  readonly User: string;
  readonly Hostname: string;
  readonly Tty: boolean;
  readonly OpenStdin: boolean;
  readonly StopSignal: string;
  /** Seconds; absent: the guest's default. */
  readonly StopTimeout?: number;
}

export interface StoredContainer extends ContainerSettings {
  /** 64 hex digits; also its containerVM's ID and its primary session's. */
  readonly Id: string;
  Name: string;
  /** ISO 8601 */
  readonly Created: string;
  /** The guest config its containerVM boots from (docs/CONFIG.md), without the keys and serial device the launcher fills in. */
  readonly GuestConfig: Readonly<Record<string, unknown>>;
  State: LifecycleState;
  /** The init's exit status, once exited. */
  ExitCode?: number;
  /** ISO 8601: when its containerVM was last launched, and when it last ended. */
  StartedAt?: string;
  FinishedAt?: string;
  /** Why it ended other than by its process exiting: its guest could not launch it, or its containerVM was lost. */
  Error?: string;
}

/** What changes of a container after its creation. */
export type ContainerChanges = Partial<Pick<StoredContainer, 'Name' | 'State' | 'ExitCode' | 'StartedAt' | 'FinishedAt' | 'Error'>>;

/** Where everything of container `id` lies: its record, its containerVM's console, output logs and monitor files. */
export function containerDir(stateDir: string, id: string): string {
  return join(stateDir, 'containers', id);
}

const RECORD_FILE = 'container.json';

export class ContainerStore implements CreatedContainers {
  readonly #stateDir: string;
  readonly #containers = new Map<string, StoredContainer>();
  readonly #removed = new Set<string>();
  /** Per containerVM, the links whose reports are of an earlier run. */
  readonly #staleLinks = new Map<string, Set<string>>();
  readonly #listeners = new Set<() => void>();

  private constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  /** The store of the state directory, with every container an earlier appliance kept there. */
  static open(stateDir: string): ContainerStore {
    const store = new ContainerStore(stateDir);
    const root = join(stateDir, 'containers');
    if (!existsSync(root)) return store;
    for (const id of readdirSync(root)) {
      const path = join(root, id, RECORD_FILE);
      let container: StoredContainer | undefined;
      try {
        container = readJson<StoredContainer>(path);
      } catch (error) {
        throw new Error(`cannot load container record ${path}: ${(error as Error).message}; move its directory away to start without it`);
      }
      // A directory without a record is not the API's (a containerVM launched some other way).
      if (container) store.#containers.set(container.Id, container);
    }
    return store;
  }

  add(container: StoredContainer): void {
    mkdirSync(containerDir(this.#stateDir, container.Id), { recursive: true, mode: 0o700 });
    this.#containers.set(container.Id, container);
    this.#save(container);
  }

  /** Changes a container the store holds, and keeps the change; one removed meanwhile stays removed. */
  update(container: StoredContainer, changes: ContainerChanges): void {
    if (this.#containers.get(container.Id) !== container) return;
    Object.assign(container, changes);
    this.#save(container);
  }

  get(id: string): StoredContainer | undefined {
    return this.#containers.get(id);
  }

  list(): StoredContainer[] {
    return [...this.#containers.values()];
  }

  /** Forgets the container and deletes its directory. */
  remove(id: string): void {
    if (!this.#containers.delete(id)) return;
    this.#removed.add(id);
    this.#staleLinks.delete(id);
    rmSync(containerDir(this.#stateDir, id), { recursive: true, force: true });
    this.#changed();
  }

  /** The reports that links `linkIds` carried of containerVM `vm` are of a run that has ended: the directory shows them no more. */
  hideReports(vm: string, linkIds: readonly string[]): void {
    const stale = this.#staleLinks.get(vm) ?? new Set();
    for (const linkId of linkIds) stale.add(linkId);
    this.#staleLinks.set(vm, stale);
  }

  hides(vm: string, linkId: string): boolean {
    return this.#removed.has(vm) || (this.#staleLinks.get(vm)?.has(linkId) ?? false);
  }

  records(): RecordWithSettings[] {
    return this.list().map(record);
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #save(container: StoredContainer): void {
    writeJsonAtomic(join(containerDir(this.#stateDir, container.Id), RECORD_FILE), container);
    this.#changed();
  }

  #changed(): void {
    for (const listener of this.#listeners) listener();
  }
}

const LINK_DETAIL: Record<LifecycleState, string> = {
  created: 'not started: no containerVM yet',
  running: 'containerVM running: its guest has not reported over its link yet',
  exited: 'containerVM exited',
};

/** A container as the directory lists it until its guest reports it. */
function record(container: StoredContainer): RecordWithSettings {
  return {
    id: container.Id,
    name: container.Name,
    cmd: [...container.Config.Cmd],
    tty: container.Config.Tty,
    openStdin: container.Config.OpenStdin,
    primary: true,
    state: container.State,
    ...(container.ExitCode === undefined ? {} : { exitCode: container.ExitCode }),
    ...(container.Error === undefined ? {} : { error: container.Error }),
    ...(container.StartedAt === undefined ? {} : { startedAt: container.StartedAt }),
    ...(container.FinishedAt === undefined ? {} : { finishedAt: container.FinishedAt }),
    hostname: String(container.GuestConfig.hostname),
    created: container.Created,
    vm: container.Id,
    link: { up: false, detail: LINK_DETAIL[container.State] },
    settings: { Image: container.Image, ImageID: container.ImageID, Config: container.Config, HostConfig: container.HostConfig },
  };
}
