/**
 * tether's guest init as PID 1 beside tini, dumb-init and catatonit, each in
 * the same fresh namespaces (bench/asPid1.ts) running the same workload
 * (bench/pid1Workload.pl):
 *
 * (a) orphan storm: the container's process leaves N orphans to PID 1 as
 *     fast as it can, then scans /proc until none is left and no process is a
 *     zombie; the figure is its time from start to that moment. Also shown:
 *     the drain, from its last fork to that moment (the init's own share).
 *     A storm in which PID 1 reaps nothing for --stall-ms is given up.
 * (b) startup: from the bench's spawn of `unshare ... INIT PROBE` to the
 *     probe's first instruction, minus the same for `unshare ... PROBE` with
 *     no init, so unshare's and the probe's own costs cancel. For scale, a
 *     bare `node -e 0` the same way: `sh -c 'node -e 0; exec PROBE'` minus
 *     `sh -c 'exec PROBE'`.
 * (c) signal latency: SIGTERM to PID 1 (from the host, as a runtime's stop
 *     does, a second after the container process is ready) until the
 *     container process's TERM handler runs. tini, dumb-init
 *     and catatonit forward it; tether answers with an orderly stop that
 *     signals each session. No answer within --signal-timeout-ms is reported
 *     as such.
 * (d) peak RSS of PID 1 (VmHWM) right after the storm.
 *
 * tether runs as tools/sandbox.ts starts it (`node GUEST_NODE_FLAGS
 * dist/guest.cjs --sandbox`, a VM's environment). Each round runs
 * every contender once per figure, in an order rotated round by round (the
 * machine is shared and noisy: no init should always get the quiet moment);
 * medians are reported, with tether's ratio to each peer.
 *
 * `npm run bench -- pid1 [--orphans 10000] [--rounds 5] [--stall-ms 2000] [--signal-timeout-ms 3000] [--host-env]`
 *
 * Every contender gets a VM's environment (bench/asPid1.ts), not this
 * shell's unless --host-env says so. Needs root (namespaces), unshare, perl and the three peers
 * (Debian: tini, dumb-init, catatonit). The guest is dist/guest.cjs, rebuilt
 * first if stale, then copied so that the whole run uses one build.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateKeyPair } from '../actors/ssh/keys.ts';
import { bundlePath } from '../shared/bundlePath.ts';
// @ts-expect-error tools/build.mjs is plain JavaScript without declarations.
import { buildAll, isStale } from '../tools/build.mjs';
import {
  childrenOf, deadline, monotonicNs, NoReport, peakRssMiB, processState, startAsPid1, UNSHARE_FLAGS, type Pid1Run,
} from './asPid1.ts';
import { formatMs, median, ratio } from './stats.ts';
import { GUEST_NODE_FLAGS, INIT_ENV } from '../tools/sandbox.ts';

export const description = 'tether as PID 1 beside tini, dumb-init and catatonit: orphan storm, startup, signal latency, peak RSS';

export const PEERS = { tini: '/usr/bin/tini', 'dumb-init': '/usr/bin/dumb-init', catatonit: '/usr/bin/catatonit' };
export const TETHER = 'tether';
const NODE = 'node -e 0';
const NO_INIT = 'no init';
const SH = 'sh';

const GOAL_STORM_RATIO = 1.2;
const GOAL_STARTUP_MS = 150;
const GOAL_STARTUP_RATIO = 1.7;
const GOAL_SIGNAL_RATIO = 2;
const GOAL_PEAK_RSS_MIB = 60;

/** How long any contender may take to start its workload. */
const START_TIMEOUT_MS = 10_000;
/** How often a storm looks at PID 1's children to notice a stall. */
const STALL_LOOK_MS = 250;

// Given to perl as text: a container's root may not show this checkout (the host image hides /tmp, /root and /home).
const WORKLOAD = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'pid1Workload.pl'), 'utf8');

export interface Pid1Options {
  orphans: number;
  rounds: number;
  stallMs: number;
  signalTimeoutMs: number;
  /** Give PID 1 this process's environment instead of a VM's (INIT_ENV). */
  hostEnv?: boolean;
  /** Progress, one line per figure per round. */
  log?: (line: string) => void;
}

/** One figure's samples per contender, and why a round gave none. */
export class Figure {
  readonly values = new Map<string, number[]>();
  readonly misses = new Map<string, string[]>();

  add(who: string, value: number): void {
    this.values.set(who, [...(this.values.get(who) ?? []), value]);
  }

  miss(who: string, why: string): void {
    this.misses.set(who, [...(this.misses.get(who) ?? []), why]);
  }

  median(who: string): number | undefined {
    const values = this.values.get(who);
    return values ? median(values) : undefined;
  }
}

export interface Pid1Results {
  /** The inits, tether first. */
  inits: string[];
  storm: Figure;
  drain: Figure;
  /** Per init and `node -e 0`, net of its baseline. */
  startup: Figure;
  /** The baselines themselves: `no init` and `sh`. */
  baseline: Figure;
  signal: Figure;
  peakRss: Figure;
}

/** How to run a program as (or, for the baselines, instead of) PID 1. */
interface Contender {
  name: string;
  /** The command line that runs `program` under this contender; `dir` is the run's own scratch directory. */
  argv(program: string[], dir: string): string[];
}

/** Why the benchmark cannot run here, if it cannot. */
export function missingPrerequisites(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (it creates PID, mount, UTS, IPC and network namespaces)';
  const needed = [...Object.values(PEERS), '/usr/bin/unshare', '/usr/bin/perl'];
  const missing = needed.filter((path) => {
    try {
      accessSync(path, constants.X_OK);
      return false;
    } catch {
      return true;
    }
  });
  return missing.length > 0 ? `missing ${missing.join(', ')} (apt-get install -y tini dumb-init catatonit)` : undefined;
}

/** tether's guest init from `bundle` (a guest.cjs with what it needs beside it). */
function tether(name: string, nodeFlags: readonly string[], bundle: string): Contender {
  const host = generateKeyPair('tether-bench-pid1');
  const client = generateKeyPair('tether-bench-pid1-client');
  return {
    name,
    argv(program, dir) {
      const config = join(dir, 'config.json');
      writeFileSync(config, JSON.stringify({
        id: 'pid1',
        name: 'pid1',
        hostname: 'pid1',
        sessions: { pid1: { cmd: program } },
        ssh: { hostKey: host.privateKey, authorizedKeys: [client.publicKey] },
        // Nothing listens there, and the namespace has no network anyway: the
        // guest keeps retrying its link, as a VM whose appliance is away.
        serial: { device: 'tcp://127.0.0.1:9' },
        logDir: dir,
      }));
      return [process.execPath, ...nodeFlags, bundle, '--sandbox', '--config', config];
    },
  };
}

const peer = (name: string, path: string): Contender => ({ name, argv: (program) => [path, '--', ...program] });

/** The startup figures' references: each is subtracted from the contenders measured against it. */
const noInit: Contender = { name: NO_INIT, argv: (program) => program };
const sh: Contender = { name: SH, argv: (program) => ['sh', '-c', 'exec "$@"', SH, ...program] };
// Node's path is the script's $0, so it needs no quoting.
const node: Contender = { name: NODE, argv: (program) => ['sh', '-c', '"$0" -e 0; exec "$@"', process.execPath, ...program] };

const workload = (mode: 'exec' | 'term' | 'storm', report: string, orphans?: number) =>
  ['perl', '-e', WORKLOAD, mode, report, ...(orphans === undefined ? [] : [String(orphans)])];

const ms = (ns: bigint) => Number(ns) / 1e6;
const mib = (v: number) => `${v.toFixed(1)} MiB`;

/** Each round starts one further along, so every contender gets each slot in turn. */
const rotate = <T>(list: readonly T[], round: number): T[] => {
  const k = round % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
};

/** Where the runs keep their files, and the environment PID 1 gets. */
interface Setting {
  root: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Runs `program` (given its report file) under `contender` in a scratch
 * directory of its own, stopping the run however `body` ends.
 */
async function withRun<T>(
  setting: Setting, contender: Contender, program: (report: string) => string[], body: (run: Pid1Run) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(setting.root, 'run-'));
  const report = join(dir, 'report');
  const run = startAsPid1(contender.argv(program(report), dir), report, setting.env);
  try {
    return await body(run);
  } finally {
    await run.stop();
  }
}

/** (b) ms from the spawn of unshare to the probe's first instruction. */
async function timeToExec(contender: Contender, setting: Setting): Promise<number> {
  return withRun(setting, contender, (report) => workload('exec', report), async (run) => {
    const times = await run.reported('exec', deadline(START_TIMEOUT_MS, `no exec within ${START_TIMEOUT_MS / 1000} s`));
    return ms(times.get('exec')! - run.spawnedAt);
  });
}

/**
 * Gives up on a storm when the number of PID 1's children has not changed
 * for `stallMs` and some are zombies (it is reaping nothing), or none is
 * left of those it had (the workload ended without its report); or when
 * PID 1 has started no child within START_TIMEOUT_MS.
 */
function stall(initPid: number, stallMs: number): () => string | undefined {
  const begun = performance.now();
  let count = -1;
  let since = begun;
  let looked = 0;
  let started = false;
  return () => {
    const now = performance.now();
    if (now - looked < STALL_LOOK_MS) return undefined;
    looked = now;
    const children = childrenOf(initPid);
    started ||= children.length > 0;
    if (children.length !== count) {
      [count, since] = [children.length, now];
      return undefined;
    }
    if (now - since < stallMs) return undefined;
    if (!started) return now - begun > START_TIMEOUT_MS ? `the workload did not start within ${START_TIMEOUT_MS / 1000} s` : undefined;
    if (count === 0) return `the workload ended without reporting; PID 1 has had no child for ${stallMs / 1000} s`;
    const zombies = children.filter((pid) => processState(pid) === 'Z').length;
    // Nothing to reap: the workload is still forking or scanning.
    if (zombies === 0) {
      since = now;
      return undefined;
    }
    return `stalled: ${zombies} zombies left, none reaped for ${stallMs / 1000} s`;
  };
}

/** A storm's times, or why there are none, and PID 1's peak RSS in MiB after it. */
type StormOutcome = ({ stormMs: number; drainMs: number } | { missed: string }) & { peak?: number };

/** (a) and (d): one storm, and PID 1's peak memory after it (whether or not it drained). */
async function storm(contender: Contender, setting: Setting, orphans: number, stallMs: number): Promise<StormOutcome> {
  return withRun(setting, contender, (report) => workload('storm', report, orphans), async (run) => {
    const pid = await run.hostPid();
    const times = await run.reported('drained', stall(pid, stallMs)).catch(missed);
    const peak = peakRssMiB(pid);
    if (typeof times === 'string') return { missed: times, peak };
    const at = (key: string) => times.get(key)!;
    return { stormMs: ms(at('drained') - at('start')), drainMs: ms(at('drained') - at('forked')), peak };
  });
}

/**
 * How long the init gets after its container's process is ready before the
 * signal: a stop comes to a running container, not to one still booting
 * (tether finishes loading its SSH side just after starting the process).
 */
const SETTLE_MS = 1000;

/** (c) ms from SIGTERM to PID 1 until the container process's handler ran. */
async function signalLatency(contender: Contender, setting: Setting, timeoutMs: number): Promise<number> {
  return withRun(setting, contender, (report) => workload('term', report), async (run) => {
    await run.reported('ready', deadline(START_TIMEOUT_MS, `the workload did not start within ${START_TIMEOUT_MS / 1000} s`));
    const pid = await run.hostPid();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const sent = monotonicNs();
    process.kill(pid, 'SIGTERM');
    const times = await run.reported('term', deadline(timeoutMs, `no answer within ${timeoutMs / 1000} s`));
    return ms(times.get('term')! - sent);
  });
}

/** A run that gave no figure becomes its reason; anything else is a bug in the bench. */
function missed(err: unknown): string {
  if (err instanceof NoReport) return err.message;
  throw err;
}

/** One round of one figure: records each contender's value or miss, and shows them as one progress line. */
class Round {
  private readonly parts: string[] = [];
  private readonly notes: string[] = [];

  constructor(private readonly figure: Figure) {}

  add(who: string, value: number, text = formatMs(value)): void {
    this.figure.add(who, value);
    this.parts.push(`${who} ${text}`);
  }

  miss(who: string, why: string, note = why): void {
    this.figure.miss(who, why);
    this.parts.push(`${who} —`);
    this.notes.push(`      ${who}: ${note}`);
  }

  toString(): string {
    return [this.parts.join(' · '), ...this.notes].join('\n');
  }
}

/** (b) Every contender and both baselines once; each contender's time net of its baseline. */
async function startupRound(inits: Contender[], round: number, setting: Setting, results: Pid1Results): Promise<Round> {
  const baselineOf = (c: Contender) => (c === node ? SH : NO_INIT);
  const raw = new Map<string, number | string>();
  for (const c of rotate([noInit, sh, node, ...inits], round)) raw.set(c.name, await timeToExec(c, setting).catch(missed));
  for (const name of [NO_INIT, SH]) {
    const t = raw.get(name)!;
    if (typeof t === 'number') results.baseline.add(name, t);
  }
  const line = new Round(results.startup);
  for (const c of [...inits, node]) {
    const [t, base] = [raw.get(c.name)!, raw.get(baselineOf(c))!];
    if (typeof t === 'string') line.miss(c.name, t);
    else if (typeof base === 'string') line.miss(c.name, `its baseline (${baselineOf(c)}) failed: ${base}`);
    else line.add(c.name, t - base);
  }
  return line;
}

/** (a) and (d) for every init once. */
async function stormRound(inits: Contender[], round: number, setting: Setting, options: Pid1Options, results: Pid1Results): Promise<Round> {
  const line = new Round(results.storm);
  for (const c of rotate(inits, round)) {
    const s = await storm(c, setting, options.orphans, options.stallMs);
    if (s.peak !== undefined) results.peakRss.add(c.name, s.peak);
    const rss = s.peak === undefined ? 'peak RSS ?' : `peak RSS ${mib(s.peak)}`;
    if ('missed' in s) {
      line.miss(c.name, s.missed, `${rss}; ${s.missed}`);
    } else {
      results.drain.add(c.name, s.drainMs);
      line.add(c.name, s.stormMs, `${formatMs(s.stormMs)} (drain ${formatMs(s.drainMs)}, ${rss})`);
    }
  }
  return line;
}

/** (c) for every init once. */
async function signalRound(inits: Contender[], round: number, setting: Setting, options: Pid1Options, results: Pid1Results): Promise<Round> {
  const line = new Round(results.signal);
  for (const c of rotate(inits, round)) {
    const t = await signalLatency(c, setting, options.signalTimeoutMs).catch(missed);
    if (typeof t === 'string') line.miss(c.name, t);
    else line.add(c.name, t);
  }
  return line;
}

/** Measures every figure for every init, `rounds` times, interleaved. */
export async function measurePid1(options: Pid1Options): Promise<Pid1Results> {
  const log = options.log ?? (() => {});
  const setting = { root: mkdtempSync(join(tmpdir(), 'tether-bench-pid1-')), env: options.hostEnv ? process.env : INIT_ENV };
  try {
    // A copy of dist/ taken now: every round runs the same guest, and a
    // rebuild of dist/ by someone else mid-run can neither change nor break it.
    const guest = join(setting.root, 'dist', 'guest.cjs');
    cpSync(dirname(bundlePath('guest.cjs')), dirname(guest), { recursive: true });
    const inits: Contender[] = [
      tether(TETHER, GUEST_NODE_FLAGS, guest),
      ...Object.entries(PEERS).map(([name, path]) => peer(name, path)),
    ];
    const results: Pid1Results = {
      inits: inits.map((c) => c.name),
      storm: new Figure(),
      drain: new Figure(),
      startup: new Figure(),
      baseline: new Figure(),
      signal: new Figure(),
      peakRss: new Figure(),
    };
    for (let round = 0; round < options.rounds; round++) {
      log(`round ${round + 1} of ${options.rounds}`);
      log(`  (b) startup   ${await startupRound(inits, round, setting, results)}`);
      log(`  (a) storm     ${await stormRound(inits, round, setting, options, results)}`);
      log(`  (c) signal    ${await signalRound(inits, round, setting, options, results)}`);
    }
    return results;
  } finally {
    rmSync(setting.root, { recursive: true, force: true });
  }
}

// ---- the report ----

const pad = (s: string, n: number) => s.padEnd(n);

interface Column {
  title: string;
  figure: Figure;
  format(value: number): string;
}

/**
 * One row per contender: each column's median (with the range when there are
 * several rounds), then tether's ratio to that contender on the first column,
 * or why there is no figure.
 */
function printTable(contenders: string[], columns: Column[], rounds: number): void {
  const width = Math.max(...contenders.map((c) => c.length)) + 2;
  const cell = (figure: Figure, who: string, format: (v: number) => string) => {
    const values = figure.values.get(who);
    if (!values) return '—';
    const range = values.length > 1 ? ` (${format(Math.min(...values))}–${format(Math.max(...values))})` : '';
    return `${format(median(values))}${range}`;
  };
  const cells = contenders.map((who) => columns.map((col) => cell(col.figure, who, col.format)));
  const widths = columns.map((col, i) => Math.max(col.title.length, ...cells.map((row) => row[i]!.length)) + 2);
  console.log(`    ${pad('', width)}${columns.map((col, i) => pad(col.title, widths[i]!)).join('')}tether ÷ this`);
  const main = columns[0]!.figure;
  const mine = main.median(TETHER);
  contenders.forEach((who, row) => {
    const theirs = main.median(who);
    // A startup net of its baseline can come out at or below zero: no ratio to that.
    const vs = who === TETHER || mine === undefined || theirs === undefined || theirs <= 0 ? '' : ratio(mine, theirs);
    const misses = main.misses.get(who) ?? [];
    // Rounds tend to miss for the same reason; say each reason once.
    const why = [...new Set(misses.map((m) => m.split('\n')[0]))].join('; ');
    const missNote = misses.length === 0 ? '' : `  ${misses.length} of ${rounds} rounds gave none: ${why}`;
    console.log(`    ${pad(who, width)}${cells[row]!.map((c, i) => pad(c, widths[i]!)).join('')}${pad(vs, 13)}${missNote}`.trimEnd());
  });
}

/** A goal's verdict on a figure, which may be missing. */
function printGoal(text: string, value: number | undefined, met: (value: number) => boolean): void {
  const verdict = value === undefined ? 'no figure' : met(value) ? 'met' : 'NOT met';
  console.log(`    goal: ${text}: ${verdict}`);
}

function printResults(results: Pid1Results, options: Pid1Options): void {
  const { inits, storm, drain, startup, baseline, signal, peakRss } = results;
  const mine = (figure: Figure) => figure.median(TETHER);
  const tetherOver = (figure: Figure, who: string) => {
    const [value, base] = [figure.median(TETHER), figure.median(who)];
    return value === undefined || base === undefined ? undefined : value / base;
  };
  const tini = 'tini';
  console.log(`\nmedians of ${options.rounds} round(s); the range in brackets; ratios are tether's (${TETHER}) median over each row's`);

  console.log(`\n(a) orphan storm of ${options.orphans}: the workload's start until no orphan or zombie is left (drain: from its last fork)`);
  printTable(inits, [{ title: 'storm', figure: storm, format: formatMs }, { title: 'drain', figure: drain, format: formatMs }], options.rounds);
  printGoal(`tether ≤ ${GOAL_STORM_RATIO}× tini`, tetherOver(storm, tini), (r) => r <= GOAL_STORM_RATIO);

  console.log(`\n(b) startup: exec of the init to exec of the container's process (net of unshare and the probe)`);
  printTable([...inits, NODE], [{ title: 'startup', figure: startup, format: formatMs }], options.rounds);
  const [direct, viaSh] = [baseline.median(NO_INIT), baseline.median(SH)];
  console.log(`    (subtracted: unshare + probe ${direct === undefined ? '?' : formatMs(direct)}; ` +
    `with sh in between, for node -e 0, ${viaSh === undefined ? '?' : formatMs(viaSh)})`);
  printGoal(`tether < ${GOAL_STARTUP_MS} ms`, mine(startup), (t) => t < GOAL_STARTUP_MS);
  printGoal(`tether ≤ ${GOAL_STARTUP_RATIO}× node -e 0`, tetherOver(startup, NODE), (r) => r <= GOAL_STARTUP_RATIO);

  console.log(`\n(c) signal latency: SIGTERM to PID 1 until the container process's TERM handler runs`);
  printTable(inits, [{ title: 'latency', figure: signal, format: formatMs }], options.rounds);
  printGoal(`tether ≤ ${GOAL_SIGNAL_RATIO}× tini`, tetherOver(signal, tini), (r) => r <= GOAL_SIGNAL_RATIO);

  console.log(`\n(d) peak RSS of PID 1 (VmHWM) after the storm`);
  printTable(inits, [{ title: 'peak RSS', figure: peakRss, format: mib }], options.rounds);
  printGoal(`tether ≤ ${GOAL_PEAK_RSS_MIB} MiB`, mine(peakRss), (size) => size <= GOAL_PEAK_RSS_MIB);
}

/** The first line an init prints for --version (dumb-init prints it to stderr). */
function version(path: string): string {
  const { stdout, stderr } = spawnSync(path, ['--version'], { encoding: 'utf8' });
  return `${stdout}${stderr}`.trim().split('\n')[0] ?? '?';
}

const positiveInteger = (name: string, text: string | undefined): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${text}`);
  return n;
};

/** `npm run bench -- pid1 [--orphans 10000] [--rounds 5] [--stall-ms 2000] [--signal-timeout-ms 3000] [--host-env]` */
export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      orphans: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '5' },
      'stall-ms': { type: 'string', default: '2000' },
      'signal-timeout-ms': { type: 'string', default: '3000' },
      'host-env': { type: 'boolean', default: false },
    },
  });
  const options: Pid1Options = {
    orphans: positiveInteger('orphans', values.orphans),
    rounds: positiveInteger('rounds', values.rounds),
    stallMs: positiveInteger('stall-ms', values['stall-ms']),
    signalTimeoutMs: positiveInteger('signal-timeout-ms', values['signal-timeout-ms']),
    hostEnv: values['host-env'],
    log: (line) => console.log(line),
  };
  const missing = missingPrerequisites();
  if (missing) throw new Error(`pid1: ${missing}`);
  if (isStale()) {
    console.log('dist/ is older than the sources: building it (npm run build)');
    await buildAll();
  }
  const env = options.hostEnv ? "this shell's" : `${Object.entries(INIT_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} (a VM's)`;
  console.log(`PID 1 in \`unshare ${UNSHARE_FLAGS.join(' ')} -- INIT ...\`, environment ${env}:`);
  console.log(`  ${TETHER}: node ${GUEST_NODE_FLAGS.join(' ')} dist/guest.cjs --sandbox, as tools/sandbox.ts starts it (node ${process.version})`);
  for (const [name, path] of Object.entries(PEERS)) console.log(`  ${name}: ${path} (${version(path)})`);
  await measurePid1(options).then((results) => printResults(results, options));
}
