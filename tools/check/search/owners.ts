import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { Overrides } from '../model.ts';
import { mutants } from '../mutants.ts';
import type { Scenario } from '../scenario.ts';
import { Expander, type Batch, type Request } from './expand.ts';
import type { WorkerData } from './worker.ts';

/**
 * The expanders of a search: one in the search's own thread, and one worker
 * thread per further core. A worker is started once a layer is large (a
 * small space is done before a worker has loaded) and loads in the
 * background while the search goes on alone; it joins at the start of a
 * layer, given half of one.
 * Requests go out to all, then the answers are collected: the search's own
 * expander works while the workers do.
 */
export interface Owner {
  /** Starts loading, if it is a worker that has not. */
  start(): void;
  /** A worker has loaded and can take states. */
  readonly ready: boolean;
  /** Waits until it is ready, or cannot be (a worker that failed to load); says which. */
  waitReady(): boolean;
  send(request: Request): void;
  receive(): Batch;
  close(): void;
}

export class InProcess implements Owner {
  readonly ready = true;
  readonly expander: Expander;
  #request: Request = {};

  constructor(scenario: Scenario, overrides: Overrides | undefined) {
    this.expander = new Expander(scenario, overrides);
  }

  start(): void {}

  waitReady(): boolean {
    return true;
  }

  send(request: Request): void {
    this.#request = request;
  }

  receive(): Batch {
    return this.expander.handle(this.#request);
  }

  close(): void {}
}

class WorkerOwner implements Owner {
  readonly #scenario: Scenario;
  readonly #mutant: string | undefined;
  #worker: Worker | undefined;
  /** Our end of the channel, and the worker's, handed over when it starts. */
  readonly #port: MessagePort;
  readonly #theirs: MessagePort;
  readonly #signal = new Int32Array(new SharedArrayBuffer(8));
  #failed: Error | undefined;

  constructor(scenario: Scenario, mutant: string | undefined) {
    this.#scenario = scenario;
    this.#mutant = mutant;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#theirs = port2;
  }

  start(): void {
    if (this.#worker) return;
    const data: WorkerData = { scenario: this.#scenario, ...(this.#mutant === undefined ? {} : { mutant: this.#mutant }), port: this.#theirs, signal: this.#signal };
    const [file, bootstrap] = entry();
    this.#worker = new Worker(file, { eval: bootstrap, workerData: data, transferList: [this.#theirs] });
    // A worker that cannot load is never ready: the search goes on without it.
    this.#worker.on('error', (error) => (this.#failed = error));
    this.#worker.unref();
  }

  get ready(): boolean {
    return this.#worker !== undefined && !this.#failed && Atomics.load(this.#signal, 0) === 1;
  }

  waitReady(): boolean {
    this.start();
    // The load error arrives as an event, which this blocked thread cannot take: a worker that never loads is given up after a minute.
    for (let waited = 0; !this.ready && waited < 60; waited++) Atomics.wait(this.#signal, 0, 0, 1000);
    return this.ready;
  }

  send(request: Request): void {
    Atomics.store(this.#signal, 1, 0);
    this.#port.postMessage(request, request.keep ? [request.keep.buffer as ArrayBuffer] : []);
  }

  receive(): Batch {
    Atomics.wait(this.#signal, 1, 0);
    const answer = receiveMessageOnPort(this.#port)!.message as Batch | { error: string };
    if ('error' in answer) throw new Error(`a worker of the search failed: ${answer.error}`);
    return answer;
  }

  close(): void {
    this.#port.close();
    void this.#worker?.terminate();
  }
}

/**
 * The search's own expander, then a worker per further core (`threads`
 * in all, by default every core). A mutant's workers rebuild it from its ID;
 * overrides that are no mutant's stay in this thread alone.
 */
export function startOwners(scenario: Scenario, overrides: Overrides | undefined, threads = availableParallelism()): [InProcess, ...Owner[]] {
  const own = new InProcess(scenario, overrides);
  const mutant = overrides && mutants.find((m) => m.overrides === overrides)?.id;
  if (overrides && mutant === undefined) return [own];
  return [own, ...Array.from({ length: Math.max(0, threads - 1) }, () => new WorkerOwner(scenario, mutant))];
}

/**
 * What a worker runs: the bundle's worker next to the CLI's bundle, or the
 * TypeScript source through tsx, which a worker does not inherit from its
 * parent: a bootstrap registers it first.
 */
function entry(): [string | URL, boolean] {
  if (!import.meta.url.endsWith('.ts')) return [new URL('./checkWorker.cjs', import.meta.url), false];
  const source = new URL('./worker.ts', import.meta.url).href;
  // tsx's ES module API (its `import` export), found from here whatever the working directory.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  return [`import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); })`, true];
}
