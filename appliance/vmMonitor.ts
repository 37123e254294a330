/**
 * A containerVM's monitor: the process that holds a sandboxed containerVM
 * (its launcher, its pty and the bridge to the appliance's serial listener)
 * apart from the appliance, so the VM outlives an appliance restart as a VM
 * outlives its management daemon under a hypervisor (as conmon outlives
 * podman). The sandbox launcher (launcher.ts) starts it detached, as `node
 * dist/monitor.cjs ... --dir DIR` (monitorMain.ts), in a session of its own,
 * and it tells whichever
 * appliance is running through two files in the container's directory DIR,
 * each written whole (jsonFile.ts):
 * - `monitor.json`: which processes it and the VM's launcher are, once the
 *   sandbox runs;
 * - `exit.json`: how the VM ended, its last act, once the VM's pty, bridge
 *   and host key are released.
 * TERM (or INT, or HUP) to the monitor stops the VM as a stop would: TERM to
 * its init, which stops every session.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { statFields } from '../actors/processTree.ts';
import { signalExitCode } from '../shared/signals.ts';
import type { Sandbox } from '../tools/sandbox.ts';
import { readJson, writeJsonAtomic } from './jsonFile.ts';
import type { LaunchedVm, VmExit } from './launcher.ts';

export const MONITOR_FILE = 'monitor.json';
export const EXIT_FILE = 'exit.json';

/** How often a watched VM's files and monitor are looked at besides fs.watch's word, which a file system may not give. */
const POLL_MS = 1000;

/** A process, told apart from a later one that reuses its PID by when it started. */
export interface ProcessId {
  pid: number;
  /** Clock ticks after boot (field 22 of /proc/PID/stat). */
  startTime: number;
}

export interface MonitorRecord {
  monitor: ProcessId;
  /** unshare(1), whose child is the VM's init; killing it kills the VM (--kill-child). */
  launcher: ProcessId;
}

/** Process `pid` as it runs now, or undefined when there is none. */
export function processId(pid: number): ProcessId | undefined {
  const fields = statFields(pid);
  // statFields starts at field 3 (state): starttime, field 22, is its [19].
  return fields && { pid, startTime: Number(fields[19]) };
}

/**
 * Whether that very process still runs. A zombie has ended: nothing of it
 * runs, and its PID cannot be reused until it is reaped (a monitor adopted
 * by an appliance that is PID 1 or a subreaper is never reaped by Node).
 */
export function isAlive(id: ProcessId): boolean {
  const fields = statFields(id.pid);
  return fields !== undefined && fields[0] !== 'Z' && Number(fields[19]) === id.startTime;
}

/** The exit status of a process that ended with `code` or by `signal`, as a shell reports it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? signalExitCode(signal?.replace(/^SIG/, '') ?? '');
}

/**
 * The monitor's life, in the monitor process, once the sandbox runs: says
 * who it is, stops the VM when told to, and records how the VM ended.
 */
export async function monitorSandbox(sandbox: Sandbox, dir: string): Promise<VmExit> {
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= sandbox.close());
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void close());
  const monitor = processId(process.pid);
  const launcher = processId(sandbox.guest.pid!);
  if (!monitor || !launcher) {
    await close();
    throw new Error(`cannot read /proc for the monitor (PID ${process.pid}) or the containerVM's launcher (PID ${sandbox.guest.pid})`);
  }
  writeJsonAtomic(join(dir, MONITOR_FILE), { monitor, launcher } satisfies MonitorRecord);
  const exit: VmExit = { status: await sandbox.exited, finishedAt: new Date().toISOString() };
  await close();
  writeJsonAtomic(join(dir, EXIT_FILE), exit);
  return exit;
}

/**
 * How a VM ended whose monitor is gone without a word: killed, or its host
 * rebooted. What is left of the VM is killed with its launcher, and it
 * reads as killed (128 + SIGKILL), with the reason in `error`.
 */
export function lostVm(record: MonitorRecord | undefined): VmExit {
  if (record && isAlive(record.launcher)) process.kill(record.launcher.pid, 'SIGKILL');
  const who = record ? `its monitor (PID ${record.monitor.pid})` : 'its monitor';
  return {
    status: signalExitCode('KILL'),
    finishedAt: new Date().toISOString(),
    error: `${who} ended without recording how the containerVM ended; its exit status is unknown`,
  };
}

/**
 * The appliance's hold on a VM its monitor runs: `exited` resolves from the
 * exit record, or from `lost` when the monitor is found gone without one;
 * `stop` is TERM to the monitor; `release` stops watching and leaves the VM
 * running (a later stop does nothing: the next appliance holds it).
 */
export function watchVm(dir: string, record: MonitorRecord, lost: (record: MonitorRecord) => VmExit): LaunchedVm {
  let settle: (exit: VmExit) => void = () => {};
  const exited = new Promise<VmExit>((resolve) => (settle = resolve));
  let watcher: FSWatcher | undefined;
  let done = false;
  let released = false;
  const unwatch = () => {
    done = true;
    watcher?.close();
    clearInterval(timer);
  };
  const recorded = () => readJson<VmExit>(join(dir, EXIT_FILE));
  const check = () => {
    if (done) return;
    // Read again after the liveness check: the monitor writes the record just before it exits.
    const exit = recorded() ?? (isAlive(record.monitor) ? undefined : (recorded() ?? lost(record)));
    if (!exit) return;
    unwatch();
    settle(exit);
  };
  const timer = setInterval(check, POLL_MS);
  timer.unref();
  try {
    // The console grows in the same directory: only the exit record is news.
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name === null || name === EXIT_FILE) check();
    });
    // The directory going away (a removal) is no news: the poll settles whatever is left.
    watcher.on('error', () => {});
  } catch {
    // Without fs.watch the poll alone notices.
  }
  check();
  return {
    exited,
    stop: async () => {
      if (released) return;
      if (!done && isAlive(record.monitor)) process.kill(record.monitor.pid, 'SIGTERM');
      await exited;
      // Its exit record is its last act: nothing of the VM is left once it is gone too.
      while (isAlive(record.monitor)) await new Promise((resolve) => setTimeout(resolve, 10));
    },
    release: () => {
      released = true;
      unwatch();
    },
  };
}
