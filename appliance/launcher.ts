/**
 * How the appliance makes a containerVM for a container created through the
 * API. The API builds the guest config document (docs/CONFIG.md) and hands
 * it to a launcher; what runs it (a sandbox of namespaces here, a hypervisor
 * later) is the launcher's business. The guest then reaches the appliance
 * over its serial line and reports its containers like any other.
 */
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { startSandbox } from '../tools/sandbox.ts';

export interface LaunchOptions {
  /** Names the VM in error messages, e.g. `container web`. */
  readonly source: string;
}

export interface LaunchedVm {
  /** TERM to its init (every session stops), then waits until it is gone. */
  stop(): Promise<void>;
  /** The init's exit status once it is gone (the primary session's, or 128 + the signal that ended it). */
  readonly exited: Promise<number>;
}

export interface Launcher {
  launch(config: Record<string, unknown>, options: LaunchOptions): Promise<LaunchedVm>;
}

/**
 * Runs each containerVM as a sandbox (tools/sandbox.ts), which registers
 * its fresh host key with the appliance's trust store. The guest's console
 * is appended to `<stateDir>/containers/<id>/console.log`, beside its
 * output logs, where whoever debugs a boot looks.
 */
export function sandboxLauncher(options: { appliance: { host: string; port: number }; stateDir: string }): Launcher {
  return {
    async launch(config, { source }) {
      const dir = join(options.stateDir, 'containers', String(config.id));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const sandbox = await startSandbox({
        config,
        source,
        appliance: options.appliance,
        stateDir: options.stateDir,
        console: { file: join(dir, 'console.log') },
      });
      const exited = once(sandbox.guest, 'exit').then(([code, signal]) =>
        (code as number | null) ?? 128 + (signal ? constants.signals[signal as NodeJS.Signals] : 0),
      );
      // Once only: a stop and the init ending on its own both release the pty, bridge and config file.
      let closing: Promise<void> | undefined;
      const close = () => (closing ??= sandbox.close());
      void exited.then(close);
      return {
        exited,
        stop: async () => {
          await close();
          await exited;
        },
      };
    },
  };
}

