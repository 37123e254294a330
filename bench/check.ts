import { parseArgs } from 'node:util';
import { getHeapStatistics } from 'node:v8';
import { render } from '../tools/check/command.ts';
import { explore } from '../tools/check/explore.ts';
import { scenarios } from '../tools/check/scenario.ts';

export const description = 'model checker: the default scenario, then the large one (states/s, size of its state space)';

/**
 * `npm run bench -- check [--max-states N]`: the default scenario (the one CI
 * runs; goal: under 60 s here), then the large one (goal: at least a million
 * distinct states). The checker has no peer to run beside: nothing else
 * explores xstate actor systems, so the figures stand alone, with the default
 * scenario's as the yardstick for the same machine's noise.
 */
export default async function checkBench(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'max-states': { type: 'string' } } });
  // A breadth-first frontier of the large scenario holds a few GiB of states.
  const heapGiB = getHeapStatistics().heap_size_limit / 2 ** 30;
  if (heapGiB < 16) {
    process.stderr.write(`note: the heap is limited to ${heapGiB.toFixed(1)} GiB; the large scenario wants about 16: NODE_OPTIONS=--max-old-space-size=20000 npm run bench -- check\n`);
  }
  for (const name of ['default', 'large']) {
    const base = scenarios[name]!;
    const scenario = values['max-states'] && name === 'large' ? { ...base, maxStates: Number(values['max-states']) } : base;
    process.stdout.write(`== ${name}: ${scenario.description}\n`);
    const report = explore(scenario, { progress: (states, depth) => process.stderr.write(`\r${states} states, depth ${depth}…`) });
    process.stderr.write('\r\x1b[K');
    process.stdout.write(render(report, false));
    process.stdout.write(`peak RSS so far: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB\n`);
  }
}
