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
 *     negotiated (read from the appliance's SSH client handshake). Also the
 *     CPU each side spent per MiB (the guest from /proc, this process from
 *     process.cpuUsage), which is steadier than the rate on a busy machine.
 *     A transfer with no byte for --stall-ms is reported as stalled and that
 *     line is skipped from then on (its link is wedged), so the run finishes.
 * (b) attach latency: `directory.attach` (logs: true) on a session that has
 *     already written a line, until its first byte; detach, wait for done,
 *     repeat. Also the bare SSH layer (open an `attach` channel on the link's
 *     ssh2 client until its first byte), which leaves out the connection map's
 *     liveness check and the container channel machine, and one
 *     `container-ids` round trip (that liveness check alone). Peer: a new
 *     OpenSSH session on a warm ControlMaster connection running `true`
 *     (which also spawns an ssh mux client and a remote command: not like for
 *     like, shown for scale).
 *
 * The machine is shared and noisy: every round measures all contenders back
 * to back, medians are reported, and ratios are what count.
 *
 * `npm run bench -- link [--mib 256] [--repeat 3] [--samples 200]
 *   [--lines tcp,pty] [--no-openssh] [--stall-ms 15000] [--log warn]`
 *
 * The guest is dist/guest.cjs: `npm run build` after changing its sources.
 * The appliance runs here from source; both load ssh2's native crypto addon
 * (the build ships it beside the bundles).
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import type { RunningAppliance } from '../appliance/assembly.ts';
import type { Attachment, AttachOptions } from '../appliance/api/directory.ts';
import { openAttach, requestGlobal } from '../actors/ssh/extension.ts';
import { encodeNoPayload, REQ_CONTAINER_IDS } from '../shared/wire.ts';
import { startSandbox, type Sandbox } from '../tools/sandbox.ts';
// @ts-expect-error tools/build.mjs is plain JavaScript without declarations.
import { isStale } from '../tools/build.mjs';
import { startBenchAppliance } from './appliance.ts';
import { startOpenSsh, type OpenSsh } from './openssh.ts';
import { formatBytesPerSecond, formatMs, median, p90 } from './stats.ts';
import { peakRssMiB } from './asPid1.ts';

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
  /** Set when a transfer stalled: the link is stuck, so the rest is skipped. */
  wedged?: string;
}

interface Negotiated {
  kex: string;
  sc: { cipher: string; mac: string };
  cs: { cipher: string; mac: string };
}

interface Transfer {
  bytesPerSecond: number;
  chunks: number;
  /** CPU the guest process spent during the transfer (its children, e.g. head, not included). */
  guestCpuMs?: number;
  /** CPU this process (the appliance, the pty bridge if any, and the bench's reader) spent. */
  applianceCpuMs: number;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of a process so far, from /proc (Linux), in ms. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

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

/** A transfer that made no progress for too long (the link is wedged, not slow). */
class Stalled extends Error {
  constructor(readonly id: string, readonly received: number, readonly bytes: number, readonly stallMs: number) {
    super(`${id}: stalled at ${received} of ${bytes} bytes (nothing for ${stallMs / 1000} s)`);
  }
}

/**
 * Attach to a run-block `head -c N` session and read it to the end, timed
 * from the attach call. A transfer with no byte for `stallMs` is detached and
 * reported as Stalled rather than waited for forever.
 */
async function tetherThroughput(appliance: RunningAppliance, guestPid: number | undefined, id: string, bytes: number, stallMs: number): Promise<Transfer> {
  const guestCpu = processCpuMs(guestPid);
  const ownCpu = ownCpuMs();
  const start = performance.now();
  const attachment: Attachment = await appliance.directory.attach(id, ATTACH_ALL);
  let received = 0;
  let chunks = 0;
  let last = start;
  let stderr = '';
  let stalled: Stalled | undefined;
  let wake: () => void = () => {};
  const stall = new Promise<void>((resolve) => (wake = resolve));
  const watchdog = setInterval(() => {
    if (performance.now() - last < stallMs) return;
    stalled = new Stalled(id, received, bytes, stallMs);
    attachment.detach();
    wake();
  }, Math.min(1000, stallMs));
  attachment.stdout.on('data', (chunk: Buffer) => {
    received += chunk.length;
    chunks++;
    last = performance.now();
  });
  attachment.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  try {
    const ended = Promise.all([
      attachment.done,
      finished(attachment.stdout),
      attachment.stderr ? finished(attachment.stderr) : undefined,
    ]);
    await Promise.race([ended, stall]);
    if (stalled) throw stalled;
    const [end] = await ended;
    if (end.exitCode !== 0) throw new Error(`${id} ended with ${JSON.stringify(end)}: ${stderr.trim()}`);
    if (received !== bytes) throw new Error(`${id}: the attach delivered ${received} of ${bytes} bytes`);
    const guestCpuAfter = processCpuMs(guestPid);
    return {
      bytesPerSecond: (received * 1000) / (last - start),
      chunks,
      guestCpuMs: guestCpu === undefined || guestCpuAfter === undefined ? undefined : guestCpuAfter - guestCpu,
      applianceCpuMs: ownCpuMs() - ownCpu,
    };
  } finally {
    clearInterval(watchdog);
  }
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

/** One `container-ids` global request round trip: the connection map's liveness check before every attach. */
async function pingLatency(client: ssh2.Client, samples: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    await requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload());
    times.push(performance.now() - start);
  }
  return times;
}

const rate = formatBytesPerSecond;
const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const pad = (s: string, n: number) => s.padEnd(n);

/** `npm run bench -- link [--mib 256] [--repeat 3] [--samples 200] [--lines tcp,pty] [--no-openssh] [--stall-ms 15000] [--log warn]` */
export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mib: { type: 'string', default: '256' },
      repeat: { type: 'string', default: '3' },
      samples: { type: 'string', default: '200' },
      lines: { type: 'string', default: 'tcp,pty' },
      'no-openssh': { type: 'boolean', default: false },
      'stall-ms': { type: 'string', default: '15000' },
      log: { type: 'string', default: 'warn' },
    },
  });
  const bytes = Math.round(Number(values.mib) * MiB);
  const rounds = Number(values.repeat);
  const samples = Number(values.samples);
  const stallMs = Number(values['stall-ms']);
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
    appliance = await startBenchAppliance(stateDir, values.log as 'debug' | 'info' | 'warn' | 'error');
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
        if (g.wedged) {
          parts.push(`tether ${g.line} skipped (link wedged)`);
          continue;
        }
        try {
          const t = await tetherThroughput(appliance, await g.sandbox.initPid(), g.throughputIds[round]!, bytes, stallMs);
          add(`tether-${g.line}`, t.bytesPerSecond);
          if (t.guestCpuMs !== undefined) add(`guest-cpu-${g.line}`, t.guestCpuMs / (bytes / MiB));
          add(`appliance-cpu-${g.line}`, t.applianceCpuMs / (bytes / MiB));
          const cpu = `CPU ms/MiB: guest ${t.guestCpuMs === undefined ? '?' : (t.guestCpuMs / (bytes / MiB)).toFixed(2)}, appliance ${(t.applianceCpuMs / (bytes / MiB)).toFixed(2)}`;
          parts.push(`tether ${g.line} ${rate(t.bytesPerSecond)} (${t.chunks} chunks at the appliance; ${cpu})`);
        } catch (error) {
          if (!(error instanceof Stalled)) throw error;
          g.wedged = error.message;
          parts.push(`tether ${g.line} STALLED at ${(error.received / MiB).toFixed(1)} of ${values.mib} MiB`);
        }
      }
      console.log(`  round ${round + 1}: ${parts.join('; ')}`);
    }
    const med = (name: string) => (results.has(name) ? median(results.get(name)!) : undefined);
    const openSame = med('openssh-same');
    const openDefault = med('openssh-default') ?? openSame;
    const lineName = (line: Line) => (line === 'tcp' ? 'direct TCP' : 'pty bridge');
    const row = (label: string, value: string, extra = '') => console.log(`  ${pad(label, 54)} ${pad(value, 12)}${extra}`);
    console.log(`  median of ${rounds}:`);
    if (openDefault !== undefined) row(`OpenSSH, ${defaultCipher!.cipher} (its default)`, rate(openDefault));
    if (openSame !== undefined && sameCipher !== defaultCipher) row(`OpenSSH, ${sameCipher!.cipher} (tether's cipher)`, rate(openSame));
    for (const g of guests) {
      const label = `tether ${lineName(g.line)}, ${g.negotiated.sc.cipher}`;
      const mine = med(`tether-${g.line}`);
      if (mine === undefined) {
        row(label, 'no result', `  ${g.wedged}`);
        continue;
      }
      const vs = openSame === undefined ? '' :
        `  ${x(mine, openSame)} OpenSSH same cipher` + (openDefault !== openSame ? `, ${x(mine, openDefault!)} OpenSSH default` : '');
      const met = openSame === undefined ? '' : mine / openSame >= GOAL_THROUGHPUT_RATIO ? ': met' : ': NOT met';
      const goal = g.line === 'tcp' ? `  [goal ≥ ${GOAL_THROUGHPUT_RATIO.toFixed(2)}× OpenSSH same cipher${met}]` : '';
      row(label, rate(mine), `${vs}${goal}`);
    }
    for (const g of guests) {
      const guestCpu = med(`guest-cpu-${g.line}`);
      const applianceCpu = med(`appliance-cpu-${g.line}`);
      if (applianceCpu === undefined) continue;
      console.log(`  tether ${lineName(g.line)} CPU per MiB moved (median): guest ${guestCpu === undefined ? '?' : guestCpu.toFixed(2)} ms, ` +
        `appliance process ${applianceCpu.toFixed(2)} ms${g.line === 'pty' ? ' (includes the pty bridge)' : ''}`);
    }
    for (const g of guests) {
      const peak = peakRssMiB(await g.sandbox.initPid());
      if (peak !== undefined) console.log(`  tether ${lineName(g.line)} guest peak RSS: ${peak.toFixed(0)} MiB`);
    }

    // ---- (b) attach latency ----
    console.log(`\n(b) attach latency: channel open to first byte, ${samples} attaches each`);
    const show = (label: string, times: number[], goal = '') =>
      console.log(`  ${pad(label, 54)} median ${pad(formatMs(median(times)), 9)} p90 ${pad(formatMs(p90(times)), 9)}${goal}`);
    const latencies = new Map<string, number[]>();
    for (const g of guests) {
      if (g.wedged) {
        console.log(`  tether ${lineName(g.line)}: skipped, its link is wedged (${g.wedged})`);
        continue;
      }
      const times = await attachLatency(appliance, g.latencyId, samples);
      latencies.set(g.line, times);
      const goal = `[goal median < ${GOAL_LATENCY_MS} ms: ${median(times) < GOAL_LATENCY_MS ? 'met' : 'NOT met'}]`;
      show(`tether ${lineName(g.line)}: directory.attach`, times, goal);
      show(`tether ${lineName(g.line)}: SSH attach channel only`, await sshAttachLatency(g.client, g.latencyId, samples));
      show(`tether ${lineName(g.line)}: container-ids round trip`, await pingLatency(g.client, samples));
    }
    if (defaultCipher) {
      const times = await defaultCipher.sessionLatency(samples);
      show('OpenSSH: new session on ControlMaster, `true`', times);
      const mine = latencies.get('tcp');
      if (mine) console.log(`  tether direct TCP directory.attach median is ${x(median(mine), median(times))} OpenSSH's session median (lower is better)`);
    }

    if (openSame !== undefined && results.has('tether-tcp')) {
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
