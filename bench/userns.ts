/**
 * What a container's user namespace costs its start: the wall time of
 * `docker run --rm host true` (a containerVM booted, its process run, the
 * container removed) with the user namespace the appliance gives every
 * container, beside the same with `--userns=host`, alternating which goes
 * first, against one appliance in one run. The namespace adds a holder
 * process, its ID maps, an idmapped clone of the image, and a setns in
 * each process's start.
 *
 * `npm run bench -- userns [--runs 20] [--log warn]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunningAppliance } from '../appliance/assembly.ts';
import type { Level } from '../shared/log.ts';
import { startBenchAppliance } from './appliance.ts';
import { dockerClient, missingPrerequisites, rotate } from './docker.ts';
import { formatMs, median, p90, ratio } from './stats.ts';

export const description = 'container start with its user namespace, beside --userns=host';

export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { runs: { type: 'string', default: '20' }, log: { type: 'string', default: 'warn' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got ${values.runs}`);
  const missing = missingPrerequisites();
  if (missing) throw new Error(`userns bench: ${missing}`);
  const stateDir = mkdtempSync(join(tmpdir(), 'tether-bench-userns-'));
  let appliance: RunningAppliance | undefined;
  try {
    appliance = await startBenchAppliance(stateDir, values.log as Level);
    const docker = dockerClient(appliance, join(stateDir, 'docker-config'));
    const samples = { userns: [] as number[], host: [] as number[] };
    const contenders: Array<[keyof typeof samples, string[]]> = [['userns', []], ['host', ['--userns=host']]];
    // One of each first, unmeasured: the first boot loads what every later one finds cached.
    for (const [, flags] of contenders) await docker.call('run', '--rm', ...flags, 'host', 'true');
    for (let k = 0; k < runs; k++) {
      for (const [name, flags] of rotate(contenders, k)) samples[name].push((await docker.call('run', '--rm', ...flags, 'host', 'true')).ms);
    }
    const line = (name: string, ms: number[]) => `${name.padEnd(30)} median ${formatMs(median(ms))}  p90 ${formatMs(p90(ms))}`;
    console.log(line('docker run --rm host true', samples.userns));
    console.log(line('  with --userns=host', samples.host));
    console.log(`user namespace / host IDs: ${ratio(median(samples.userns), median(samples.host))} (${runs} runs each)`);
  } finally {
    await appliance?.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
