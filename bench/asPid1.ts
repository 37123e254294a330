/**
 * A program run as PID 1 of fresh Linux namespaces, as a container runtime
 * starts an init, with the same `unshare` flags for every init so that two
 * runs differ only in the init. The program under the init reports through a
 * file of `KEY NANOSECONDS` lines (bench/pid1Workload.pl), read through PID
 * 1's /proc/PID/root since an init may give its container a root of its own;
 * the workload's own timestamps make the moment the bench reads them
 * irrelevant.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { INIT_ENV } from '../tools/sandbox.ts';

/**
 * What each init gets. --pid --fork: the init is PID 1 (unshare's child), the
 * reaper of every orphan. --mount --mount-proc: /proc shows the namespace's
 * processes, which the workload scans for zombies. --uts --ipc --net: what a
 * container gets, and what tether's sandbox mode sets up (a hostname of its
 * own; no network, so its serial link just retries). --propagation private is
 * unshare's default, spelt out. --kill-child: if unshare dies (the bench is
 * interrupted), PID 1 and with it the namespace die too, instead of an init
 * lingering with its orphans.
 */
export const UNSHARE_FLAGS = [
  '--pid', '--fork', '--mount', '--uts', '--ipc', '--net', '--propagation', 'private', '--mount-proc', '--kill-child',
];

/** Why a run gave no figure: it timed out, gave up, or ended without reporting. */
export class NoReport extends Error {}

/** One `unshare FLAGS -- ARGV` run. */
export interface Pid1Run {
  /** When unshare was spawned (CLOCK_MONOTONIC ns, as the workload reports). */
  readonly spawnedAt: bigint;
  /** PID 1's PID as the host sees it (unshare's child). */
  hostPid(): Promise<number>;
  /**
   * The report (each key's first time, CLOCK_MONOTONIC ns) once it has KEY.
   * Rejects with NoReport when `giveUp` returns a reason (asked at every
   * poll), when the run ends first, or when the workload reports an error.
   */
  reported(key: string, giveUp: () => string | undefined): Promise<Map<string, bigint>>;
  /** SIGKILL PID 1, which ends everything in its namespace, and wait for unshare. */
  stop(): Promise<void>;
}

const POLL_MS = 10;
/** Enough of the output to show why an init failed. */
const OUTPUT_BYTES = 16 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The CLOCK_MONOTONIC nanoseconds the workload writes in its reports. */
export const monotonicNs = () => process.hrtime.bigint();

/** A `giveUp` for `reported`: after `ms` from now. */
export function deadline(ms: number, why: string): () => string | undefined {
  const end = performance.now() + ms;
  return () => (performance.now() > end ? why : undefined);
}

export function startAsPid1(argv: string[], reportPath: string, env: NodeJS.ProcessEnv = INIT_ENV): Pid1Run {
  const spawnedAt = monotonicNs();
  // setpriv: unshare dies with the bench (a test runner's timeout kills it outright), and --kill-child takes PID 1 along.
  const unshare = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', ...UNSHARE_FLAGS, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  const keep = (chunk: string) => (output = (output + chunk).slice(-OUTPUT_BYTES));
  unshare.stdout.setEncoding('utf8').on('data', keep);
  unshare.stderr.setEncoding('utf8').on('data', keep);
  let ended: string | undefined;
  const exited = new Promise<void>((resolve) => {
    unshare.once('error', (err) => {
      ended ??= `could not start: unshare: ${err.message}`;
      resolve();
    });
    unshare.once('close', (code, signal) => {
      ended ??= `ended (${signal ?? `exit code ${code}`})`;
      resolve();
    });
  });

  const readReport = (): Map<string, string> => {
    // Once PID 1 is gone, what is left is the host's file: a peer's (tether's root went with its namespace).
    const init = childrenOf(unshare.pid)[0];
    let text: string;
    try {
      text = readFileSync(init === undefined ? reportPath : `/proc/${init}/root${reportPath}`, 'utf8');
    } catch {
      return new Map();
    }
    // A line without its newline is still being written.
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
    const report = new Map<string, string>();
    for (const line of lines) {
      const space = line.indexOf(' ');
      const key = line.slice(0, space);
      if (!report.has(key)) report.set(key, line.slice(space + 1));
    }
    return report;
  };

  // The reason on its first line (what tables show), the end of the output below it.
  const withOutput = (why: string) => {
    const tail = output.trim().split('\n').slice(-8).map((line) => `      | ${line}`).join('\n');
    return tail ? `${why}\n${tail}` : why;
  };

  const hostPid = async (): Promise<number> => {
    for (;;) {
      const pid = childrenOf(unshare.pid)[0];
      if (pid !== undefined) return pid;
      if (ended) throw new NoReport(withOutput(`PID 1 ${ended} before it could be found`));
      await sleep(1);
    }
  };

  return {
    spawnedAt,
    hostPid,
    async reported(key, giveUp) {
      for (;;) {
        // Read after checking for the end, so a report written just before it is not missed.
        const over = ended;
        const report = readReport();
        const error = report.get('error');
        if (error !== undefined) throw new NoReport(`the workload failed: ${error}`);
        if (report.has(key)) return new Map([...report].map(([k, v]) => [k, BigInt(v)]));
        if (over) throw new NoReport(withOutput(`PID 1 ${over} before the workload reported "${key}"`));
        const why = giveUp();
        if (why) throw new NoReport(withOutput(why));
        await sleep(POLL_MS);
      }
    },
    async stop() {
      if (!ended && unshare.pid !== undefined) {
        // Only PID 1: unshare then exits once the kernel has emptied the
        // namespace, so the teardown of one run never overlaps the next.
        const init = childrenOf(unshare.pid);
        // No PID 1 yet: unshare itself, whose death takes its child along (--kill-child).
        for (const pid of init.length > 0 ? init : [unshare.pid]) kill(pid);
      }
      await exited;
    },
  };
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** The children of every thread of `pid` (an init may fork from any of its threads). */
export function childrenOf(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ')) {
        if (child) children.push(Number(child));
      }
    } catch {
      // The thread ended while we looked.
    }
  }
  return children;
}

/** A process's state letter (R, S, Z, ...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2];
  } catch {
    return undefined;
  }
}

/** Peak resident memory (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid: number): number | undefined {
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}
