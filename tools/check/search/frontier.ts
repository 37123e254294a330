import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { SystemState } from '../runtime.ts';
import type { WorldState } from '../world.ts';

/**
 * The states a breadth-first layer has still to expand, in the order they
 * were found, with their numbers. A large layer goes to a file in chunks:
 * each world without its systems' snapshots, which are shared by thousands
 * of states and stay in memory, in a table the chunks refer to by index
 * (their digests stay cached on them, so a world read back costs little to
 * key again).
 */

const CHUNK = 4096;

interface SpillFile {
  dir: string;
  fd: number;
  /** Where the next chunk is written, and read. */
  written: number;
  read: number;
}

interface Spilled {
  id: number;
  world: Omit<WorldState, 'systems'> & { systems: Record<string, [number, SystemState['timers']]> };
}

export class Frontier {
  readonly #memoryLimit: number;
  #chunks: Array<Array<[number, WorldState]>> = [[]];
  /** Byte lengths of the chunks in the file, in order; they come before the chunks in memory. */
  #spilled: number[] = [];
  #file: SpillFile | undefined;
  readonly #snapshots: unknown[] = [];
  readonly #snapshotIndex = new Map<unknown, number>();
  length = 0;

  /** `memoryLimit`: worlds kept in memory before chunks go to disk. */
  constructor(memoryLimit = 10_000) {
    this.#memoryLimit = memoryLimit;
  }

  push(id: number, world: WorldState): void {
    let last = this.#chunks[this.#chunks.length - 1]!;
    if (last.length === CHUNK) this.#chunks.push((last = []));
    last.push([id, world]);
    this.length++;
    if (this.#chunks.length * CHUNK > this.#memoryLimit && this.#chunks.length > 1) this.#spill(this.#chunks.shift()!);
  }

  /** Takes every state pushed so far, in order, leaving the frontier empty (chunks still on disk are read as they come). */
  *drain(): Generator<[number, WorldState]> {
    const spilled = this.#spilled;
    const chunks = this.#chunks;
    const file = this.#file;
    this.#spilled = [];
    this.#chunks = [[]];
    this.#file = undefined;
    this.length = 0;
    try {
      for (const bytes of spilled) yield* this.#readBack(file!, bytes);
      for (const chunk of chunks) yield* chunk;
    } finally {
      if (file) {
        closeSync(file.fd);
        rmSync(file.dir, { recursive: true, force: true });
      }
    }
  }

  /** Worlds on disk now, for the report. */
  get onDisk(): number {
    return this.#spilled.length * CHUNK;
  }

  #spill(chunk: Array<[number, WorldState]>): void {
    const entries: Spilled[] = chunk.map(([id, world]) => ({
      id,
      world: { ...world, systems: Object.fromEntries(Object.entries(world.systems).map(([name, s]) => [name, [this.#intern(s.snapshot), s.timers]])) },
    }));
    const bytes = serialize(entries);
    if (!this.#file) {
      const dir = mkdtempSync(join(tmpdir(), 'tether-frontier-'));
      this.#file = { dir, fd: openSync(join(dir, 'layer'), 'w+'), written: 0, read: 0 };
    }
    writeSync(this.#file.fd, bytes, 0, bytes.length, this.#file.written);
    this.#file.written += bytes.length;
    this.#spilled.push(bytes.length);
  }

  *#readBack(file: SpillFile, length: number): Generator<[number, WorldState]> {
    const bytes = Buffer.allocUnsafe(length);
    readSync(file.fd, bytes, 0, length, file.read);
    file.read += length;
    for (const { id, world } of deserialize(bytes) as Spilled[]) {
      const systems = Object.fromEntries(Object.entries(world.systems).map(([name, [snapshot, timers]]) => [name, { snapshot: this.#snapshots[snapshot], timers }]));
      yield [id, { ...world, systems }];
    }
  }

  #intern(snapshot: unknown): number {
    let index = this.#snapshotIndex.get(snapshot);
    if (index === undefined) {
      index = this.#snapshots.push(snapshot) - 1;
      this.#snapshotIndex.set(snapshot, index);
    }
    return index;
  }
}
