/**
 * The appliance as a Docker host, driven by the real docker CLI, beside
 * OpenSSH on the same machine in the same run:
 *
 * (a) session latency: the wall time of `docker exec ID true` (the CLI's own
 *     start, its ping, exec create, exec start, exec inspect; the guest starts
 *     `true` in the running containerVM) beside `ssh HOST true` on a warm
 *     ControlMaster connection (a new session on a multiplexed connection:
 *     the ssh mux client's start, the session, the remote command). Samples
 *     alternate which goes first. For where the time goes: the same exec as
 *     bare API calls from this process (bench/apiExec.ts: the host's share),
 *     and two floors of the CLI's own, `docker --version` (the CLI starting,
 *     no request) and `docker version` (the CLI, its ping and one `GET
 *     /version` round trip).
 * (b) throughput: N bytes through `cat`, from the client's stdin to its
 *     stdout. tether: `docker run -i` of a fresh `cat` container each round,
 *     whose attach (the same `POST /containers/{id}/attach` as `docker
 *     attach`) is open before the process starts, so every byte goes through
 *     it both ways; OpenSSH: `ssh HOST cat` on a fresh connection (no
 *     ControlMaster, which would add a hop). Both are fed by one `head -c N
 *     /dev/zero` and timed from the first byte back to the last, so neither
 *     side's set-up (a containerVM's boot, an SSH handshake) counts.
 *
 * Every container is made through the API, so each is a sandboxed
 * containerVM launched as the appliance launches any (the guest on a pty
 * standing in for the VM's serial port). The machine is shared and noisy:
 * medians and ratios are what count.
 *
 * `npm run bench -- docker [--execs 50] [--mib 256] [--rounds 3] [--cipher NAME] [--log warn]`
 *
 * The containerVMs run dist/: `npm run build` after changing the guest.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunningAppliance } from '../appliance/assembly.ts';
import type { Level } from '../shared/log.ts';
// @ts-expect-error tools/build.mjs is plain JavaScript without declarations.
import { isStale } from '../tools/build.mjs';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { apiExec } from './apiExec.ts';
import { startBenchAppliance } from './appliance.ts';
import { SSHD, startOpenSsh, type OpenSsh } from './openssh.ts';
import { formatBytesPerSecond, formatMs, median, p90, ratio, TransferClock } from './stats.ts';

export const description = 'the appliance as a Docker host: docker exec latency and attach throughput, beside OpenSSH';

const MiB = 1024 * 1024;
const GOAL_LATENCY_RATIO = 1.0;
const GOAL_THROUGHPUT_RATIO = 0.8;

export interface DockerBenchOptions {
  /** Samples of each latency figure. */
  execs: number;
  /** Bytes of output each round. */
  bytes: number;
  rounds: number;
  /** Force OpenSSH's cipher; its default otherwise. */
  cipher?: string;
  log?: Level;
}

export interface DockerBenchResults {
  dockerVersion: string;
  openSshCipher: string;
  /** ms of each `docker exec ID true`. */
  exec: number[];
  /** ms of each `ssh HOST true` on the ControlMaster connection. */
  sshSession: number[];
  /** ms of each exec of `true` through the API alone, without the CLI. */
  apiExec: number[];
  /** ms of each `docker --version` and `docker version`: the floors under `docker exec`. */
  cliStart: number[];
  cliVersion: number[];
  /** bytes/s through `cat` of each round's `docker run -i`, and of `ssh HOST cat`. */
  attach: number[];
  sshCat: number[];
}

/** Why the benchmark cannot run here, or undefined. */
export function missingPrerequisites(): string | undefined {
  const sandbox = sandboxUnsupported();
  if (sandbox) return sandbox;
  const onPath = (name: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, name)));
  if (!onPath('docker')) return 'the docker CLI is not on PATH (install docker-ce-cli)';
  if (!existsSync(SSHD)) return `${SSHD} is missing (apt-get install -y openssh-server openssh-client)`;
  return undefined;
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to its end with no stdin; its wall time from spawn to exit. */
function run(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - start }));
  });
}

/**
 * Feeds `bytes` of /dev/zero to `argv`'s stdin and counts its stdout:
 * bytes/s from the first byte back to the last, as bench/openssh.ts times
 * OpenSSH. Fails unless it exits 0 having written exactly `bytes`.
 */
function throughput(argv: string[], bytes: number, env: NodeJS.ProcessEnv): Promise<number> {
  const what = argv.join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    const feed = spawn('head', ['-c', String(bytes), '/dev/zero'], { stdio: ['ignore', 'pipe', 'inherit'] });
    feed.stdout.pipe(child.stdin);
    // A contender that fails early stops reading: its error is in its exit, not here.
    child.stdin.on('error', () => {});
    const clock = new TransferClock();
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => clock.chunk(chunk.length));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${what} exited with ${code}: ${stderr.trim()}`));
      if (clock.received !== bytes) return reject(new Error(`${what} wrote ${clock.received} of ${bytes} bytes: ${stderr.trim()}`));
      try {
        resolve(clock.bytesPerSecond(what));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** The docker CLI against one appliance, with a config directory of its own (not the user's). */
export function dockerClient(appliance: RunningAppliance, configDir: string) {
  const env = { ...process.env, DOCKER_CONFIG: configDir };
  const argv = (...args: string[]) => ['docker', '-H', appliance.api, ...args];
  return {
    argv,
    env,
    /** Runs `docker -H API ...args`; fails naming the command unless it exits 0. */
    async call(...args: string[]): Promise<Exit> {
      const [file, ...rest] = argv(...args);
      const exit = await run(file!, rest, env);
      if (exit.code !== 0) throw new Error(`docker ${args.join(' ')} exited with ${exit.code}: ${exit.stderr.trim()}`);
      return exit;
    },
  };
}

/** `items` rotated left by `by`: who goes first changes sample by sample. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Runs both figures; `say` gets a line per round as it goes. */
export async function measureDocker(options: DockerBenchOptions, say: (line: string) => void = () => {}): Promise<DockerBenchResults> {
  const missing = missingPrerequisites();
  if (missing) throw new Error(`docker bench: ${missing}`);
  const stateDir = mkdtempSync(join(tmpdir(), 'tether-bench-docker-'));
  const scratch = mkdtempSync(join(tmpdir(), 'tether-bench-docker-client-'));
  let appliance: RunningAppliance | undefined;
  let openSsh: OpenSsh | undefined;
  const containers: string[] = [];
  try {
    appliance = await startBenchAppliance(stateDir, options.log ?? 'warn');
    const docker = dockerClient(appliance, join(scratch, 'docker-config'));
    openSsh = await startOpenSsh(options.cipher ? { cipher: options.cipher } : {});
    const dockerVersion = (await docker.call('--version')).stdout.trim();

    // ---- (a) latency, each sample of each contender in turn ----
    const execTarget = (await docker.call('run', '-d', '--name', 'bench-exec', 'host', 'sleep', '1000000')).stdout.trim();
    containers.push(execTarget);
    const peer = openSsh;
    const api = appliance.api;
    const latency = {
      exec: [] as number[],
      sshSession: [] as number[],
      apiExec: [] as number[],
      cliStart: [] as number[],
      cliVersion: [] as number[],
    };
    const contenders: Array<[keyof typeof latency, () => Promise<number>]> = [
      ['exec', async () => (await docker.call('exec', execTarget, 'true')).ms],
      ['sshSession', async () => (await peer.sessionLatency(1))[0]!],
      ['apiExec', async () => {
        const start = performance.now();
        await apiExec(api, execTarget, ['true']);
        return performance.now() - start;
      }],
      ['cliStart', async () => (await docker.call('--version')).ms],
      ['cliVersion', async () => (await docker.call('version')).ms],
    ];
    for (let i = 0; i < options.execs; i++) {
      for (const [name, sample] of rotate(contenders, i)) latency[name].push(await sample());
    }
    say(`(a) ${options.execs} samples each: docker exec median ${formatMs(median(latency.exec))}, ssh (ControlMaster) true median ${formatMs(median(latency.sshSession))}`);

    // ---- (b) throughput, both contenders each round ----
    const attach: number[] = [];
    const sshCat: number[] = [];
    const throughputs: Array<[string, number[], (round: number) => Promise<number>]> = [
      ['docker run -i cat (attached)', attach, async (round) => {
        const name = `bench-cat-${round}`;
        containers.push(name);
        return throughput(docker.argv('run', '-i', '--name', name, 'host', 'cat'), options.bytes, docker.env);
      }],
      ['ssh cat', sshCat, () => throughput(peer.command('cat'), options.bytes, process.env)],
    ];
    for (let round = 0; round < options.rounds; round++) {
      const parts: string[] = [];
      for (const [name, results, measure] of rotate(throughputs, round)) {
        const rate = await measure(round);
        results.push(rate);
        parts.push(`${name} ${formatBytesPerSecond(rate)}`);
      }
      say(`(b) round ${round + 1}: ${parts.join('; ')}`);
    }
    return { dockerVersion, openSshCipher: openSsh.cipher, ...latency, attach, sshCat };
  } finally {
    if (appliance) {
      // Containers' VMs outlive the appliance (as VMs outlive their manager): remove them first.
      const docker = dockerClient(appliance, join(scratch, 'docker-config'));
      for (const id of containers) await docker.call('rm', '-f', id).catch((error: Error) => console.error(`removing ${id}: ${error.message}`));
      await appliance.close().catch((error: Error) => console.error(`closing the appliance: ${error.message}`));
    }
    await openSsh?.close().catch((error: Error) => console.error(`closing OpenSSH: ${error.message}`));
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}

function printResults(r: DockerBenchResults, options: DockerBenchOptions): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  const times = (label: string, samples: number[], extra = '') =>
    console.log(`  ${pad(label, 60)} median ${pad(formatMs(median(samples)), 9)} p90 ${pad(formatMs(p90(samples)), 9)}${extra}`);
  const execRatio = median(r.exec) / median(r.sshSession);
  console.log(`\n(a) a new session running \`true\`, ${r.exec.length} samples each, interleaved`);
  times('docker exec ID true', r.exec);
  times(`OpenSSH: ssh HOST true on a ControlMaster connection`, r.sshSession);
  console.log(`  tether ÷ OpenSSH: ${ratio(median(r.exec), median(r.sshSession))} [goal ≤ ${GOAL_LATENCY_RATIO.toFixed(2)}×: ${execRatio <= GOAL_LATENCY_RATIO ? 'met' : 'NOT met'}]`);
  console.log('  where docker exec spends it:');
  times('exec create, start, inspect through the API alone (no CLI)', r.apiExec);
  times('docker --version (the CLI starting; no request)', r.cliStart);
  times('docker version (the CLI, ping, GET /version)', r.cliVersion);

  const mib = options.bytes / MiB;
  console.log(`\n(b) ${mib} MiB through cat, stdin to stdout at the client, median of ${r.attach.length} round(s), first byte back to last`);
  const rate = (label: string, rates: number[]) => console.log(`  ${pad(label, 60)} ${formatBytesPerSecond(median(rates))}`);
  rate('docker run -i cat, a fresh container each round (its attach)', r.attach);
  rate(`OpenSSH: ssh HOST cat, ${r.openSshCipher}`, r.sshCat);
  const throughputRatio = median(r.attach) / median(r.sshCat);
  console.log(`  tether ÷ OpenSSH: ${ratio(median(r.attach), median(r.sshCat))} [goal ≥ ${GOAL_THROUGHPUT_RATIO.toFixed(2)}×: ${throughputRatio >= GOAL_THROUGHPUT_RATIO ? 'met' : 'NOT met'}]`);
}

/** `npm run bench -- docker [--execs 50] [--mib 256] [--rounds 3] [--cipher NAME] [--log warn]` */
export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      execs: { type: 'string', default: '50' },
      mib: { type: 'string', default: '256' },
      rounds: { type: 'string', default: '3' },
      cipher: { type: 'string' },
      log: { type: 'string', default: 'warn' },
    },
  });
  const options: DockerBenchOptions = {
    execs: Number(values.execs),
    bytes: Math.round(Number(values.mib) * MiB),
    rounds: Number(values.rounds),
    ...(values.cipher ? { cipher: values.cipher } : {}),
    log: values.log as Level,
  };
  if (!Number.isInteger(options.execs) || options.execs < 1) throw new Error(`--execs: expected a positive integer, got ${values.execs}`);
  if (!Number.isSafeInteger(options.bytes) || options.bytes <= 0) throw new Error(`--mib: expected a positive number, got ${values.mib}`);
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${values.rounds}`);
  if (isStale()) console.log('warning: dist/ is older than the sources; the containerVMs run the old bundles (npm run build)');
  const results = await measureDocker(options, (line) => console.log(line));
  console.log(`${results.dockerVersion}; OpenSSH ${results.openSshCipher}; node ${process.version}`);
  printResults(results, options);
}
