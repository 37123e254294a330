/**
 * The monitor program, dist/monitor.cjs: one per containerVM, started
 * detached by the sandbox launcher (launcher.ts) as
 *
 *   node dist/monitor.cjs --config FILE --appliance tcp://HOST:PORT --state DIR --dir CONTAINER_DIR
 *
 * It runs the sandbox and records its life in CONTAINER_DIR (vmMonitor.ts).
 * A bundle of its own, not the CLI's: every containerVM has one, and the
 * CLI's bundle (the checker and visualizer included) costs about 300 ms to
 * start and 80 MiB to hold.
 */
import { parseArgs } from 'node:util';
import { parseSerialAddress } from './address.ts';
import { monitorSandbox } from './vmMonitor.ts';
import { readConfigFile, startSandbox } from '../tools/sandbox.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      appliance: { type: 'string' },
      state: { type: 'string' },
      dir: { type: 'string' },
    },
  });
  const missing = (['config', 'appliance', 'state', 'dir'] as const).filter((name) => values[name] === undefined);
  if (missing.length > 0) throw new Error(`monitor: --${missing.join(', --')} required`);
  const appliance = parseSerialAddress(values.appliance!, '--appliance');
  const sandbox = await startSandbox({ config: readConfigFile(values.config!), source: values.config!, appliance, stateDir: values.state!, workDir: values.dir! });
  process.stdout.write(`tether monitor: containerVM ${sandbox.config.id} on ${sandbox.serialDevice}, bridged to ${values.appliance}\n`);
  const exit = await monitorSandbox(sandbox, values.dir!);
  process.stdout.write(`tether monitor: containerVM ${sandbox.config.id} exited with status ${exit.status}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`tether monitor: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
