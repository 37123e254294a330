import { parseArgs } from 'node:util';
import { defaultStateDir } from '../../appliance/trust.ts';
import { explore } from './explore.ts';
import { writeLastReport, type CheckReport } from './report.ts';
import { scenarios } from './scenario.ts';

export const checkUsage = ['tether check [--scenario NAME] [--max-states N] [--state DIR] [--mermaid] [--list]'];

/**
 * `tether check`: explores a scenario of the composed guest and appliance,
 * prints what it explored and each property, and exits 1 with the shortest
 * counterexample when one does not hold. The report is kept in the state
 * directory for `tether viz`.
 */
export async function checkCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string', default: 'default' },
      'max-states': { type: 'string' },
      state: { type: 'string', default: defaultStateDir() },
      mermaid: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
    },
  });
  if (values.list) {
    for (const s of Object.values(scenarios)) process.stdout.write(`${s.name.padEnd(10)} ${s.description}\n`);
    return;
  }
  const base = scenarios[values.scenario!];
  if (!base) throw new Error(`no scenario named "${values.scenario}" (there are: ${Object.keys(scenarios).join(', ')})`);
  const maxStates = values['max-states'] === undefined ? base.maxStates : Number(values['max-states']);
  if (!Number.isSafeInteger(maxStates) || maxStates <= 0) throw new Error(`--max-states must be a positive integer, got "${values['max-states']}"`);
  const scenario = { ...base, maxStates };

  process.stdout.write(`scenario ${scenario.name}: ${scenario.description}\n`);
  const interactive = process.stderr.isTTY;
  const report = explore(scenario, {
    progress: interactive ? (states, depth) => process.stderr.write(`\r${states} states, depth ${depth}…`) : undefined,
  });
  if (interactive) process.stderr.write('\r\x1b[K');
  process.stdout.write(render(report, values.mermaid!));
  const saved = writeLastReport(values.state!, report);
  process.stdout.write(`report: ${saved}\n`);
  if (report.properties.some((p) => !p.held)) process.exitCode = 1;
}

export function render(report: CheckReport, mermaid: boolean): string {
  const lines = [
    `${report.states} states, ${report.transitions} transitions, depth ${report.depth}, ${report.seconds.toFixed(1)} s (${report.statesPerSecond} states/s)${report.truncated ? ', TRUNCATED at the state bound' : ''}`,
    ...report.properties.map((p) => `  ${p.held ? (p.checked ? 'held    ' : 'unproven') : 'VIOLATED'} ${p.name}: ${p.description}${p.message ? `\n           ${p.message}` : ''}`),
  ];
  const c = report.counterexample;
  if (c) {
    lines.push('', `shortest counterexample (${c.steps.length} steps):`, c.text);
    if (mermaid) lines.push('', '```mermaid', c.mermaid, '```');
  }
  return lines.join('\n') + '\n';
}
