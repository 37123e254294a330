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
