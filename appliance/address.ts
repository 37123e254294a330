import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A listening address given on the command line: `tcp://HOST:PORT` or `unix:///PATH`. */
export type Address = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseAddress(text: string, what: string): Address {
  if (text.startsWith('unix://')) {
    const path = text.slice('unix://'.length);
    if (!path.startsWith('/')) throw new Error(`${what} ${text}: a unix socket address needs an absolute path (unix:///run/tether.sock)`);
    return { kind: 'unix', path };
  }
  const match = /^tcp:\/\/(\[[0-9a-fA-F:]+\]|[^:/]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`${what} ${text}: expected tcp://HOST:PORT (port 0-65535) or unix:///PATH`);
  return { kind: 'tcp', host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

export function formatAddress(address: Address): string {
  return address.kind === 'unix' ? `unix://${address.path}` : `tcp://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The serial listener's address: TCP only, since the hypervisor connects over TCP. */
export function parseSerialAddress(text: string, what: string): Address & { kind: 'tcp' } {
  const address = parseAddress(text, what);
  if (address.kind !== 'tcp') throw new Error(`${what} ${text}: the serial listener takes a tcp://HOST:PORT address`);
  return address;
}

/** The files of `--tls-ca`, `--tls-cert` and `--tls-key`: like dockerd's `--tlsverify --tlscacert --tlscert --tlskey`. */
export interface TlsFiles {
  /** The CA whose certificates clients must present. */
  ca: string;
  /** This server's certificate and its private key. */
  cert: string;
  key: string;
}

export type TlsCredentials = Record<keyof TlsFiles, Buffer>;

/**
 * Reads and checks the TLS files at start: a bad file found only at the first
 * handshake would show as a client that cannot connect, with no word of why.
 */
export function readTlsFiles(files: TlsFiles): TlsCredentials {
  const [ca] = read('--tls-ca', files.ca, (pem) => certificate(pem, 'CA'));
  const [cert, server] = read('--tls-cert', files.cert, (pem) => certificate(pem, 'server'));
  const [key] = read('--tls-key', files.key, (pem) => {
    let parsed: KeyObject;
    try {
      parsed = createPrivateKey(pem);
    } catch (error) {
      throw new Error(`not a PEM private key (${(error as Error).message})`);
    }
    if (!server.checkPrivateKey(parsed)) throw new Error(`not the private key of the certificate in --tls-cert ${files.cert}`);
  });
  return { ca, cert, key };
}

/** The file behind `option`, and what `check` makes of it; its errors name the option and the file. */
function read<T>(option: string, path: string, check: (pem: Buffer) => T): [Buffer, T] {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    throw new Error(`${option} ${path}: cannot read it: ${(error as Error).message}`);
  }
  try {
    return [pem, check(pem)];
  } catch (error) {
    throw new Error(`${option} ${path}: ${(error as Error).message}`);
  }
}

function certificate(pem: Buffer, what: string): X509Certificate {
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(pem);
  } catch (error) {
    throw new Error(`not a PEM ${what} certificate (${(error as Error).message})`);
  }
  if (Date.parse(parsed.validTo) < Date.now()) throw new Error(`the ${what} certificate expired on ${parsed.validTo}`);
  return parsed;
}
