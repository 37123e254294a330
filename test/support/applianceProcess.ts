import { spawn, type ChildProcess } from 'node:child_process';
import { transcript } from './world.ts';

/** `tether appliance` as its own process, as a user or a service manager runs it. */
export interface ApplianceProcess {
  child: ChildProcess;
  /** tcp://HOST:PORT of the Docker API and of the serial listener, as it printed them. */
  api: string;
  serial: string;
  /** What it wrote to stderr (its log) so far. */
  log(): string;
  /** Its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Starts `tether appliance --state STATE` on loopback; the serial listener
 * on `serial` (default: any free port, which the next appliance of a test
 * reuses so the containerVMs' bridges find it). Killed with the test if it
 * is still running.
 */
export async function startApplianceProcess(t: Teardown, state: string, serial = 'tcp://127.0.0.1:0'): Promise<ApplianceProcess> {
  const child = spawn(process.execPath, ['bin/tether.js', 'appliance', '--state', state, '--api', 'tcp://127.0.0.1:0', '--serial', serial], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal!)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const stdout = transcript(child.stdout!);
  const stderr = transcript(child.stderr!);
  const said = await stdout.until(/serial (tcp:\S+), Docker API (tcp:\S+)/, 'the appliance to say where it listens').catch((error: Error) => {
    throw new Error(`${error.message}; its log: ${stderr.text().slice(-1000)}`);
  });
  const [, serialAt, api] = /serial (tcp:\S+), Docker API (tcp:\S+)/.exec(said)!;
  return { child, api: api!, serial: serialAt!, log: stderr.text, exited };
}
