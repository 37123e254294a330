import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What `tether check` reports, and where it keeps its last report: the
 * visualizer (`tether viz`) links the counterexample diagrams of the last run.
 */

/** One message or event in a counterexample, between two participants of the sequence diagram. */
export interface TraceStep {
  from: string;
  to: string;
  label: string;
}

export interface Counterexample {
  property: string;
  /** What was wrong in the last state, in words. */
  message: string;
  /** Lifelines, left to right. */
  participants: string[];
  steps: TraceStep[];
  /** The same trace as text, one line per step, and as Mermaid `sequenceDiagram` source. */
  text: string;
  mermaid: string;
}

export interface PropertyResult {
  name: string;
  description: string;
  held: boolean;
  /** False when the search stopped before it could prove the property (a violation elsewhere, or the bound). */
  checked: boolean;
  /** What was wrong, when it did not hold. */
  message?: string;
}

export interface CheckReport {
  scenario: string;
  states: number;
  transitions: number;
  depth: number;
  seconds: number;
  statesPerSecond: number;
  /** The bound was hit before the state space was exhausted. */
  truncated: boolean;
  /** Threads that expanded states (this one and the workers that took part). */
  threads?: number;
  properties: PropertyResult[];
  counterexample?: Counterexample;
  /** ISO 8601. */
  at: string;
}

const REPORT_FILE = 'last-check.json';

export function writeLastReport(stateDir: string, report: CheckReport): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, REPORT_FILE);
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
  return path;
}

/** The last `tether check` report in `stateDir`, if there is one. */
export function readLastReport(stateDir: string): CheckReport | undefined {
  const path = join(stateDir, REPORT_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as CheckReport;
}
