/**
 * `tether viz`: every machine's state diagram, written as files (`--out`) or
 * served with the live state of a running appliance (`--serve`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatAddress, parseAddress } from '../../appliance/address.ts';
import { DEFAULT_API } from '../../appliance/main.ts';
import { defaultStateDir } from '../../appliance/trust.ts';
import { type CheckReport, readLastReport } from '../check/report.ts';
import { drawMachines } from './diagrams.ts';
import { COUNTEREXAMPLE_FILE, indexPage, livePage } from './page.ts';
import { sequenceSvg } from './sequence.ts';
import { startVizServer } from './serve.ts';

export const DEFAULT_VIZ_PORT = 2378;

/** The command lines, one a line; `tether help` lists them with the others. */
export const vizUsage = [
  'tether viz --out DIR [--state DIR]',
  `tether viz --serve [--appliance ${DEFAULT_API}] [--port ${DEFAULT_VIZ_PORT}] [--host 127.0.0.1] [--state DIR]`,
];
const usage = `usage: ${vizUsage.join('\n       ')}`;

const options = {
  out: { type: 'string' },
  serve: { type: 'boolean' },
  appliance: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  state: { type: 'string' },
} as const;

export async function vizCommand(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args, options, strict: true }));
  } catch (error) {
    // Node's message goes on about positional arguments; its first sentence says what was wrong.
    throw new Error(`${(error as Error).message.split('. ')[0]}\n${usage}`);
  }
  const stateDir = values.state ?? defaultStateDir();
  if (values.out !== undefined && values.serve) throw new Error(`--out and --serve do not go together\n${usage}`);
  if (values.out !== undefined) {
    const given = (['appliance', 'port', 'host'] as const).filter((name) => values[name] !== undefined);
    if (given.length) throw new Error(`--${given.join(', --')} only go${given.length === 1 ? 'es' : ''} with --serve\n${usage}`);
    return writeDiagrams(values.out, stateDir);
  }
  if (!values.serve) throw new Error(`--out DIR or --serve is required\n${usage}`);
  const appliance = parseAddress(values.appliance ?? DEFAULT_API, '--appliance');
  const portText = values.port ?? String(DEFAULT_VIZ_PORT);
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port > 65535) throw new Error(`--port ${portText}: expected a port number (0-65535)`);
  const page = livePage(await drawMachines(), lastReport(stateDir), stateDir, formatAddress(appliance));
  const server = await startVizServer({ appliance, host: values.host ?? '127.0.0.1', port, page, warn: (message) => process.stderr.write(`tether viz: ${message}\n`) });
  process.stdout.write(`tether viz: serving ${server.url} with the live state of the appliance at ${formatAddress(appliance)}; ctrl-c stops it\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  await server.close();
}

/** Writes `<machine>.svg` for every machine, the last counterexample's sequence diagram, and index.html. */
async function writeDiagrams(dir: string, stateDir: string): Promise<void> {
  const report = lastReport(stateDir);
  const diagrams = await drawMachines();
  const files: [string, string][] = diagrams.map((d) => [`${d.machine}.svg`, d.svg]);
  if (report?.counterexample) files.push([COUNTEREXAMPLE_FILE, sequenceSvg(report.counterexample)]);
  files.push(['index.html', indexPage(diagrams, report, stateDir)]);
  try {
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of files) writeFileSync(join(dir, name), text);
  } catch (error) {
    throw new Error(`cannot write the diagrams to ${dir}: ${(error as Error).message}`);
  }
  process.stdout.write(`tether viz: wrote ${diagrams.length} state diagrams${report?.counterexample ? ', the last counterexample' : ''} and index.html to ${dir}\n`);
}

function lastReport(stateDir: string): CheckReport | undefined {
  try {
    return readLastReport(stateDir);
  } catch (error) {
    throw new Error(`cannot read the last tether check report in ${stateDir}: ${(error as Error).message}`);
  }
}
