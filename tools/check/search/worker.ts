import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { mutants } from '../mutants.ts';
import type { Scenario } from '../scenario.ts';
import { Expander, type Batch, type Request } from './expand.ts';

/**
 * A worker thread's expander (owners.ts starts it): it rebuilds the model
 * from the scenario and the mutant's ID (a mutant's overrides are functions,
 * which cannot cross threads), says it is ready, then answers each request
 * of the search with a batch. The search waits for the answer with
 * Atomics.wait, so the exploration stays one synchronous call.
 */

export interface WorkerData {
  scenario: Scenario;
  mutant?: string;
  port: MessagePort;
  /** [ready, answered]: set to 1 by the worker, the second cleared by the search before each request. */
  signal: Int32Array;
}

if (parentPort) {
  const { scenario, mutant, port, signal } = workerData as WorkerData;
  const overrides = mutant === undefined ? undefined : mutants.find((m) => m.id === mutant)!.overrides;
  const expander = new Expander(scenario, overrides);
  port.on('message', (request: Request) => {
    let answer: Batch | { error: string };
    try {
      answer = expander.handle(request);
    } catch (error) {
      answer = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
    }
    port.postMessage(answer, 'error' in answer ? [] : transfers(answer));
    Atomics.store(signal, 1, 1);
    Atomics.notify(signal, 1);
  });
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

/** The batch's arrays of numbers, moved rather than copied (the states given are a Buffer, which may share its memory). */
function transfers(batch: Batch): ArrayBuffer[] {
  return [batch.expanded, batch.successors, batch.hi, batch.lo].map((a) => a.buffer as ArrayBuffer);
}
