/**
 * Attaches that released their container from run-block, while their
 * clients are still connected.
 *
 * `docker attach` inspects the container once more right after its attach is
 * upgraded, and if it is no longer running gives up ("You cannot attach to a
 * stopped container") without reading the output already sent to it. A
 * short-lived process that this very attach released has often exited by
 * then, and its output, which run-block exists to save, would be lost. So
 * while such a client is connected, inspect shows the container as still
 * running: that client is about to read the output, then the real exit
 * status from /wait.
 */
import type { ContainerRecord } from './directory.ts';

export class ReleasingAttaches {
  readonly #connected = new Map<string, number>();

  /** Counts one connected client of container `id`; call the result when it disconnects. */
  add(id: string): () => void {
    this.#connected.set(id, (this.#connected.get(id) ?? 0) + 1);
    let gone = false;
    return () => {
      if (gone) return;
      gone = true;
      const left = this.#connected.get(id)! - 1;
      if (left === 0) this.#connected.delete(id);
      else this.#connected.set(id, left);
    };
  }

  /** The record as inspect shows it. */
  view(record: ContainerRecord): ContainerRecord {
    const ended = record.state === 'exited' || record.state === 'failed';
    if (!ended || !this.#connected.has(record.id)) return record;
    return { ...record, state: 'running', exitCode: undefined, signal: undefined, error: undefined, finishedAt: undefined };
  }
}
