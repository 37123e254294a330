/**
 * OpenSSH as the peer every tether benchmark is compared with, measured in the
 * same run on the same machine: a private sshd on 127.0.0.1 (never the system
 * one) with its own host key, and the stock ssh client verifying that key.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytesPerSecond, formatMs, mean, median, p90, TransferClock } from './stats.ts';

export const SSHD = '/usr/sbin/sshd';
const HOST = '127.0.0.1';
const MiB = 1024 * 1024;

export interface OpenSshOptions {
  /** Force one cipher (e.g. `aes128-gcm@openssh.com`) so tether and OpenSSH encrypt alike. */
  cipher?: string;
}

export interface OpenSsh {
  /** The cipher negotiated for server→client data, the direction benchmarks move. */
  readonly cipher: string;
  /** The only host key the client trusts; exposed so a test can prove the check is real. */
  readonly knownHostsPath: string;
  /** Bytes/s of remote `head -c N /dev/zero` read to the end from the local ssh client's stdout. */
  throughput(bytes: number): Promise<number>;
  /** The ssh client's argv that runs `remote` on the server over a fresh connection, for a caller that feeds and reads it. */
  command(remote: string): string[];
  /** Wall ms of each new `true` session on one warm ControlMaster connection. */
  sessionLatency(samples: number): Promise<number[]>;
  close(): Promise<void>;
}

interface Exit {
  code: number | null;
  stderr: string;
}

function run(file: string, args: string[], onStdout?: (chunk: Buffer) => void): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', onStdout ? 'pipe' : 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    if (onStdout) child.stdout!.on('data', onStdout);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

async function check(what: string, exit: Promise<Exit>): Promise<Exit> {
  const { code, stderr } = await exit;
  if (code !== 0) throw new Error(`${what} exited with ${code}: ${stderr.trim()}`);
  return { code, stderr };
}

async function keygen(path: string): Promise<string> {
  await check('ssh-keygen', run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tether-bench', '-f', path]));
  return (await readFile(`${path}.pub`, 'utf8')).trim();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function sshdConfig(dir: string, port: number): string {
  return [
    `ListenAddress ${HOST}:${port}`,
    `HostKey ${dir}/host_ed25519`,
    `AuthorizedKeysFile ${dir}/authorized_keys`,
    'PidFile none',
    // StrictModes would refuse authorized_keys under world-writable /tmp.
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PrintMotd no',
    // sshd runs every command as `$SHELL -c`, and bash then sources ~/.bashrc
    // for a top-level shell started by sshd; root's rc here (pyenv init) costs
    // hundreds of ms a session. A nested SHLVL skips it, leaving the channel
    // cost that "docker exec true" is compared with.
    'SetEnv SHLVL=1',
    '',
  ].join('\n');
}

/** Resolves once sshd listens; rejects with its log if it exits first (e.g. the port was taken). */
function startSshd(config: string): Promise<ReturnType<typeof spawn>> {
  return new Promise((resolve, reject) => {
    const sshd = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    let starting = true;
    const onLog = (text: string) => {
      // Keep draining for sshd's whole life: a full pipe would stall it. The tail explains a failed start.
      log = (log + text).slice(-4096);
      if (starting && /Server listening on/.test(log)) {
        starting = false;
        sshd.off('exit', onExit);
        resolve(sshd);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`sshd exited with ${code}: ${log.trim()}`));
    sshd.stderr.setEncoding('utf8').on('data', onLog);
    sshd.once('error', reject).once('exit', onExit);
  });
}

export async function startOpenSsh(options: OpenSshOptions = {}): Promise<OpenSsh> {
  // sshd refuses to start without its privilege-separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'tether-openssh-'));
  const hostKey = await keygen(`${dir}/host_ed25519`);
  const clientKey = await keygen(`${dir}/client_ed25519`);
  await writeFile(`${dir}/authorized_keys`, `${clientKey}\n`);

  let sshd: ReturnType<typeof spawn> | undefined;
  let port = 0;
  // A port found free can be taken before sshd binds it; another one is the cure.
  for (let attempt = 1; !sshd; attempt++) {
    port = await freePort();
    await writeFile(`${dir}/sshd_config`, sshdConfig(dir, port));
    try {
      sshd = await startSshd(`${dir}/sshd_config`);
    } catch (error) {
      if (attempt === 3 || !/Address already in use/.test(String(error))) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const killSshd = () => sshd!.kill();
  process.once('exit', killSshd);

  const knownHostsPath = `${dir}/known_hosts`;
  await writeFile(knownHostsPath, `[${HOST}]:${port} ${hostKey}\n`);
  const ssh = [
    '-F', '/dev/null',
    '-p', String(port),
    '-l', userInfo().username,
    '-i', `${dir}/client_ed25519`,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHostsPath}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'UpdateHostKeys=no',
    ...(options.cipher ? ['-c', options.cipher] : []),
  ];
  const mux = ['-o', `ControlPath=${dir}/cm`, '-o', 'ControlMaster=auto', '-o', 'ControlPersist=60'];
  let muxStarted = false;

  const stop = async () => {
    if (muxStarted) await run('ssh', [...ssh, ...mux, '-O', 'exit', HOST]);
    process.off('exit', killSshd);
    if (sshd!.exitCode === null) {
      const exited = new Promise((resolve) => sshd!.once('exit', resolve));
      sshd!.kill();
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };

  let cipher: string | undefined;
  try {
    const { stderr: verbose } = await check('ssh -v', run('ssh', [...ssh, '-v', HOST, 'true']));
    cipher = /kex: server->client cipher: (\S+)/.exec(verbose)?.[1];
    if (!cipher) throw new Error(`ssh -v did not name the negotiated cipher:\n${verbose}`);
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    cipher,
    knownHostsPath,

    async throughput(bytes) {
      if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new RangeError(`bad byte count ${bytes}`);
      // Time from the first byte to the last: the handshake and teardown are not
      // transfer, and at 256 MiB they would still skew the rate by several percent.
      const clock = new TransferClock();
      await check('ssh', run('ssh', [...ssh, HOST, `head -c ${bytes} /dev/zero`], (chunk) => clock.chunk(chunk.length)));
      if (clock.received !== bytes) throw new Error(`ssh delivered ${clock.received} of ${bytes} bytes`);
      return clock.bytesPerSecond('ssh');
    },

    command: (remote) => ['ssh', ...ssh, HOST, remote],

    async sessionLatency(samples) {
      if (!muxStarted) {
        muxStarted = true;
        await check('ssh (ControlMaster warm-up)', run('ssh', [...ssh, ...mux, HOST, 'true']));
        // Without a live master every sample would silently time a full handshake.
        await check('ssh -O check', run('ssh', [...ssh, ...mux, '-O', 'check', HOST]));
      }
      const times: number[] = [];
      for (let i = 0; i < samples; i++) {
        const start = performance.now();
        await check('ssh (ControlMaster session)', run('ssh', [...ssh, ...mux, HOST, 'true']));
        times.push(performance.now() - start);
      }
      return times;
    },

    close: stop,
  };
}

export const description = 'OpenSSH alone: throughput of remote head -c N /dev/zero, and new-session latency on a ControlMaster connection';

/** `npm run bench -- openssh [--mib 256] [--samples 200] [--repeat 2] [--cipher NAME]` */
export default async function (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      mib: { type: 'string', default: '256' },
      samples: { type: 'string', default: '200' },
      repeat: { type: 'string', default: '2' },
      cipher: { type: 'string' },
    },
  });
  const bytes = Number(values.mib) * MiB;
  const openSsh = await startOpenSsh(values.cipher ? { cipher: values.cipher } : {});
  try {
    console.log(`OpenSSH cipher: ${openSsh.cipher}`);
    for (let round = 1; round <= Number(values.repeat); round++) {
      const rate = await openSsh.throughput(bytes);
      const times = await openSsh.sessionLatency(Number(values.samples));
      console.log(
        `round ${round}: ${values.mib} MiB at ${formatBytesPerSecond(rate)}; ` +
          `${times.length} sessions: median ${formatMs(median(times))}, ` +
          `p90 ${formatMs(p90(times))}, mean ${formatMs(mean(times))}`,
      );
    }
  } finally {
    await openSsh.close();
  }
}
