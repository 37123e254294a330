/**
 * Exploration for planning, not a tether benchmark: how fast ssh2 alone moves
 * bytes from a Server's exec channel (the guest side) to a Client (the
 * appliance side) over loopback TCP, in one process or two, per cipher,
 * receive window and byte source, each beside OpenSSH measured in the same run.
 *
 * Sources: `process` pipes a `head -c N /dev/zero` child's stdout into the
 * channel, the same work OpenSSH's peer does; `memory` writes zeros from the
 * server itself, ssh2's ceiling without any process or pipe.
 *
 * `npm run bench -- explore-ssh2 [--mib 256] [--repeat 2] [--processes 1,2]
 *   [--ciphers default,aes128-gcm@openssh.com,...] [--windows default,16]
 *   [--sources process,memory] [--no-binding] [--nagle]`
 */
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Algorithms, CipherAlgorithm, Client, ClientChannel, ServerChannel } from 'ssh2';
import { startOpenSsh, type OpenSsh } from './openssh.ts';
import { formatBytesPerSecond, ratio, TransferClock } from './stats.ts';

type Ssh2 = typeof import('ssh2');

interface Setup {
  ssh2: Ssh2;
  /** Whether ssh2's native crypto addon is loaded. */
  binding: boolean;
  /**
   * With Nagle on, ssh2's small window-adjust packets meet delayed ACKs and a
   * 2 MiB window stalls near 40 MiB/s (seen without the native addon), so
   * sockets here disable it unless asked to show that stall.
   */
  nagle: boolean;
}

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const CIPHERS = ['default', 'aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];

export const description = 'exploration: ssh2 Server→Client throughput, 1 or 2 processes, per cipher and window, beside OpenSSH';

/**
 * ssh2 falls back to Node's crypto when its optional native addon is absent (as
 * in a bundle that cannot carry .node files); refusing to load the addon shows
 * that case. It must run before ssh2 is first loaded, hence ssh2's lazy import.
 */
async function loadSsh2(binding: boolean): Promise<Ssh2> {
  const require = createRequire(import.meta.url);
  if (!binding) {
    const Module = require('node:module') as { _extensions: Record<string, (m: unknown, file: string) => void> };
    const loadNative = Module._extensions['.node']!;
    Module._extensions['.node'] = (m, file) => {
      if (file.endsWith('sshcrypto.node')) throw new Error('native ssh2 crypto disabled for this run');
      loadNative(m, file);
    };
  }
  const ssh2 = (await import('ssh2')).default;
  const { bindingAvailable } = require('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  if (bindingAvailable !== binding) throw new Error(`wanted ssh2 native crypto ${binding}, got ${bindingAvailable}`);
  return ssh2;
}

function algorithms(cipher: string): { algorithms?: Algorithms } {
  return cipher === 'default' ? {} : { algorithms: { cipher: [cipher as CipherAlgorithm] } };
}

/** Writes `bytes` zeros from memory, honouring backpressure. */
async function pump(channel: ServerChannel, bytes: number): Promise<void> {
  const zeros = Buffer.alloc(CHUNK);
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!channel.write(zeros.subarray(0, Math.min(CHUNK, bytes - sent)))) await once(channel, 'drain');
  }
  channel.exit(0);
  channel.end();
}

/** Runs the command as sshd would (`sh -c`) with its stdout piped into the channel. */
function exec(channel: ServerChannel, command: string): void {
  const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pipe(channel, { end: false });
  child.once('close', (code) => {
    channel.exit(code ?? 1);
    channel.end();
  });
}

interface Served {
  port: number;
  hostKey: string;
  close(): void;
}

/**
 * ssh2 1.17's ed25519 keygen strips leading zero bytes from the public key, so
 * about 1 key in 256 fails its own parser (mscdex/ssh2#1390): draw again.
 */
function hostKeyPair(ssh2: Ssh2): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

/** An ssh2 Server: exec `zeros N` sends N zeros from memory, anything else runs as a command. */
async function serve({ ssh2, nagle }: Setup, cipher: string, password: string): Promise<Served> {
  const hostKey = hostKeyPair(ssh2);
  const server = new ssh2.Server({ hostKeys: [hostKey.private], ...algorithms(cipher) }, (client) => {
    client.on('error', () => {}); // the benchmark client disconnecting abruptly is expected
    // ssh2 has the method on server-side connections too; @types/ssh2 omits it.
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(!nagle);
    client.on('authentication', (ctx) =>
      ctx.method === 'password' && ctx.password === password ? ctx.accept() : ctx.reject(['password']),
    );
    client.on('session', (accept) =>
      accept().on('exec', (accept, _reject, info) => {
        const zeros = /^zeros (\d+)$/.exec(info.command);
        if (zeros) void pump(accept(), Number(zeros[1]));
        else exec(accept(), info.command);
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, hostKey: hostKey.public, close: () => server.close() };
}

interface Transfer {
  cipher: string;
  source: string;
  /** Receive window to keep open, in bytes; ssh2's own is a fixed 2 MiB. */
  window?: number;
}

interface Received {
  bytesPerSecond: number;
  cipher: string;
}

/** Bytes/s from first to last byte, as OpenSSH is timed, and the server→client cipher used. */
async function receive({ ssh2, nagle }: Setup, served: Served, password: string, bytes: number, opts: Transfer): Promise<Received> {
  const hostKey = ssh2.utils.parseKey(served.hostKey);
  if (hostKey instanceof Error) throw hostKey;
  const expected = hostKey.getPublicSSH();
  const conn = new ssh2.Client();
  const [[negotiated]] = await Promise.all([
    once(conn, 'handshake'),
    once(conn, 'ready'),
    conn.connect({
      host: '127.0.0.1',
      port: served.port,
      username: 'bench',
      password,
      hostVerifier: (key: Buffer) => key.equals(expected),
      ...algorithms(opts.cipher),
    }),
  ]);
  conn.setNoDelay(!nagle);
  try {
    const command = opts.source === 'memory' ? `zeros ${bytes}` : `head -c ${bytes} /dev/zero`;
    const stream = await new Promise<ClientChannel>((resolve, reject) =>
      conn.exec(command, (err, stream) => (err ? reject(err) : resolve(stream))),
    );
    const clock = new TransferClock();
    stream.on('data', (chunk: Buffer) => {
      clock.chunk(chunk.length);
      if (opts.window) widen(conn, stream, opts.window);
    });
    await once(stream, 'close');
    if (clock.received !== bytes) throw new Error(`ssh2 delivered ${clock.received} of ${bytes} bytes`);
    return { bytesPerSecond: clock.bytesPerSecond('ssh2'), cipher: negotiated.sc.cipher };
  } finally {
    conn.end();
  }
}

interface PrivateChannel {
  incoming: { window: number };
  outgoing: { id: number };
}

/**
 * ssh2 offers no option for the channel window (lib/Channel.js MAX_WINDOW) and
 * rejects packets over 35000 bytes (lib/protocol/crypto.js), so a wider window
 * is only reachable through its internals: top the window up ourselves before
 * ssh2's own 1 MiB threshold triggers.
 */
function widen(conn: Client, stream: ClientChannel, window: number): void {
  const channel = stream as unknown as PrivateChannel;
  if (channel.incoming.window >= window / 2) return;
  const protocol = (conn as unknown as { _protocol: { channelWindowAdjust(id: number, amount: number): void } })._protocol;
  protocol.channelWindowAdjust(channel.outgoing.id, window - channel.incoming.window);
  channel.incoming.window = window;
}

/** The server half in a child process, so sender and receiver get a core each. */
async function serveInChild({ binding, nagle }: Setup, cipher: string, password: string): Promise<Served> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', cipher, String(binding), String(nagle)], {
    env: { ...process.env, EXPLORE_SSH2_PASSWORD: password },
  });
  const [served] = (await once(child, 'message')) as [{ port: number; hostKey: string }];
  return { ...served, close: () => child.disconnect() };
}

async function measure(setup: Setup, processes: number, bytes: number, opts: Transfer): Promise<Received> {
  const password = randomBytes(16).toString('hex');
  const served = processes === 1 ? await serve(setup, opts.cipher, password) : await serveInChild(setup, opts.cipher, password);
  try {
    return await receive(setup, served, password, bytes, opts);
  } finally {
    served.close();
  }
}

function list(value: string): string[] {
  return value.split(',').filter(Boolean);
}

export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mib: { type: 'string', default: '256' },
      repeat: { type: 'string', default: '2' },
      processes: { type: 'string', default: '1,2' },
      ciphers: { type: 'string', default: CIPHERS.join(',') },
      windows: { type: 'string', default: 'default,16' },
      sources: { type: 'string', default: 'process,memory' },
      'no-binding': { type: 'boolean', default: false },
      nagle: { type: 'boolean', default: false },
    },
  });
  const bytes = Number(values.mib) * MiB;
  const binding = !values['no-binding'];
  const setup: Setup = { ssh2: await loadSsh2(binding), binding, nagle: values.nagle };
  console.log(
    `ssh2 native crypto: ${binding ? 'yes' : 'no'}; Nagle ${values.nagle ? 'on' : 'off'}; ` +
      `${values.mib} MiB per transfer; ratio = ssh2 / OpenSSH`,
  );

  const peers = new Map<string, OpenSsh>();
  try {
    for (let round = 1; round <= Number(values.repeat); round++) {
      for (const cipher of list(values.ciphers)) {
        if (!peers.has(cipher)) peers.set(cipher, await startOpenSsh(cipher === 'default' ? {} : { cipher }));
        const peer = peers.get(cipher)!;
        const openSsh = await peer.throughput(bytes);
        console.log(`round ${round} ${cipher}: OpenSSH (${peer.cipher}) ${formatBytesPerSecond(openSsh)}`);
        for (const source of list(values.sources)) {
          for (const processes of list(values.processes).map(Number)) {
            for (const windowMiB of list(values.windows)) {
              const window = windowMiB === 'default' ? undefined : Number(windowMiB) * MiB;
              const got = await measure(setup, processes, bytes, { cipher, source, ...(window && { window }) });
              const label = `${source}, ${processes}p, window ${window ? windowMiB : 2} MiB`;
              console.log(`  ssh2 (${got.cipher}) ${label.padEnd(28)} ${formatBytesPerSecond(got.bytesPerSecond).padStart(12)}  ${ratio(got.bytesPerSecond, openSsh)}`);
            }
          }
        }
      }
    }
  } finally {
    for (const peer of peers.values()) await peer.close();
  }
}

// Entry of the forked server half: serve until the parent disconnects.
if (process.argv[2] === '--serve' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [cipher, binding, nagle] = process.argv.slice(3);
  const setup: Setup = { ssh2: await loadSsh2(binding === 'true'), binding: binding === 'true', nagle: nagle === 'true' };
  const served = await serve(setup, cipher!, process.env.EXPLORE_SSH2_PASSWORD!);
  process.send!({ port: served.port, hostKey: served.hostKey });
  process.once('disconnect', () => served.close());
}
