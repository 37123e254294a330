/**
 * The containers created through the Docker API (`docker create`, `docker
 * run`), from their creation to their removal. Kept in memory for now; each
 * record is plain JSON so that it can be written to the state directory as
 * it stands.
 *
 * Once a container's containerVM is up, its guest reports it in the
 * inventory like any other, and from then on the inventory is what the API
 * shows of it. Until then (created, or booting) the store's own view stands
 * in for it (`records`). After a removal the inventory still holds the
 * guest's last reports, so the store remembers the removed IDs for the
 * directory to hide them (`isRemoved`).
 */
import type { ContainerRecord } from './api/directory.ts';
import type { CreatedContainers } from './directory.ts';

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

export interface StoredContainer {
  /** 64 hex digits; also its containerVM's ID and its primary session's. */
  readonly Id: string;
  readonly Name: string;
  /** ISO 8601 */
  readonly Created: string;
  /** The image as the client named it, and the ID it resolved to. */
  readonly Image: string;
  readonly ImageID: string;
  readonly Config: CreateConfig;
  readonly HostConfig: { readonly AutoRemove: boolean };
  /** The guest config its containerVM boots from (docs/CONFIG.md), without the keys and serial device the launcher fills in. */
  readonly GuestConfig: Readonly<Record<string, unknown>>;
  State: LifecycleState;
  /** The init's exit status, once exited. */
  ExitCode?: number;
}

export class ContainerStore implements CreatedContainers {
  readonly #containers = new Map<string, StoredContainer>();
  readonly #removed = new Set<string>();

  add(container: StoredContainer): void {
    this.#containers.set(container.Id, container);
  }

  get(id: string): StoredContainer | undefined {
    return this.#containers.get(id);
  }

  list(): StoredContainer[] {
    return [...this.#containers.values()];
  }

  remove(id: string): void {
    if (this.#containers.delete(id)) this.#removed.add(id);
  }

  isRemoved(vm: string): boolean {
    return this.#removed.has(vm);
  }

  records(): ContainerRecord[] {
    return this.list().map(record);
  }
}

const LINK_DETAIL: Record<LifecycleState, string> = {
  created: 'not started: no containerVM yet',
  running: 'containerVM booting: its guest has not reported yet',
  exited: 'containerVM exited before its guest reported',
};

/** A container as the directory lists it until its guest reports it. */
function record(container: StoredContainer): ContainerRecord {
  return {
    id: container.Id,
    name: container.Name,
    cmd: [...container.Config.Cmd],
    tty: container.Config.Tty,
    openStdin: container.Config.OpenStdin,
    primary: true,
    state: container.State,
    ...(container.ExitCode === undefined ? {} : { exitCode: container.ExitCode }),
    hostname: String(container.GuestConfig.hostname),
    created: container.Created,
    vm: container.Id,
    link: { up: false, detail: LINK_DETAIL[container.State] },
  };
}
