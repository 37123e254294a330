/**
 * The live visualizer's HTTP server: `/` is the page, `/feed` relays the
 * appliance's inspection feed to it (same origin, so the page needs no CORS),
 * one upstream connection per page, closed when the page goes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Address } from '../../appliance/address.ts';
import { EVENT_STREAM } from '../../appliance/api/inspect.ts';
import { REACHABILITY_EVENT } from './client.ts';
import { followFeed, RETRY_MS } from './feed.ts';

export interface VizServerOptions {
  appliance: Address;
  host: string;
  port: number;
  /** The live page's HTML. */
  page: string;
  /** Told about malformed feed messages. */
  warn(message: string): void;
}

export interface VizServer {
  /** http://HOST:PORT/ with the port it actually got. */
  url: string;
  close(): Promise<void>;
}

export async function startVizServer(options: VizServerOptions): Promise<VizServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') return plain(res, 405, `${req.method} is not served here`);
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      return void res.end(options.page);
    }
    if (path === '/feed') return relay(res, options);
    plain(res, 404, `${path} not found: the page is at /`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot serve the visualizer on ${options.host}:${options.port}: ${error.message}`)));
    server.listen(options.port, options.host, resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Feed responses never end by themselves; ending them closes their upstream connections.
        server.closeAllConnections();
      }),
  };
}

function relay(res: http.ServerResponse, options: VizServerOptions): void {
  res.writeHead(200, { 'Content-Type': EVENT_STREAM, 'Cache-Control': 'no-store' });
  // Should this server restart, the page's EventSource comes back as soon as the feed would.
  res.write(`retry: ${RETRY_MS}\n\n`);
  const send = (event: string | undefined, data: unknown) => res.write(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
  const feed = followFeed(options.appliance, {
    state: (state) => send(undefined, state),
    reachability: (reachable, detail) => send(REACHABILITY_EVENT, { reachable, detail }),
    warn: options.warn,
  });
  res.on('close', () => feed.close());
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}
