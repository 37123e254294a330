/**
 * The link, end to end, beside OpenSSH on the same machine in the same run:
 *
 * (a) throughput: a run-block session `head -c N /dev/zero` in a sandboxed
 *     guest, read at the appliance through `directory.attach` (logs: true, so
 *     the attach's unblock starts the process and no byte is missed), over
 *     direct TCP (the guest connects straight to the serial listener) and
 *     over the pty bridge (guest → pty → bridge → TCP → appliance). Timed from
 *     the attach call to the last byte. Peer: OpenSSH `ssh host 'head -c N
 *     /dev/zero'` with its default cipher and with the cipher tether's ssh2
 *     negotiated (read from the appliance's SSH client handshake).
 * (b) attach latency: `directory.attach` (logs: true) on a session that has
 *     already written a line, until its first byte; detach, wait for done,
 *     repeat. Also the bare SSH layer (open an `attach` channel on the link's
 *     ssh2 client until its first byte), which leaves out the connection map's
 *     liveness check and the container channel machine. Peer: a new OpenSSH
 *     session on a warm ControlMaster connection running `true`.
 *
 * The machine is shared and noisy: every round measures all contenders back
 * to back, medians are reported, and ratios are what count.
 *
 * `npm run bench -- link [--mib 256] [--repeat 3] [--samples 200]
 *   [--lines tcp,pty] [--no-openssh]`
 *
 * The guest is dist/guest.cjs: `npm run build` after changing its sources.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import { startAppliance, type RunningAppliance } from '../appliance/assembly.ts';
import type { Attachment, AttachOptions } from '../appliance/api/directory.ts';
import { openAttach } from '../actors/ssh/extension.ts';
import { createLog } from '../shared/log.ts';
import { startSandbox, type Sandbox } from '../tools/sandbox.ts';
// @ts-expect-error tools/build.mjs is plain JavaScript without declarations.
import { isStale } from '../tools/build.mjs';
import { startOpenSsh, type OpenSsh } from './openssh.ts';
import { formatBytesPerSecond, formatMs, median, p90 } from './stats.ts';

export const description = 'the link end to end: attach throughput (direct TCP and pty bridge) and attach latency, beside OpenSSH';

const MiB = 1024 * 1024;
const GOAL_THROUGHPUT_RATIO = 1.0;
const GOAL_LATENCY_MS = 10;
const ATTACH_ALL: AttachOptions = { stdout: true, stderr: true, stdin: false, stream: true, logs: true };

type Line = 'tcp' | 'pty';

/** One sandboxed containerVM on the bench's appliance. */
interface Guest {
  line: Line;
  sandbox: Sandbox;
  /** The session that wrote "ready" and sleeps: the attach-latency target. */
  latencyId: string;
  /** Run-block `head -c N /dev/zero` sessions, one per throughput round. */
  throughputIds: string[];
  /** The appliance's SSH client on this guest's link. */
  client: ssh2.Client;
  /** What the appliance's SSH client negotiated with this guest. */
  negotiated: Negotiated;
}

interface Negotiated {
  kex: string;
  sc: { cipher: string; mac: string };
  cs: { cipher: string; mac: string };
}

interface Transfer {
  bytesPerSecond: number;
  chunks: number;
}

/**
 * Captures each ssh2 client's handshake result as the appliance makes its
 * clients (the appliance runs in this process, from source). Returns the
 * clients seen, in order, and the function that undoes the hook.
 */
function watchClients(): { clients: Map<ssh2.Client, Negotiated | undefined>; restore: () => void } {
  const proto = ssh2.Client.prototype as unknown as { connect: (this: ssh2.Client, config: unknown) => unknown };
  const connect = proto.connect;
  const clients = new Map<ssh2.Client, Negotiated | undefined>();
  proto.connect = function (this: ssh2.Client, config: unknown) {
    clients.set(this, undefined);
    this.once('handshake', (negotiated: Negotiated) => clients.set(this, negotiated));
    return connect.call(this, config);
  };
  return { clients, restore: () => void (proto.connect = connect) };
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startGuest(
  appliance: RunningAppliance,
  stateDir: string,
  watch: ReturnType<typeof watchClients>,
  line: Line,
  bytes: number,
  rounds: number,
): Promise<Guest> {
  const id = `link-${line}`;
  const latencyId = id;
  const throughputIds = Array.from({ length: rounds }, (_, i) => `${line}-head${i + 1}`);
  const plain = { tty: false, openStdin: false };
  const config = {
    id,
    name: id,
    hostname: id,
    sessions: {
      [latencyId]: { cmd: ['sh', '-c', 'echo ready; exec sleep 100000'], ...plain, runBlock: false },
      ...Object.fromEntries(throughputIds.map((sid) => [sid, { cmd: ['head', '-c', String(bytes), '/dev/zero'], ...plain, runBlock: true }])),
    },
  };
  const serial = new URL(appliance.serial);
  const before = new Set(watch.clients.keys());
  const sandbox = await startSandbox({
    config,
    source: `bench/link.ts (${line})`,
    appliance: { host: serial.hostname, port: Number(serial.port) },
    stateDir,
    console: 'ignore',
    line,
  });
  try {
    const exited = once(sandbox.guest, 'exit').then(([code, signal]) => {
      throw new Error(`the ${line} guest exited (${signal ?? code}) during setup`);
    });
    exited.catch(() => {});
    await Promise.race([
      exited,
      until(`containerVM ${id} in directory.list()`, 30_000, () => {
        const listed = appliance.directory.list();
        const ready = [latencyId, ...throughputIds].every((sid) => listed.some((c) => c.id === sid && c.link.up));
        return ready || undefined;
      }),
    ]);
    const [client, negotiated] = await until(`the ${line} link's SSH handshake`, 10_000, () => {
      const fresh = [...watch.clients].filter(([c, n]) => !before.has(c) && n !== undefined);
      return fresh.length > 0 ? fresh[fresh.length - 1]! : undefined;
    });
    return { line, sandbox, latencyId, throughputIds, client, negotiated: negotiated! };
  } catch (error) {
    await sandbox.close();
    throw error;
  }
}

/** Attach to a run-block `head -c N` session and read it to the end, timed from the attach call. */
async function tetherThroughput(appliance: RunningAppliance, id: string, bytes: number): Promise<Transfer> {
  const start = performance.now();
  const attachment: Attachment = await appliance.directory.attach(id, ATTACH_ALL);
  let received = 0;
  let chunks = 0;
  let last = start;
  let stderr = '';
  attachment.stdout.on('data', (chunk: Buffer) => {
    received += chunk.length;
    chunks++;
    last = performance.now();
  });
  attachment.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const [end] = await Promise.all([
    attachment.done,
    finished(attachment.stdout),
    attachment.stderr ? finished(attachment.stderr) : undefined,
  ]);
  if (end.exitCode !== 0) throw new Error(`${id} ended with ${JSON.stringify(end)}: ${stderr.trim()}`);
  if (received !== bytes) throw new Error(`${id}: the attach delivered ${received} of ${bytes} bytes`);
  return { bytesPerSecond: (received * 1000) / (last - start), chunks };
}

/** directory.attach (logs: true) until the first stdout byte, then detach and wait for done. */
async function attachLatency(appliance: RunningAppliance, id: string, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    const attachment = await appliance.directory.attach(id, ATTACH_ALL);
    await once(attachment.stdout, 'data');
    times.push(performance.now() - start);
    attachment.stdout.resume();
    attachment.detach();
    const end = await attachment.done;
    if (!end.detached) throw new Error(`attach ${i + 1} to ${id} ended without a detach: ${JSON.stringify(end)}`);
  }
  return times;
}

/** The SSH layer alone: open an `attach` channel from offset 0 until its first byte, then close it. */
async function sshAttachLatency(client: ssh2.Client, id: string, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    const channel = await openAttach(client, { containerId: id, offset: 0n });
    await once(channel, 'data');
    times.push(performance.now() - start);
    const closed = once(channel, 'close');
    channel.close();
    await closed;
  }
  return times;
}

/** Peak resident memory of a process, from /proc (Linux), in MiB. */
function peakRssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) / 1024;
  } catch {
    return undefined;
  }
}

const rate = (bytesPerSecond: number) => `${(bytesPerSecond / MiB).toFixed(1)} MiB/s`;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const pad = (s: string, n: number) => s.padEnd(n);

/** `npm run bench -- link [--mib 256] [--repeat 3] [--samples 200] [--lines tcp,pty] [--no-openssh]` */
export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mib: { type: 'string', default: '256' },
      repeat: { type: 'string', default: '3' },
      samples: { type: 'string', default: '200' },
      lines: { type: 'string', default: 'tcp,pty' },
      'no-openssh': { type: 'boolean', default: false },
    },
  });
  const bytes = Math.round(Number(values.mib) * MiB);
  const rounds = Number(values.repeat);
  const samples = Number(values.samples);
  const lines = values.lines!.split(',').map((s) => s.trim()) as Line[];
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`--mib: expected a positive number, got ${values.mib}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--repeat: expected a positive integer, got ${values.repeat}`);
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`--samples: expected a positive integer, got ${values.samples}`);
  if (!lines.includes('tcp') || lines.some((l) => l !== 'tcp' && l !== 'pty')) throw new Error(`--lines: expected tcp or tcp,pty, got ${values.lines}`);
  if (isStale()) console.log('warning: dist/ is older than the sources; the guest runs the old bundle (npm run build)');

  const stateDir = mkdtempSync(join(tmpdir(), 'tether-bench-link-'));
  const watch = watchClients();
  const guests: Guest[] = [];
  const peers: OpenSsh[] = [];
  let appliance: RunningAppliance | undefined;
  try {
    appliance = await startAppliance({
      serial: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      api: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      stateDir,
      attachTimeoutMs: 10_000,
      log: createLog('bench', 'warn'),
    });
    for (const line of lines) guests.push(await startGuest(appliance, stateDir, watch, line, bytes, rounds));
    const tcp = guests.find((g) => g.line === 'tcp')!;
    const cipher = tcp.negotiated.sc.cipher;
    for (const g of guests) {
      const { kex, sc } = g.negotiated;
      console.log(`tether ${g.line} link negotiated: kex ${kex}, guest→appliance cipher ${sc.cipher}${sc.mac ? ` mac ${sc.mac}` : ''}`);
    }

    let sameCipher: OpenSsh | undefined;
    let defaultCipher: OpenSsh | undefined;
    if (!values['no-openssh']) {
      defaultCipher = await startOpenSsh();
      peers.push(defaultCipher);
      if (defaultCipher.cipher === cipher) sameCipher = defaultCipher;
      else peers.push((sameCipher = await startOpenSsh({ cipher })));
      console.log(`OpenSSH default cipher: ${defaultCipher.cipher}; same-cipher peer: ${sameCipher.cipher}` +
        (sameCipher === defaultCipher ? ' (the default: one peer serves both)' : ''));
    }

    // ---- (a) throughput, all contenders back to back in each round ----
    console.log(`\n(a) throughput: ${values.mib} MiB of head -c N /dev/zero, ${rounds} round(s), median reported`);
    const results = new Map<string, number[]>();
    const chunkCounts = new Map<string, number[]>();
    const add = (name: string, value: number) => results.set(name, [...(results.get(name) ?? []), value]);
    for (let round = 0; round < rounds; round++) {
      const parts: string[] = [];
      if (defaultCipher && sameCipher !== defaultCipher) {
        const r = await defaultCipher.throughput(bytes);
        add('openssh-default', r);
        parts.push(`openssh ${defaultCipher.cipher} ${rate(r)}`);
      }
      if (sameCipher) {
        const r = await sameCipher.throughput(bytes);
        add('openssh-same', r);
        parts.push(`openssh ${sameCipher.cipher} ${rate(r)}`);
      }
      for (const g of guests) {
        const t = await tetherThroughput(appliance, g.throughputIds[round]!, bytes);
        add(`tether-${g.line}`, t.bytesPerSecond);
        chunkCounts.set(g.line, [...(chunkCounts.get(g.line) ?? []), t.chunks]);
        parts.push(`tether ${g.line} ${rate(t.bytesPerSecond)} (${t.chunks} chunks at the appliance)`);
      }
      console.log(`  round ${round + 1}: ${parts.join('; ')}`);
    }
    const med = (name: string) => (results.has(name) ? median(results.get(name)!) : undefined);
    const openSame = med('openssh-same');
    const openDefault = med('openssh-default') ?? openSame;
    if (openDefault !== undefined) console.log(`  OpenSSH ${defaultCipher!.cipher} (default):      ${formatBytesPerSecond(openDefault)}`);
    if (openSame !== undefined && sameCipher !== defaultCipher) console.log(`  OpenSSH ${sameCipher!.cipher} (same cipher): ${formatBytesPerSecond(openSame)}`);
    for (const g of guests) {
      const mine = med(`tether-${g.line}`)!;
      const vs = openSame === undefined ? '' :
        `  ${x(mine, openSame)} OpenSSH same cipher` + (openDefault !== openSame ? `, ${x(mine, openDefault!)} OpenSSH default` : '');
      const goal = g.line === 'tcp' ? `  [goal ≥ ${GOAL_THROUGHPUT_RATIO.toFixed(1)}× OpenSSH${openSame === undefined ? '' : mine / openSame >= GOAL_THROUGHPUT_RATIO ? ': met' : ': NOT met'}]` : '';
      console.log(`  tether ${pad(g.line === 'tcp' ? 'direct TCP' : 'pty bridge', 11)} (${g.negotiated.sc.cipher}): ${formatBytesPerSecond(mine)}${vs}${goal}`);
    }
    for (const g of guests) {
      const peak = peakRssMiB(g.sandbox.guest.pid);
      if (peak !== undefined) console.log(`  ${g.line} guest peak RSS: ${peak.toFixed(0)} MiB`);
    }

    // ---- (b) attach latency ----
    console.log(`\n(b) attach latency: channel open to first byte, ${samples} attaches each`);
    const show = (label: string, times: number[], goal = '') =>
      console.log(`  ${pad(label, 44)} median ${pad(formatMs(median(times)), 9)} p90 ${pad(formatMs(p90(times)), 9)}${goal}`);
    const latencies = new Map<string, number[]>();
    for (const g of guests) {
      const times = await attachLatency(appliance, g.latencyId, samples);
      latencies.set(g.line, times);
      const goal = `[goal median < ${GOAL_LATENCY_MS} ms: ${median(times) < GOAL_LATENCY_MS ? 'met' : 'NOT met'}]`;
      show(`tether directory.attach, ${g.line === 'tcp' ? 'direct TCP' : 'pty bridge'}`, times, goal);
      show(`tether SSH attach channel only, ${g.line === 'tcp' ? 'direct TCP' : 'pty bridge'}`, await sshAttachLatency(g.client, g.latencyId, samples));
    }
    if (defaultCipher) {
      const times = await defaultCipher.sessionLatency(samples);
      show('OpenSSH new session on ControlMaster (`true`)', times);
      const mine = median(latencies.get('tcp')!);
      console.log(`  tether direct TCP attach median: ${x(mine, median(times))} OpenSSH session median (lower is better)`);
    }

    if (openSame !== undefined) {
      console.log(`\nlink throughput ratio vs openssh: ${(med('tether-tcp')! / openSame).toFixed(2)}`);
    } else {
      console.log(`\nlink throughput ratio vs openssh: n/a`);
    }
  } finally {
    watch.restore();
    for (const g of guests) await g.sandbox.close().catch((err: Error) => console.error(`closing the ${g.line} guest: ${err.message}`));
    await appliance?.close().catch((err: Error) => console.error(`closing the appliance: ${err.message}`));
    for (const peer of peers) await peer.close().catch((err: Error) => console.error(`closing OpenSSH: ${err.message}`));
    rmSync(stateDir, { recursive: true, force: true });
  }
}
