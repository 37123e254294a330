import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { scenarios } from '../tools/check/scenario.ts';

export const description = 'model checker: states/s and bytes per state, beside a baseline revision (--baseline REV) explored in the same run';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What one exploration measured (bench/checkRun.ts). */
interface Run {
  states: number;
  transitions: number;
  depth: number;
  seconds: number;
  truncated: boolean;
  threads: number;
  violated: string[];
  baseRss: number;
  peakRss: number;
}

/**
 * `npm run bench -- check [--baseline REV] [--scenario NAME]... [--max-states N] [--complete]`:
 * each scenario (by default the default one, and the large one cut at
 * 100,000 states) explored by this tree's checker and, with --baseline, by
 * the checker of revision REV, built in a temporary git worktree; each in a
 * process of its own, one after the other, on the same scenario (this
 * tree's). The machine is shared and noisy, so what counts is the ratio of
 * the two, measured side by side: states per second, and bytes per state
 * (the peak resident set above what the process held before exploring).
 * With --complete, this tree's checker then explores the large scenario to
 * its end, without a bound.
 */
export default async function checkBench(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { baseline: { type: 'string' }, scenario: { type: 'string', multiple: true }, 'max-states': { type: 'string' }, complete: { type: 'boolean', default: false } } });
  const names = values.scenario ?? ['default', 'large'];
  const baseline = values.baseline === undefined ? undefined : checkout(values.baseline);
  try {
    for (const name of names) {
      const base = scenarios[name];
      if (!base) throw new Error(`no scenario named "${name}" (there are: ${Object.keys(scenarios).join(', ')})`);
      const maxStates = values['max-states'] !== undefined ? Number(values['max-states']) : name === 'large' && values.scenario === undefined ? 100_000 : base.maxStates;
      const scenario = { ...base, maxStates };
      process.stdout.write(`== ${name}${maxStates < base.maxStates ? `, cut at ${maxStates.toLocaleString('en')} states` : ''}: ${base.description}\n`);
      const current = explore(root, scenario);
      process.stdout.write(line('this tree', current));
      if (!baseline) continue;
      const old = explore(baseline.dir, scenario);
      process.stdout.write(line(baseline.rev, old));
      const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
      process.stdout.write(`ratio: ${ratio(rate(current), rate(old))} the states/s, ${ratio(perState(current), perState(old))} the bytes per state${current.states === old.states ? '' : ` (the two explored different spaces: ${current.states} and ${old.states} states)`}\n`);
    }
    if (values.complete) {
      process.stdout.write(`== large, to its end: ${scenarios.large!.description}\n`);
      process.stdout.write(line('this tree', explore(root, { ...scenarios.large!, maxStates: Number.MAX_SAFE_INTEGER })));
    }
  } finally {
    if (baseline) {
      execFileSync('git', ['worktree', 'remove', '--force', baseline.dir], { cwd: root });
      rmSync(dirname(baseline.dir), { recursive: true, force: true });
    }
  }
}

/** Revision `rev` checked out in a temporary worktree, sharing this tree's node_modules. */
function checkout(rev: string): { rev: string; dir: string } {
  const dir = join(mkdtempSync(join(tmpdir(), 'tether-baseline-')), 'tree');
  execFileSync('git', ['worktree', 'add', '--detach', dir, rev], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return { rev: execFileSync('git', ['rev-parse', '--short', rev], { cwd: root, encoding: 'utf8' }).trim(), dir };
}

function explore(tree: string, scenario: unknown): Run {
  const run = spawnSync(process.execPath, ['--max-old-space-size=20000', '--import', 'tsx', join(root, 'bench', 'checkRun.ts'), tree, JSON.stringify(scenario)], {
    cwd: tree,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`the exploration in ${tree} failed (exit ${run.status ?? run.signal})`);
  return JSON.parse(run.stdout) as Run;
}

const rate = (r: Run) => r.states / r.seconds;
const perState = (r: Run) => (r.peakRss - r.baseRss) / r.states;

function line(who: string, r: Run): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return `${who.padEnd(10)} ${r.states.toLocaleString('en')} states, ${r.transitions.toLocaleString('en')} transitions, depth ${r.depth}${r.truncated ? ' (cut)' : ''}, ${r.seconds.toFixed(1)} s on ${r.threads} thread${r.threads === 1 ? '' : 's'}: ${Math.round(rate(r)).toLocaleString('en')} states/s, peak RSS ${mib(r.peakRss)}, ${Math.round(perState(r)).toLocaleString('en')} bytes/state${r.violated.length ? `; VIOLATED ${r.violated.join(', ')}` : ''}\n`;
}
