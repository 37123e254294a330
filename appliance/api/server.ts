/**
 * The Docker Engine API server: node:http (node:https with TLS) plus the router. Routes answer
 * with a Reply; this file writes Replies onto the wire, which takes two
 * paths because node:http hands a request over in one of two ways:
 * - an ordinary request comes with a ServerResponse;
 * - a request carrying `Connection: Upgrade` (what every docker client sends
 *   to attach) comes as a bare socket, and everything, errors included, is
 *   written onto it by hand.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable, type Duplex } from 'node:stream';
import type { TlsCredentials } from '../address.ts';
import type { ImageStore } from '../images.ts';
import { API_VERSION } from './apiVersion.ts';
import { attachRoute } from './attach.ts';
import { containerRoutes } from './containers.ts';
import { controlRoutes } from './control.ts';
import { execRoutes } from './exec.ts';
import type { ContainerControl, ContainerDirectory } from './directory.ts';
import { ApiError, messageOf } from './errors.ts';
import { imageRoutes } from './images.ts';
import { infoRoute } from './info.ts';
import { inspectRoute } from './inspect.ts';
import { type Lifecycle, lifecycleRoutes } from './lifecycle.ts';
import type { LiveFeed } from './liveFeed.ts';
import { type LogDirOf, logsRoute } from './logs.ts';
import { type ApiLog, silent } from './log.ts';
import { errorReply, type Headers, jsonBody, type Reply } from './reply.ts';
import { ReleasingAttaches } from './releasingAttaches.ts';
import { createRouter } from './router.ts';
import { type BuildInfo, systemRoutes } from './system.ts';

export interface ApiServerOptions extends BuildInfo {
  /** Receives one debug line per request; none by default. */
  readonly log?: ApiLog;
  /** The live states `GET /tether/v1/inspect` streams; without them there is no such route. */
  readonly inspect?: LiveFeed;
  /** Kill and stop; without them there are no such routes. */
  readonly control?: ContainerControl & Pick<ContainerDirectory, 'find'>;
  /** Where each container's output log files lie; without it there is no logs route. */
  readonly logDirOf?: LogDirOf;
  /** The local root file systems `docker import`, `docker images` and `docker rmi` manage; without it there are no image routes. */
  readonly images?: ImageStore;
  /** Create, start and remove containers (`docker create`, `docker run`, `docker rm`); without it there are no such routes. */
  readonly lifecycle?: Lifecycle;
  /** Serve https and admit only clients whose certificate the CA signed (dockerd's --tlsverify); plain http without. */
  readonly tls?: TlsCredentials;
  /** The appliance's state directory, as `docker info` shows it. */
  readonly stateDir?: string;
}

/** The API's server, and how the appliance closes it. */
export interface ApiServer extends http.Server {
  /**
   * Stops listening and ends every connection at once, the attaches and
   * execs among them (node:http lets go of a connection it upgraded, so its
   * own closeAllConnections does not reach those): their containers go on
   * running, and a client sees its connection end.
   */
  shutDown(): Promise<void>;
}

export function createApiServer(directory: ContainerDirectory, options: ApiServerOptions): ApiServer {
  const log = options.log ?? silent;
  const releasing = new ReleasingAttaches();
  const route = createRouter([
    ...systemRoutes(options),
    infoRoute(directory, { build: options, images: options.images, stateDir: options.stateDir }),
    ...containerRoutes(directory, releasing),
    attachRoute(directory, releasing, log),
    ...(options.control ? controlRoutes(options.control) : []),
    ...(options.control ? execRoutes(directory, options.control, log) : []),
    ...(options.inspect ? [inspectRoute(options.inspect)] : []),
    ...(options.logDirOf ? [logsRoute(directory, options.logDirOf, log)] : []),
    ...(options.images ? imageRoutes(options.images, directory) : []),
    ...(options.lifecycle ? lifecycleRoutes(options.lifecycle) : []),
  ]);
  // Docker's version middleware puts these on every response.
  const common: Headers = {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `tether/${options.version} (${process.platform})`,
  };
  // Connections an attach took over without an upgrade (see respond()).
  const hijacked = new WeakSet<Duplex>();

  const answer = async (req: http.IncomingMessage, upgrade: boolean, body: Readable = req): Promise<Reply> => {
    let reply: Reply;
    try {
      const { handler, request } = route(req.method ?? '', req.url ?? '');
      reply = await handler({ ...request, body });
    } catch (error) {
      reply = errorToReply(error, req, log);
    }
    log('debug', `${req.method} ${req.url} ${reply.kind === 'hijack' ? (upgrade ? 101 : 200) : reply.status}`);
    return reply;
  };

  const respond = (req: http.IncomingMessage, res: http.ServerResponse, reply: Reply): void => {
    switch (reply.kind) {
      case 'full':
        res.writeHead(reply.status, { ...common, ...reply.headers, 'Content-Length': String(Buffer.byteLength(reply.body)) });
        res.end(reply.body);
        return;
      case 'deferred':
        res.writeHead(reply.status, { ...common, ...reply.headers });
        res.flushHeaders();
        reply.body.then((body) => res.end(body)).catch((error: unknown) => abandon(res.socket, error));
        return;
      case 'hijack': {
        // An attach without an upgrade (old clients): node:http cannot hand over
        // a connection it parsed as ordinary HTTP, so the head goes straight
        // onto the socket, the session reads the client's stdin from it, and
        // node:http's complaints about those bytes are ignored (see
        // 'clientError'). One limit: node:http ends such a connection when
        // the client half-closes it, so output after that is lost.
        const socket = req.socket;
        hijacked.add(socket);
        socket.write(responseHead(200, { 'Content-Type': reply.contentType, ...common }));
        reply.take(socket, Buffer.alloc(0));
        return;
      }
    }
  };

  const respondOnSocket = (req: http.IncomingMessage, socket: Duplex, head: Buffer, reply: Reply): void => {
    switch (reply.kind) {
      case 'full': {
        const body = req.method === 'HEAD' ? '' : reply.body;
        socket.end(
          responseHead(reply.status, { ...common, ...reply.headers, 'Content-Length': String(Buffer.byteLength(reply.body)), Connection: 'close' }) + body,
        );
        return;
      }
      case 'deferred':
        // No length and no chunking: the body ends where the connection does.
        socket.write(responseHead(reply.status, { ...common, ...reply.headers, Connection: 'close' }));
        reply.body.then((body) => socket.end(body)).catch((error: unknown) => abandon(socket, error));
        return;
      case 'hijack':
        socket.write(responseHead(101, { 'Content-Type': reply.contentType, Connection: 'Upgrade', Upgrade: 'tcp', ...common }, 'UPGRADED'));
        reply.take(socket, head);
        return;
    }
  };

  /** A deferred body must not fail; if one does, it is a bug: log it and cut the response short. */
  const abandon = (socket: Duplex | null, error: unknown): void => {
    log('error', `response body failed: ${messageOf(error)}`);
    socket?.destroy();
  };

  // TCP keepalive: a client without stdin may half-close at once (docker
  // attach --no-stdin does), so its connection's end says nothing; a client
  // that is gone for good is noticed when the probes go unanswered.
  const connections = { keepAlive: true, keepAliveInitialDelay: 30_000 };
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // Bytes a client typed into a non-upgraded attach that happened to parse as a request.
    if (hijacked.has(req.socket)) return;
    void answer(req, false).then((reply) => respond(req, res, reply)).catch((error: unknown) => abandon(req.socket, error));
  };
  // Both hand over the same requests, upgrades and client errors; over TLS the
  // sockets written by hand (attach, errors) are TLS sockets, which encrypt
  // what is written to them like any other. allowHalfOpen, which node:http
  // sets and node:https does not: a docker client closes its sending side (a
  // TLS close_notify) when its stdin ends, and reads the attached output after.
  const server: http.Server = options.tls
    ? https.createServer({ ...connections, allowHalfOpen: true, ...options.tls, requestCert: true, rejectUnauthorized: true }, handle)
    : http.createServer(connections, handle);
  // A client without a certificate is refused in the handshake and never
  // becomes a request: this line is all that says why it was turned away.
  // (One with a certificate from another CA is dropped without an event.)
  if (options.tls) server.on('tlsClientError', (error: Error) => log('debug', `TLS handshake refused: ${error.message}`));

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // node:http stops listening for errors on a socket it hands over.
    socket.on('error', (error) => log('debug', `${req.method} ${req.url}: ${error.message}`));
    void (async () => {
      let rest = head;
      let readOn = false;
      let reply: Reply;
      try {
        const split = await upgradeBody(req, socket, head);
        ({ rest, readOn } = split);
        reply = await answer(req, true, Readable.from([split.body]));
      } catch (error) {
        reply = errorToReply(error, req, log);
      }
      respondOnSocket(req, socket, rest, reply);
      // Paused to read the rest of the body; whoever took the socket listens now.
      if (readOn) socket.resume();
    })().catch((error: unknown) => abandon(socket, error));
  });

  server.on('clientError', (error: Error, socket: Duplex) => {
    // On a non-upgraded attach the client's stdin is not HTTP; the session reads it.
    if (hijacked.has(socket)) return;
    log('debug', `bad request: ${error.message}`);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = jsonBody({ message: `bad request: ${error.message}` });
    socket.end(responseHead(400, { ...common, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' }) + body);
  });

  const sockets = new Set<Duplex>();
  server.on('connection', (socket: Duplex) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const shutDown = () =>
    new Promise<void>((resolve) => {
      if (server.listening) server.close(() => resolve());
      else resolve();
      for (const socket of sockets) socket.destroy();
    });
  return Object.assign(server, { shutDown });
}

function errorToReply(error: unknown, req: http.IncomingMessage, log: ApiLog): Reply {
  if (error instanceof ApiError) return errorReply(error.status, error.message);
  log('error', `${req.method} ${req.url} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return errorReply(500, messageOf(error));
}

/** More than any request body an upgrade carries (exec start's JSON). */
const MAX_UPGRADE_BODY = 1024 * 1024;
/** How long the rest of an upgraded request's body may take to arrive. */
const UPGRADE_BODY_MS = 10_000;

/**
 * An upgraded request's body, which node:http leaves in the stream with
 * what follows it: its Content-Length bytes (read on from the socket when
 * the first packet did not hold them all), and the client's stream after
 * them. Without it exec start's JSON would reach the process as stdin.
 */
async function upgradeBody(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<{ body: Buffer; rest: Buffer; readOn: boolean }> {
  const what = `${req.method} ${req.url}`;
  const length = Number(req.headers['content-length'] ?? 0);
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_UPGRADE_BODY) {
    throw new ApiError(400, `${what}: Content-Length ${req.headers['content-length']} is not a body length up to ${MAX_UPGRADE_BODY} bytes`);
  }
  if (head.length >= length) return { body: head.subarray(0, length), rest: head.subarray(length), readOn: false };
  const chunks = [head];
  let have = head.length;
  await new Promise<void>((resolve, reject) => {
    const data = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < length) return;
      // What follows the body is the client's stream: it waits for whoever takes the socket.
      socket.pause();
      stop();
      resolve();
    };
    const fail = (why: string) => () => {
      stop();
      reject(new ApiError(400, `${what}: ${why} after ${have} of the body's ${length} bytes`));
    };
    const ended = fail('the connection ended');
    const late = setTimeout(fail(`no more came for ${UPGRADE_BODY_MS} ms`), UPGRADE_BODY_MS);
    const stop = () => {
      clearTimeout(late);
      socket.off('data', data);
      socket.off('end', ended);
      socket.off('close', ended);
    };
    socket.on('data', data);
    socket.once('end', ended);
    socket.once('close', ended);
    socket.resume();
  });
  const all = Buffer.concat(chunks);
  return { body: all.subarray(0, length), rest: all.subarray(length), readOn: true };
}

function responseHead(status: number, headers: Headers, reason = http.STATUS_CODES[status] ?? ''): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${status} ${reason}\r\n${lines.join('')}\r\n`;
}
