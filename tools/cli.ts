import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAddress, parseSerialAddress } from '../appliance/address.ts';
import { startAppliance } from '../appliance/assembly.ts';
import { privateStateDir } from '../appliance/stateDir.ts';
import { applianceCommand, applianceUsage, DEFAULT_API, DEFAULT_SERIAL } from '../appliance/main.ts';
import { defaultStateDir } from '../appliance/trust.ts';
import type { ContainerDirectory } from '../appliance/api/directory.ts';
import { createLog } from '../shared/log.ts';
import { readConfigFile, startSandbox, type Sandbox } from './sandbox.ts';
import { checkCommand, checkUsage } from './check/command.ts';
import { vizCommand, vizUsage } from './viz/command.ts';

const usage = `tether: containerVM consoles over SSH on a serial line, served through a Docker-compatible API

usage:
  tether start                     the appliance and one demo containerVM (an interactive shell)
  ${applianceUsage.replace('usage: ', '')}
  tether sandbox --config FILE [--appliance tcp://127.0.0.1:2377] [--state DIR]
                                   one containerVM: the guest init on a pty bridged to the appliance
  ${checkUsage.join('\n  ')}
                                   model-check the composed guest and appliance machines
  ${vizUsage.join('\n  ')}
                                   every machine's state diagram, as files or live from a running appliance
  tether help

The state directory (default ${defaultStateDir()}, or $TETHER_STATE) holds the
appliance's SSH key and the host keys of the containerVMs it trusts.`;

/** Each verb resolves when done, with the exit status to end with (0 when it gives none). */
const verbs: Record<string, (args: string[]) => Promise<void | number>> = {
  appliance: applianceCommand,
  sandbox: sandboxCommand,
  start: startCommand,
  check: checkCommand,
  viz: vizCommand,
  help: async () => void process.stdout.write(usage + '\n'),
};

async function sandboxCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      appliance: { type: 'string', default: DEFAULT_SERIAL },
      state: { type: 'string', default: defaultStateDir() },
    },
  });
  if (!values.config) throw new Error('sandbox: --config FILE is required (see docs/CONFIG.md)');
  const appliance = parseSerialAddress(values.appliance!, '--appliance');
  // The sandbox writes its logs and trust entry there: private before the first of them.
  const repaired = privateStateDir(values.state!);
  if (repaired) process.stderr.write(`tether sandbox: ${repaired}\n`);
  const stop = stopRequested();
  const sandbox = await startSandbox({ config: readConfigFile(values.config), source: values.config, appliance, stateDir: values.state! });
  process.stdout.write(`tether sandbox: containerVM ${sandbox.config.id} on ${sandbox.serialDevice}, bridged to ${values.appliance}\n`);
  // Its status is the init's, as docker run's is the container's.
  return untilStopped(sandbox, stop);
}

/**
 * `npm start`: the appliance and a demo containerVM running an interactive
 * shell. The API is served on TCP and on a unix socket in the state
 * directory: over TCP the docker CLI never finishes a ctrl-p ctrl-q detach
 * (see the README), over the socket it does.
 */
async function startCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      api: { type: 'string', default: DEFAULT_API },
      serial: { type: 'string', default: DEFAULT_SERIAL },
      state: { type: 'string', default: defaultStateDir() },
    },
  });
  const serial = parseSerialAddress(values.serial!, '--serial');
  const stop = stopRequested();
  const stateDir = values.state!;
  const socket = join(stateDir, 'docker.sock');
  const log = createLog('tether', process.env.TETHER_LOG ? undefined : 'warn');
  const appliance = await startAppliance({
    serial,
    api: [parseAddress(values.api!, '--api'), { kind: 'unix', path: socket }],
    stateDir,
    attachTimeoutMs: 10_000,
    log,
  });
  const id = randomBytes(32).toString('hex');
  const consoleLog = join(stateDir, 'demo-console.log');
  const sandbox = await startSandbox({
    config: {
      id,
      name: 'demo',
      hostname: 'demo',
      // An interactive shell ignores TERM; HUP, its terminal going away, is what ends one.
      sessions: { [id]: { cmd: ['/bin/sh'], env: ['PS1=demo$ ', 'TERM=xterm'], tty: true, openStdin: true, stopSignal: 'HUP' } },
    },
    source: 'the demo containerVM',
    // Where it listens, which --serial may leave to the system (port 0).
    appliance: parseSerialAddress(appliance.serial, 'the serial listener'),
    stateDir,
    console: { file: consoleLog },
  });
  // The commands printed below reach the demo only once its guest has reported it.
  await untilReported(appliance.directory, sandbox, id, consoleLog);
  const [tcp, unix] = appliance.apis;
  process.stdout.write(
    [
      `tether is running: serial listener ${appliance.serial}, Docker API ${tcp} and ${unix}`,
      `demo containerVM ${id.slice(0, 12)} (name: demo) runs an interactive /bin/sh; its console goes to ${consoleLog}`,
      '',
      'From another terminal:',
      `  docker -H ${tcp} run -it --rm host sh     a containerVM of its own, booted from the host's root (image "host")`,
      `  docker -H ${tcp} exec demo ls /`,
      `  docker -H ${tcp} logs demo`,
      `  docker -H ${unix} attach demo     detach: ctrl-p ctrl-q (over TCP the docker CLI never completes a detach)`,
      '',
      'ctrl-c here stops the appliance and the demo. Containers made with docker run keep running;',
      'the next npm start with this state directory takes them up again.',
      '',
    ].join('\n'),
  );
  await untilStopped(sandbox, stop);
  await appliance.close();
}

/** Resolves once the demo's guest has reported it over its serial line; fails naming where to look when it does not. */
async function untilReported(directory: ContainerDirectory, sandbox: Sandbox, id: string, consoleLog: string): Promise<void> {
  const deadline = Date.now() + DEMO_REPORT_MS;
  while (!directory.find(id)) {
    if (sandbox.guest.exitCode !== null || sandbox.guest.signalCode !== null) {
      throw new Error(`the demo containerVM exited before its guest reported; its console is in ${consoleLog}`);
    }
    if (Date.now() > deadline) throw new Error(`the demo containerVM's guest has not reported over its serial line after ${DEMO_REPORT_MS / 1000} s; its console is in ${consoleLog}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Longer than a guest's boot on a loaded machine. */
const DEMO_REPORT_MS = 30_000;

/**
 * Resolves on the first SIGINT, SIGTERM or SIGHUP from now on. Taken from
 * before a sandbox starts, so that no such signal kills this process with
 * the sandbox's config (and its private key) left behind; later ones are
 * ignored while it closes.
 */
function stopRequested(): Promise<void> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => resolve());
  });
}

/** Closes the sandbox when `stop` comes or its init exits on its own; resolves with the init's status. */
async function untilStopped(sandbox: Sandbox, stop: Promise<void>): Promise<number> {
  const ended = await Promise.race([stop.then(() => undefined), sandbox.exited]);
  // Only an exit of its own is news; the one sandbox.close() causes below is not.
  if (ended !== undefined) process.stderr.write(`the guest init exited with status ${ended}\n`);
  await sandbox.close();
  return sandbox.exited;
}

const [verb = 'help', ...rest] = process.argv.slice(2);
const run = verbs[verb];
if (!run) {
  process.stderr.write(`tether: unknown command ${JSON.stringify(verb)}\n\n${usage}\n`);
  process.exit(2);
}
run(rest).then(
  (status) => process.exit(status ?? 0),
  (err: Error) => {
    process.stderr.write(`tether ${verb}: ${err.message}\n`);
    process.exit(2);
  },
);
