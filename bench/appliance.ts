import { startAppliance, type RunningAppliance } from '../appliance/assembly.ts';
import { createLog, type Level } from '../shared/log.ts';

/** An appliance for a benchmark: loopback TCP for the API and the serial listener, on ports the system picks, in `stateDir`. */
export function startBenchAppliance(stateDir: string, level: Level): Promise<RunningAppliance> {
  return startAppliance({
    serial: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    api: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    stateDir,
    attachTimeoutMs: 10_000,
    log: createLog('bench', level),
  });
}
