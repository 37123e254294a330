import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { descendantsOf } from '../../actors/processTree.ts';
import { startAppliance, type RunningAppliance } from '../../appliance/assembly.ts';
import type { ContainerRecord } from '../../appliance/api/directory.ts';
import { createLog } from '../../shared/log.ts';
import { startSandbox, type Sandbox } from '../../tools/sandbox.ts';

/**
 * A real appliance on loopback ports and sandboxed containerVMs bridged to it
 * over real ptys: what the end-to-end tests drive. Everything is torn down
 * with the test.
 */
export interface World {
  appliance: RunningAppliance;
  stateDir: string;
  /** host:port of the serial listener. */
  serial: { host: string; port: number };
  /** `console`: append the guest's console (its log) to this file, for a test that reads what it said. */
  sandbox(config: Record<string, unknown>, options?: { line?: 'pty' | 'tcp'; console?: string }): Promise<Sandbox>;
  /** Waits until the appliance lists `id` and `ready` holds for it. */
  container(id: string, ready?: (c: ContainerRecord) => boolean): Promise<ContainerRecord>;
  /** Closes the appliance as SIGTERM does (its containerVMs go on running), for `restartAppliance`. */
  stopAppliance(): Promise<void>;
  /** Starts a new appliance on the same state directory and serial port; `appliance` is the new one from then on. */
  restartAppliance(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * `stateDir`: where the state directory is made (default the system's temporary directory).
 * `freshStateDir`: a path that does not exist yet, which the appliance makes, as `tether appliance` does.
 */
export async function startWorld(t: Teardown, options: { attachTimeoutMs?: number; stateDir?: string; freshStateDir?: string } = {}): Promise<World> {
  const stateDir = options.freshStateDir ?? mkdtempSync(join(options.stateDir ?? tmpdir(), 'tether-world-'));
  const start = (serialPort: number) =>
    startAppliance({
      serial: { kind: 'tcp', host: '127.0.0.1', port: serialPort },
      api: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      stateDir,
      attachTimeoutMs: options.attachTimeoutMs ?? 10_000,
      log: createLog('appliance', process.env.TETHER_LOG ? undefined : 'error'),
    });
  let appliance = await start(0);
  let running = true;
  const [host, port] = appliance.serial.replace('tcp://', '').split(':');
  const serial = { host: host!, port: Number(port) };
  const sandboxes: Sandbox[] = [];
  t.teardown(async () => {
    await Promise.all(sandboxes.map((s) => s.close()));
    // The containerVMs the API launched outlive an appliance: stopped here, so no test leaves one behind.
    if (!running) await world.restartAppliance();
    await appliance.stopContainers();
    await appliance.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const world: World = {
    get appliance() {
      return appliance;
    },
    stateDir,
    serial,
    async sandbox(config, sandboxOptions = {}) {
      const sandbox = await startSandbox({
        config,
        source: 'test config',
        appliance: serial,
        stateDir,
        console: sandboxOptions.console ? { file: sandboxOptions.console } : process.env.TETHER_LOG ? 'inherit' : 'ignore',
        line: sandboxOptions.line,
      });
      sandboxes.push(sandbox);
      return sandbox;
    },
    container: (id, ready = () => true) =>
      eventually(() => {
        const found = appliance.directory.find(id);
        return found && ready(found) ? found : undefined;
      }, `container ${id} to be reported by its guest`),
    async stopAppliance() {
      running = false;
      await appliance.close();
    },
    async restartAppliance() {
      if (running) await world.stopAppliance();
      // The same serial port: the containerVMs' bridges reconnect to where the appliance was.
      appliance = await start(serial.port);
      running = true;
    },
  };
  return world;
}

/** Polls `probe` (which may be async) until it returns a value; fails after 20 s naming what it waited for. */
export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Everything a readable yields until it ends. */
export async function collect(stream: Readable | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads from `stream` until `pattern` appears in what was read; returns all of it. */
export function readUntil(stream: Readable, pattern: RegExp | string, what = String(pattern)): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`no ${what} in output after 20 s; got ${JSON.stringify(seen.slice(-500))}`)), 20_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (typeof pattern === 'string' ? seen.includes(pattern) : pattern.test(seen)) done();
    };
    const onEnd = () => done(new Error(`output ended before ${what}; got ${JSON.stringify(seen.slice(-500))}`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      if (err) reject(err);
      else resolve(seen);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
  });
}

/** Starts the real docker CLI against the world's API (or any appliance's), with a config directory of its own (not the user's). */
export function dockerProcess(world: { appliance: { api: string } }, args: string[]): ChildProcessWithoutNullStreams {
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  const child = spawn('docker', ['-H', world.appliance.api, ...args], { env: { ...process.env, DOCKER_CONFIG: config }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.on('close', () => rmSync(config, { recursive: true, force: true }));
  return child;
}

/** Runs the real docker CLI against the world's API. */
export function docker(world: Parameters<typeof dockerProcess>[0], args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = dockerProcess(world, args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `docker ps -a` line of container `name` (`NAME STATUS`), or undefined. */
export async function psLine(world: Parameters<typeof docker>[0], name: string): Promise<string | undefined> {
  const ps = await docker(world, ['ps', '-a', '--format', '{{.Names}} {{.Status}}']);
  return ps.stdout.split('\n').find((line) => line.startsWith(`${name} `));
}

/** Where the docker CLI is, or why a test that needs it is skipped. */
export function dockerMissing(): string | false {
  const paths = (process.env.PATH ?? '').split(':');
  return paths.some((p) => existsSync(join(p, 'docker'))) ? false : 'the docker CLI is not on PATH (it comes with the machine image; install docker-ce-cli)';
}

/** Why a test that needs root (namespaces, signals to any process) is skipped, or false. */
export function notRoot(): string | false {
  return process.getuid?.() === 0 ? false : 'needs root: the sandbox makes namespaces and the test reads every process in /proc';
}

/** One request to the world's Docker API; `body` is the parsed JSON, or the text when it is not JSON. */
export function api(world: World, method: string, path: string): Promise<{ status: number; body: unknown }> {
  const url = new URL(path, world.appliance.api.replace(/^tcp:/, 'http:'));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // Not JSON: the text is the body.
        }
        resolve({ status: res.statusCode!, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A process of a sandbox, as the host's /proc shows it. */
export interface GuestProcess {
  /** Host PID. */
  pid: number;
  /** PID in the sandbox's PID namespace (the host PID when it has none). */
  nsPid: number;
  /** Host PIDs of its parent, its process group, and its terminal's foreground group (-1 without a terminal). */
  ppid: number;
  pgrp: number;
  tpgid: number;
  /** R, S, Z, ... */
  state: string;
  cmdline: string;
  /** When it started, in clock ticks after boot: with the PID, names this process and no later one. */
  started: number;
}

function readProcess(pid: number): (GuestProcess & { nsPids: number[]; pidNs: string }) | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, ppid, pgrp, , , tpgid] = fields;
    const nsPids = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]!.trim().split(/\s+/).map(Number);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
    const pidNs = readlinkSync(`/proc/${pid}/ns/pid`);
    // starttime is field 22 of stat; `fields` starts at field 3.
    const started = Number(fields[19]);
    return { pid, nsPid: nsPids[nsPids.length - 1]!, ppid: Number(ppid), pgrp: Number(pgrp), tpgid: Number(tpgid), state: state!, cmdline, started, nsPids, pidNs };
  } catch {
    // It exited while we looked.
    return undefined;
  }
}

/**
 * The processes of a sandboxed containerVM: with its own PID namespace,
 * every process in that namespace; without one, every descendant of the
 * guest (orphans come back to it, a subreaper). `init` is its PID 1 (the
 * guest), `others` everything else, zombies included.
 */
export function sandboxProcesses(sandbox: Sandbox): { init: GuestProcess; others: GuestProcess[] } {
  const all = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map((e) => readProcess(Number(e))).filter((p) => p !== undefined);
  const tree = descendantsOf(sandbox.guest.pid!);
  const inTree = all.filter((p) => tree.includes(p.pid));
  const nsInit = inTree.find((p) => p.nsPids.length > 1 && p.nsPid === 1);
  const init = nsInit ?? inTree.find((p) => p.pid === sandbox.guest.pid);
  if (!init) throw new Error(`the sandbox's guest (host PID ${sandbox.guest.pid}) is not running`);
  const members = nsInit ? all.filter((p) => p.pidNs === nsInit.pidNs) : inTree;
  const plain = ({ pid, nsPid, ppid, pgrp, tpgid, state, cmdline, started }: GuestProcess): GuestProcess => ({ pid, nsPid, ppid, pgrp, tpgid, state, cmdline, started });
  return { init: plain(init), others: members.filter((p) => p.pid !== init.pid).map(plain) };
}

/** Whether the process is still there (a zombie is: nobody has reaped it). */
export function stillThere(process: GuestProcess): boolean {
  return readProcess(process.pid)?.started === process.started;
}

/**
 * Everything a readable yields, kept from now on: `until` waits for a
 * pattern in what came so far (calling it twice never loses what arrived
 * between the calls, as two readUntil would), from the start or from a
 * `mark`.
 */
export function transcript(stream: Readable) {
  let text = '';
  let ended = false;
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  stream.on('end', () => (ended = true));
  return {
    text: () => text,
    /** The length so far: pass it to `until` to look only at what comes after. */
    mark: () => text.length,
    async until(pattern: RegExp | string, what = String(pattern), from = 0): Promise<string> {
      const seen = () => {
        const tail = text.slice(from);
        return typeof pattern === 'string' ? tail.includes(pattern) : pattern.test(tail);
      };
      const found = await eventually(() => (seen() ? true : ended ? false : undefined), what).catch(() => false);
      if (!found) throw new Error(`${ended ? 'output ended before' : 'gave up waiting for'} ${what}; got ${JSON.stringify(text.slice(from).slice(-300))}`);
      return text.slice(from);
    },
  };
}
