/**
 * What a route answers, as data. Routes never touch sockets for ordinary
 * answers; the server writes a Reply either through node:http's response or,
 * when node:http handed the request over as an upgrade, straight onto the
 * socket. Only attach takes the connection itself.
 */
import type { Duplex } from 'node:stream';

export type Headers = Record<string, string>;

export type Reply =
  /** A complete answer. */
  | { kind: 'full'; status: number; headers: Headers; body: string }
  /**
   * Status and headers now, body when the promise settles (it must not
   * reject): `docker attach` waits for the headers of its `/wait` before it
   * goes on to attach.
   */
  | { kind: 'deferred'; status: number; headers: Headers; body: Promise<string> }
  /** The server writes the hijack response head, then hands the connection over. */
  | { kind: 'hijack'; contentType: string; take(socket: Duplex, head: Buffer): void };

export function json(status: number, value: unknown): Reply {
  return { kind: 'full', status, headers: { 'Content-Type': 'application/json' }, body: jsonBody(value) };
}

/** Go's json.Encoder ends every document with a newline; clients that read line by line rely on it. */
export function jsonBody(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

export function errorReply(status: number, message: string): Reply {
  return json(status, { message });
}
