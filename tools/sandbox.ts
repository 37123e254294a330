import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { openPtyPair } from '../actors/ptyPair.ts';
import { generateKeyPair, parseKey } from '../actors/ssh/keys.ts';
import { bridge, type Bridge } from '../actors/tcp.ts';
import { applianceKey, registerGuest, unregisterGuest } from '../appliance/trust.ts';
import { parseGuestConfig, type GuestConfig } from '../shared/config.ts';
import { bundlePath } from './paths.ts';

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
}

export interface Sandbox {
  config: GuestConfig;
  guest: ChildProcess;
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
 * One containerVM, sandboxed: the guest bundle runs with a pty as its serial
 * port, and the pty's other side is bridged as a TCP client to the appliance,
 * reconnecting when the connection drops — what a hypervisor's network serial
 * port in client mode does. The containerVM's host key is made fresh and
 * registered with the appliance's trust store; the guest authorizes the
 * appliance's key.
 */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
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
  };
  let config: GuestConfig;
  try {
    config = parseGuestConfig(JSON.stringify(filled), options.source);
    registerGuest(options.stateDir, config.id, made?.publicKey ?? publicHalf(config.ssh.hostKey));
  } catch (err) {
    await pty?.close();
    throw err;
  }

  const dir = mkdtempSync(join(tmpdir(), 'tether-sandbox-'));
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  const line = pty && bridge({ master: pty.master, host: options.appliance.host, port: options.appliance.port });
  const guestConsole = typeof options.console === 'object' ? openSync(options.console.file, 'a') : (options.console ?? 'inherit');
  const guest = spawn(process.execPath, ['--enable-source-maps', bundlePath('guest.cjs'), '--config', configPath], {
    stdio: ['ignore', guestConsole, guestConsole],
  });
  if (typeof guestConsole === 'number') closeSync(guestConsole);
  // The guest init is the VM: when it is gone, so is the VM's serial
  // connection, as the hypervisor would close it.
  guest.once('exit', () => void line?.close());
  return {
    config,
    guest,
    serialDevice: device,
    line: pty && line ? { master: pty.master, bridge: line } : undefined,
    close: async () => {
      if (guest.exitCode === null && guest.signalCode === null) {
        guest.kill('SIGTERM');
        await once(guest, 'exit');
      }
      await line?.close();
      await pty?.close();
      rmSync(dir, { recursive: true, force: true });
      // The host key was made for this run; nobody should be trusted with it later.
      if (made) unregisterGuest(options.stateDir, config.id);
    },
  };
}

/** The OpenSSH public key line of a private key. */
function publicHalf(privateKey: string): string {
  const key = parseKey(privateKey, 'ssh.hostKey');
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}
