/**
 * How the appliance makes a containerVM for a container created through the
 * API. The API builds the guest config document (docs/CONFIG.md) and hands
 * it to a launcher; what runs it (a sandbox of namespaces here, a hypervisor
 * later) is the launcher's business. The guest then reaches the appliance
 * over its serial line and reports its containers like any other.
 *
 * A containerVM outlives the appliance that launched it, as a VM outlives
 * its management daemon: a later appliance adopts it (`adopt`), and its
 * guest reconnects to it on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { killQuietly } from '../actors/processTree.ts';
import { archiveRuns } from '../shared/outputLogFiles.ts';
import { bundlePath } from '../shared/bundlePath.ts';
import { formatAddress } from './address.ts';
import { unregisterGuest } from './trust.ts';
import { containerDir } from './containerStore.ts';
import { readJson } from './jsonFile.ts';
import { PRIVATE_FILE } from './stateDir.ts';
import { EXIT_FILE, exitStatus, isAlive, lostVm, MONITOR_FILE, watchVm, type MonitorRecord } from './vmMonitor.ts';

export interface LaunchOptions {
  /** Names the VM in error messages, e.g. `container web`. */
  readonly source: string;
}

/** How a containerVM ended. */
export interface VmExit {
  /** The init's exit status: the primary session's, or 128 + the signal that ended it. */
  readonly status: number;
  /** ISO 8601 */
  readonly finishedAt: string;
  /** Why the status is not the init's own, when it is not. */
  readonly error?: string;
}

export interface LaunchedVm {
  /** TERM to its init (every session stops), then waits until it is gone. */
  stop(): Promise<void>;
  readonly exited: Promise<VmExit>;
  /** Stops watching it and leaves it running: the appliance is closing, and the VM outlives it. */
  release(): void;
}

export interface Launcher {
  launch(config: Record<string, unknown>, options: LaunchOptions): Promise<LaunchedVm>;
  /** The containerVM `id` that an earlier appliance launched: still running, or how it ended. */
  adopt(id: string): LaunchedVm | VmExit;
  /** The containerVM `id` an earlier appliance launched, if it is still running; nothing happens to one that is not. */
  running(id: string): LaunchedVm | undefined;
  /** Where the console of containerVM `id` is and how it ends, for an error message. */
  consoleTail(id: string): string;
}

/** Where a containerVM's console (its guest's and its monitor's output) goes, in its container's directory. */
const CONSOLE_FILE = 'console.log';

/** How long a monitor may take to bring its sandbox up before the launch is given up. */
const MONITOR_START_MS = 30_000;

/**
 * Runs each containerVM as a sandbox (tools/sandbox.ts), which registers
 * its fresh host key with the appliance's trust store, held by a monitor
 * process of its own (vmMonitor.ts) in `<stateDir>/containers/<id>`. The
 * guest's console and the monitor's go to `console.log` there, beside the
 * output logs, where whoever debugs a boot looks.
 */
export function sandboxLauncher(options: { appliance: { host: string; port: number }; stateDir: string }): Launcher {
  return {
    async launch(config, { source }) {
      const id = String(config.id);
      const dir = dirOf(id);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // An earlier run's output stays for `docker logs`; its records are of a VM that is gone.
      archiveRuns(join(dir, 'logs'), id);
      for (const file of [MONITOR_FILE, EXIT_FILE]) rmSync(join(dir, file), { force: true });
      const configPath = join(dir, 'launch.json');
      writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
      const consolePath = join(dir, CONSOLE_FILE);
      const console = openSync(consolePath, 'a', PRIVATE_FILE);
      const appliance = formatAddress({ kind: 'tcp', ...options.appliance });
      // Detached, in a session of its own: neither the appliance's exit nor a ctrl-c meant for it reaches the VM.
      const monitor = spawn(
        process.execPath,
        [bundlePath('monitor.cjs'), '--config', configPath, '--appliance', appliance, '--state', options.stateDir, '--dir', dir],
        { detached: true, stdio: ['ignore', console, console], env: monitorEnv() },
      );
      closeSync(console);
      monitor.unref();
      try {
        return watchVm(dir, await monitorStarted(monitor, dir, consolePath), (record) => lost(id, record));
      } catch (error) {
        // Whatever it started (the VM's launcher is in its process group) goes with it, and so does the key it registered.
        if (monitor.pid !== undefined) killQuietly(-monitor.pid, constants.signals.SIGKILL);
        unregisterGuest(options.stateDir, id);
        throw new Error(`cannot launch the containerVM of ${source}: ${(error as Error).message}`);
      }
    },
    adopt(id) {
      // Read after the liveness check: a monitor writes the exit record just before it exits.
      return running(id) ?? readJson<VmExit>(join(dirOf(id), EXIT_FILE)) ?? lost(id, monitorRecord(id));
    },
    running,
    consoleTail: (id) => consoleTail(join(dirOf(id), CONSOLE_FILE)),
  };

  function dirOf(id: string): string {
    return containerDir(options.stateDir, id);
  }

  function monitorRecord(id: string): MonitorRecord | undefined {
    return readJson<MonitorRecord>(join(dirOf(id), MONITOR_FILE));
  }

  function running(id: string): LaunchedVm | undefined {
    const record = monitorRecord(id);
    return record && isAlive(record.monitor) ? watchVm(dirOf(id), record, (gone) => lost(id, gone)) : undefined;
  }

  /** A VM whose monitor is gone without a word: what is left of it is killed, and its key, which the monitor did not live to forget, trusted no more. */
  function lost(id: string, record: MonitorRecord | undefined): VmExit {
    unregisterGuest(options.stateDir, id);
    return lostVm(record);
  }
}

/**
 * The appliance's environment without what only a test runner or a debugger
 * gave it (a loader, an inspector): the monitor is a program of its own.
 */
function monitorEnv(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _, ...env } = process.env;
  return env;
}

/** Resolves once the monitor has said who it is; rejects when it exits first (with what it said), or takes too long. */
async function monitorStarted(monitor: ChildProcess, dir: string, consolePath: string): Promise<MonitorRecord> {
  let exit: [number | null, NodeJS.Signals | null] | undefined;
  let failed: Error | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => (exit = [code, signal]);
  // spawn(2) itself can fail (EAGAIN, ENOMEM): then there is no monitor to wait for.
  const onError = (error: Error) => (failed = error);
  monitor.once('exit', onExit);
  monitor.once('error', onError);
  try {
    const deadline = Date.now() + MONITOR_START_MS;
    for (;;) {
      const record = readJson<MonitorRecord>(join(dir, MONITOR_FILE));
      if (record && record.monitor.pid === monitor.pid) return record;
      if (failed) throw new Error(`its monitor could not be started: ${failed.message}`);
      if (exit) throw new Error(`its monitor exited with status ${exitStatus(...exit)} before the containerVM ran: ${consoleTail(consolePath)}`);
      if (Date.now() > deadline) {
        throw new Error(`its monitor (PID ${monitor.pid}) did not bring the containerVM up within ${MONITOR_START_MS} ms: ${consoleTail(consolePath)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    monitor.off('exit', onExit);
    monitor.off('error', onError);
  }
}

/** The end of a console log, for an error message. */
function consoleTail(path: string): string {
  let text;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    return `cannot read ${path}: ${(error as Error).message}`;
  }
  return text === '' ? `nothing in ${path}` : `${path} ends: ${text.slice(-600)}`;
}
