import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
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
  sandbox(config: Record<string, unknown>, options?: { line?: 'pty' | 'tcp' }): Promise<Sandbox>;
  /** Waits until the appliance lists `id` and `ready` holds for it. */
  container(id: string, ready?: (c: ContainerRecord) => boolean): Promise<ContainerRecord>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startWorld(t: Teardown, options: { attachTimeoutMs?: number } = {}): Promise<World> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tether-world-'));
  const appliance = await startAppliance({
    serial: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    api: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    stateDir,
    attachTimeoutMs: options.attachTimeoutMs ?? 10_000,
    log: createLog('appliance', process.env.TETHER_LOG ? undefined : 'error'),
  });
  const [host, port] = appliance.serial.replace('tcp://', '').split(':');
  const serial = { host: host!, port: Number(port) };
  const sandboxes: Sandbox[] = [];
  t.teardown(async () => {
    await Promise.all(sandboxes.map((s) => s.close()));
    await appliance.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return {
    appliance,
    stateDir,
    serial,
    async sandbox(config, sandboxOptions = {}) {
      const sandbox = await startSandbox({
        config,
        source: 'test config',
        appliance: serial,
        stateDir,
        console: process.env.TETHER_LOG ? 'inherit' : 'ignore',
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
  };
}

/** Polls `probe` until it returns a value; fails after 20 s naming what it waited for. */
export async function eventually<T>(probe: () => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
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

/** Runs the real docker CLI against the world's API. */
export function docker(world: World, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  const child = spawn('docker', ['-H', world.appliance.api, ...args], { env: { ...process.env, DOCKER_CONFIG: config }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      rmSync(config, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

/** Where the docker CLI is, or why a test that needs it is skipped. */
export function dockerMissing(): string | false {
  const paths = (process.env.PATH ?? '').split(':');
  return paths.some((p) => existsSync(join(p, 'docker'))) ? false : 'the docker CLI is not on PATH (it comes with the machine image; install docker-ce-cli)';
}
