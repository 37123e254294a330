import { parseArgs } from 'node:util';
import { defaultStateDir } from '../../appliance/trust.ts';
import { explore } from './explore.ts';
import { mutants, type Mutant } from './mutants.ts';
import { writeLastReport, type CheckReport } from './report.ts';
import { scenarios } from './scenario.ts';

export const checkUsage = [
  'tether check [--scenario NAME] [--max-states N] [--state DIR] [--mermaid] [--list]',
  'tether check --mutant ID [--state DIR] [--mermaid]   |   tether check --mutants',
];

/**
 * `tether check`: explores a scenario of the composed guest and appliance,
 * prints what it explored and each property, and exits 1 with the shortest
 * counterexample when one does not hold. The report is kept in the state
 * directory for `tether viz`. `--mutant ID` explores a mutant's scenario
 * with the mutant planted (tools/check/mutants.ts); `--mutants` runs them
 * all and exits 1 unless every one is caught and the real machines hold.
 */
export async function checkCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string', default: 'default' },
      'max-states': { type: 'string' },
      state: { type: 'string', default: defaultStateDir() },
      mermaid: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      mutant: { type: 'string' },
      mutants: { type: 'boolean', default: false },
    },
  });
  if (values.list) {
    for (const s of Object.values(scenarios)) process.stdout.write(`${s.name.padEnd(10)} ${s.description}\n`);
    for (const m of mutants) process.stdout.write(`mutant ${m.id}: ${m.name} (breaks ${m.breaks})\n`);
    return 0;
  }
  if (values.mutants) return checkMutants();
  let mutant: Mutant | undefined;
  if (values.mutant !== undefined) {
    mutant = mutants.find((m) => m.id === values.mutant);
    if (!mutant) throw new Error(`no mutant named "${values.mutant}" (there are: ${mutants.map((m) => m.id).join(', ')})`);
  }
  const base = mutant?.scenario ?? scenarios[values.scenario!];
  if (!base) throw new Error(`no scenario named "${values.scenario}" (there are: ${Object.keys(scenarios).join(', ')})`);
  const maxStates = values['max-states'] === undefined ? base.maxStates : Number(values['max-states']);
  if (!Number.isSafeInteger(maxStates) || maxStates <= 0) throw new Error(`--max-states must be a positive integer, got "${values['max-states']}"`);
  const scenario = { ...base, maxStates };

  if (mutant) process.stdout.write(`mutant ${mutant.id}: ${mutant.name}; it must break ${mutant.breaks}\n`);
  process.stdout.write(`scenario ${scenario.name}: ${scenario.description}\n`);
  const interactive = process.stderr.isTTY;
  const report = explore(scenario, {
    ...(mutant ? { overrides: mutant.overrides } : {}),
    progress: interactive ? (states, depth) => process.stderr.write(`\r${states} states, depth ${depth}…`) : undefined,
  });
  if (interactive) process.stderr.write('\r\x1b[K');
  process.stdout.write(render(report, values.mermaid!));
  const saved = writeLastReport(values.state!, report);
  process.stdout.write(`report: ${saved}\n`);
  return report.properties.some((p) => !p.held) ? 1 : 0;
}

/** Each mutant's scenario explored twice, the real machines and the mutant's; 1 unless the first holds and the second breaks what it must. */
function checkMutants(): number {
  let failures = 0;
  for (const mutant of mutants) {
    const real = explore(mutant.scenario).properties.filter((p) => !p.held).map((p) => p.name);
    const broken = explore(mutant.scenario, { overrides: mutant.overrides }).properties.filter((p) => !p.held).map((p) => p.name);
    const caught = broken.includes(mutant.breaks);
    if (!caught || real.length > 0) failures++;
    const verdict = real.length > 0 ? `REAL VIOLATES ${real.join(', ')}` : caught ? 'caught' : `MISSED (broke ${broken.join(', ') || 'nothing'})`;
    process.stdout.write(`${verdict.padEnd(8)} ${mutant.id}: ${mutant.name}; must break ${mutant.breaks}\n`);
  }
  process.stdout.write(`${mutants.length - failures} of ${mutants.length} mutants caught\n`);
  return failures === 0 ? 0 : 1;
}

export function render(report: CheckReport, mermaid: boolean): string {
  const lines = [
    `${report.states} states, ${report.transitions} transitions, depth ${report.depth}, ${report.seconds.toFixed(1)} s (${report.statesPerSecond} states/s${report.threads && report.threads > 1 ? `, ${report.threads} threads` : ''})${report.truncated ? ', TRUNCATED at the state bound' : ''}`,
    ...report.properties.map((p) => `  ${p.held ? (p.checked ? 'held    ' : 'unproven') : 'VIOLATED'} ${p.name}: ${p.description}${p.message ? `\n           ${p.message}` : ''}`),
  ];
  const c = report.counterexample;
  if (c) {
    lines.push('', `shortest counterexample (${c.steps.length} steps):`, c.text);
    if (mermaid) lines.push('', '```mermaid', c.mermaid, '```');
  }
  return lines.join('\n') + '\n';
}
