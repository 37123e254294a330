import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { openPtyPair } from '../actors/ptyPair.ts';
import { generateKeyPair, parseKey } from '../actors/ssh/keys.ts';
import { bridge, type Bridge } from '../actors/tcp.ts';
import { PRIVATE_FILE } from '../appliance/stateDir.ts';
import { applianceKey, registerGuest, unregisterGuest } from '../appliance/trust.ts';
import { exitStatus } from '../appliance/vmMonitor.ts';
import { parseGuestConfig, type GuestConfig } from '../shared/config.ts';
import { signalExitCode } from '../shared/signals.ts';
import { bundlePath } from '../shared/bundlePath.ts';

export interface SandboxOptions {
  /** The guest config as the user wrote it; keys and the serial device are filled in. */
  config: Record<string, unknown>;
  /** Where the config came from, for error messages. */
  source: string;
  /** The appliance's serial listener. */
  appliance: { host: string; port: number };
  /** The appliance's trust store (appliance/trust.ts). */
  stateDir: string;
  /** Where the guest's console (its stdout and stderr) goes: ours (default), nowhere, or appended to a file. */
  console?: 'inherit' | 'ignore' | { file: string };
  /**
   * The serial line: a pty bridged to the appliance (default, as a VM's
   * serial port), or a direct TCP connection from the guest (no pty: the
   * link without the serial path, for benchmarks).
   */
  line?: 'pty' | 'tcp';
  /**
   * Where the config document the guest reads (with its host key) is
   * written: a fresh temporary directory by default, removed on close. A
   * monitor gives its container's directory, so that whatever ends the
   * monitor, the key goes with the container (`docker rm`).
   */
  workDir?: string;
}

export interface Sandbox {
  config: GuestConfig;
  /** The launcher (unshare) whose child is the containerVM's PID 1; it exits with PID 1's status. */
  guest: ChildProcess;
  /** The init's exit status once it has ended, as a shell reports it: its own, or 128 + the signal that ended it. */
  exited: Promise<number>;
  /** The host's PID of the guest init (PID 1 inside), once it has been forked. */
  initPid(): Promise<number>;
  /** A signal to the guest init, as a hypervisor's ACPI button or `docker stop` would send it. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** The config document the guest reads (again on SIGHUP). */
  configPath: string;
  /** What the guest uses as its serial port: the pty, or tcp://HOST:PORT. */
  serialDevice: string;
  /** The hypervisor's side of the serial port (pty line only). */
  line?: { master: Duplex; bridge: Bridge };
  close(): Promise<void>;
}

/** Reads a guest config file as JSON, naming the file on failure. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read guest config ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`guest config ${path} is not JSON: ${(err as Error).message}`);
  }
}

/**
 * What a VM's kernel gives its init, and so the sandbox's: not the
 * launcher's environment (a NODE_EXTRA_CA_CERTS there costs every Node
 * start tens of milliseconds, and nothing of the host belongs in the VM).
 */
export const INIT_ENV: Readonly<Record<string, string>> = { HOME: '/', TERM: 'linux', PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/**
 * How Node runs the guest init. No --enable-source-maps: it costs the init
 * ~30 ms and 10 MiB at every boot; dist/guest.cjs.map decodes a stack trace
 * after the fact. A 1 MiB young generation instead of 16: PID 1's peak
 * memory under an orphan storm or a busy link drops by 5 to 25 MiB, and the
 * link's throughput was no worse in the same run (`npm run bench -- link`).
 */
export const GUEST_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** The namespaces a containerVM gets: what a VM would not share with its host. */
const NAMESPACES = ['pid', 'mnt', 'uts', 'ipc', 'net'] as const;

/** Why this process cannot make a containerVM's namespaces, or undefined when it can. */
export function sandboxUnsupported(): string | undefined {
  const uid = process.getuid?.();
  if (uid !== 0) return `tether sandbox needs root to make a containerVM's pid, mount, uts, ipc and network namespaces (running as uid ${uid})`;
  const missing = NAMESPACES.filter((ns) => !existsSync(`/proc/self/ns/${ns}`));
  if (missing.length > 0) return `tether sandbox needs ${missing.join(', ')} namespace support, which this kernel lacks (/proc/self/ns/${missing[0]} is missing)`;
  if (!onPath('unshare')) return 'tether sandbox needs unshare(1) from util-linux, which is not on PATH (apt-get install util-linux)';
  return undefined;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/**
 * The config's `hide` with the state directory added, where it lies in the
 * container's root; a `hide` that is not a list is left for the config's
 * parser to refuse, naming it.
 */
function hidingStateDir(user: Record<string, unknown>, stateDir: string): { hide?: unknown } {
  const root = user.rootfs === undefined || user.rootfs === 'host' ? '/' : resolve(String(user.rootfs));
  const inside = relative(root, resolve(stateDir));
  if (inside === '..' || inside.startsWith('../') || isAbsolute(inside)) return {};
  if (user.hide !== undefined && !Array.isArray(user.hide)) return {};
  return { hide: [...((user.hide as unknown[] | undefined) ?? []), `/${inside}`] };
}

/**
 * One containerVM, sandboxed: the guest bundle runs as PID 1 in fresh pid,
 * mount, uts, ipc and network namespaces (made by unshare(1); the guest
 * itself mounts what a VM's init would), with a pty as its serial port, and
 * the pty's other side is bridged as a TCP client to the appliance,
 * reconnecting when the connection drops — what a hypervisor's network
 * serial port in client mode does. The containerVM's host key is made fresh
 * and registered with the appliance's trust store; the guest authorizes the
 * appliance's key. Its output logs go to the appliance's state directory
 * unless the config names a `logDir`, so they outlive the containerVM.
 */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const unsupported = sandboxUnsupported();
  if (unsupported) throw new Error(unsupported);
  const pty = options.line === 'tcp' ? undefined : openPtyPair();
  const device = pty?.slavePath ?? `tcp://${options.appliance.host}:${options.appliance.port}`;
  const user = options.config;
  const ssh = (user.ssh ?? {}) as { hostKey?: string; authorizedKeys?: string[] };
  // A host key made for this run, unless the config brings its own.
  const made = ssh.hostKey === undefined ? generateKeyPair('tether-guest') : undefined;
  const filled = {
    ...user,
    ssh: {
      hostKey: made?.privateKey ?? ssh.hostKey,
      authorizedKeys: [...(ssh.authorizedKeys ?? []), applianceKey(options.stateDir).publicKey],
    },
    serial: { device },
    logDir: user.logDir ?? join(options.stateDir, 'containers', String(user.id), 'logs'),
    // A root that holds the appliance's state directory (the host's does) never shows its keys, sockets and images.
    ...hidingStateDir(user, options.stateDir),
  };
  let config: GuestConfig;
  try {
    config = parseGuestConfig(JSON.stringify(filled), options.source);
    // The launcher assigns the VM its config's sessions: the only IDs its guest may report.
    registerGuest(options.stateDir, config.id, made?.publicKey ?? publicHalf(config.ssh.hostKey), Object.keys(config.sessions));
  } catch (err) {
    await pty?.close();
    throw err;
  }

  const dir = options.workDir ?? mkdtempSync(join(tmpdir(), 'tether-sandbox-'));
  const configPath = join(dir, 'guest-config.json');
  // The document holds the VM's private host key: it goes on every way out
  // that runs code (close, a failed start, the process exiting); a
  // monitor's lies in its container's directory, which docker rm takes.
  const forget = () => {
    leftAtExit.delete(forget);
    rmSync(options.workDir ? configPath : dir, { recursive: true, force: true });
    // The host key was made for this run; nobody should be trusted with it later.
    if (made) unregisterGuest(options.stateDir, config.id);
  };
  removeAtExit(forget);
  let line: Bridge | undefined;
  let guest: ChildProcess;
  try {
    // The document as written (with what the sandbox fills in), for the guest to parse as it would any other.
    writeFileSync(configPath, JSON.stringify(filled, null, 2), { mode: 0o600 });
    line = pty && bridge({ master: pty.master, host: options.appliance.host, port: options.appliance.port });
    mkdirSync(config.logDir, { recursive: true, mode: 0o700 });
    // A descriptor even for nowhere: the init's stderr is handed over as one (below).
    const guestConsole =
      typeof options.console === 'object' ? openSync(options.console.file, 'a', PRIVATE_FILE) : options.console === 'ignore' ? openSync('/dev/null', 'w') : 'inherit';
    // --kill-child: if the launcher dies, so does the containerVM. A direct TCP
    // line keeps the host's network: the appliance is on its loopback.
    const namespaces = ['--pid', '--fork', '--kill-child', '--mount', '--uts', '--ipc', ...(options.line === 'tcp' ? [] : ['--net'])];
    // unshare's own stderr is ours (see initStatus); the shell gives the init
    // the console's stderr (passed as fd 3) and execs it, so the init is still PID 1.
    guest = spawn('unshare', [...namespaces, '--propagation', 'private', '--',
      '/bin/sh', '-c', 'exec "$@" 2>&3 3>&-', 'sh', process.execPath, ...GUEST_NODE_FLAGS, bundlePath('guest.cjs'), '--sandbox', '--config', configPath], {
      stdio: ['ignore', guestConsole, 'pipe', guestConsole === 'inherit' ? process.stderr.fd : guestConsole],
      env: { ...INIT_ENV, ...(process.env.TETHER_LOG === undefined ? {} : { TETHER_LOG: process.env.TETHER_LOG }) },
    });
    if (typeof guestConsole === 'number') closeSync(guestConsole);
  } catch (err) {
    forget();
    await line?.close();
    await pty?.close();
    throw err;
  }
  let launcherSaid = '';
  guest.stderr!.setEncoding('utf8').on('data', (text: string) => {
    launcherSaid += text;
    toConsole(options.console, text);
  });
  // 'close', not 'exit': what unshare said may come after its exit.
  const status = new Promise<number>((resolve) => guest.once('close', (code, signal) => resolve(initStatus(code, signal, launcherSaid))));
  const exited = once(guest, 'exit');
  // The guest init is the VM: when it is gone, so is the VM's serial
  // connection, as the hypervisor would close it.
  guest.once('exit', () => void line?.close());
  const running = () => guest.exitCode === null && guest.signalCode === null;
  const initPid = () => childOf(guest.pid!);
  const signal = async (name: NodeJS.Signals) => {
    const pid = await initPid();
    if (running()) process.kill(pid, name);
  };
  return {
    config,
    guest,
    exited: status,
    initPid,
    signal,
    configPath,
    serialDevice: device,
    line: pty && line ? { master: pty.master, bridge: line } : undefined,
    close: async () => {
      if (running()) {
        // unshare(1) ignores TERM; the init inside stops its sessions and exits.
        await signal('SIGTERM').catch(() => guest.kill('SIGKILL'));
        const timer = setTimeout(() => guest.kill('SIGKILL'), CLOSE_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await line?.close();
      await pty?.close();
      forget();
    },
  };
}

/**
 * The init's exit status from how its launcher ended: unshare(1) with
 * --fork exits with its child's code, and dies of the signal that killed
 * its child, except SIGKILL before util-linux 2.40, whose disposition it
 * fails to reset: it exits 1 saying "sigprocmask unblock failed"
 * (util-linux issue #2614). Debian 12 has 2.38.
 */
function initStatus(code: number | null, signal: NodeJS.Signals | null, launcherSaid: string): number {
  if (code === 1 && /sigprocmask unblock failed/.test(launcherSaid)) return signalExitCode('KILL');
  return exitStatus(code, signal);
}

/** What unshare says goes where the guest's console does. */
function toConsole(console: SandboxOptions['console'], text: string): void {
  if (typeof console === 'object') appendFileSync(console.file, text, { mode: PRIVATE_FILE });
  else if (console !== 'ignore') process.stderr.write(text);
}

/** The removals of sandboxes still open, run if this process exits without closing them (one listener for them all). */
const leftAtExit = new Set<() => void>();
function removeAtExit(forget: () => void): void {
  if (!process.listeners('exit').includes(forgetAll)) process.on('exit', forgetAll);
  leftAtExit.add(forget);
}
function forgetAll(): void {
  for (const forget of leftAtExit) forget();
}

/** Longer than any stop timeout a test gives its sessions; then the launcher is killed, and with it the VM. */
const CLOSE_GRACE_MS = 15_000;

/** The PID of `parent`'s only child, polled until unshare(1) has forked it. */
async function childOf(parent: number): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    try {
      const child = Number.parseInt(readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8'), 10);
      if (child > 0) return child;
    } catch (err) {
      throw new Error(`cannot find the containerVM's init: ${(err as Error).message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`the containerVM's launcher (PID ${parent}) has not forked its init after 1 s`);
}

/** The OpenSSH public key line of a private key. */
function publicHalf(privateKey: string): string {
  const key = parseKey(privateKey, 'ssh.hostKey');
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}
