import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import t, { type Test } from 'tap';
import {
  AttachOpenError,
  ChannelOpenError,
  extendClient,
  openAttach,
  openChannel,
  pushGlobal,
  requestGlobal,
  serveTether,
  type ClientAttachChannel,
  type ClientHandlers,
  type ServerAttachChannel,
  type ServerHandlers,
} from '../actors/ssh/extension.ts';
import { generateKeyPair, parseKey, publicKeyBlob } from '../actors/ssh/keys.ts';
import {
  CHANNEL_REQ_CLOSE_STDIN,
  CHANNEL_REQ_OUTPUT_OFFSET,
  CHANNEL_REQ_PING,
  CHANNEL_REQ_SIGNAL,
  CHANNEL_REQ_UNBLOCK,
  CHANNEL_REQ_WINDOW_CHANGE,
  decodeAttachOpen,
  decodeContainerIds,
  decodeContainerInfo,
  decodeOutputOffset,
  decodeSignal,
  decodeVersion,
  decodeWindowChange,
  encodeAttachOpen,
  encodeContainerIds,
  encodeContainerInfo,
  encodeNoPayload,
  encodeSignal,
  encodeVersion,
  encodeWindowChange,
  OFFSET_LIVE,
  PROTOCOL_VERSION,
  REQ_CONTAINER_IDS,
  REQ_CONTAINER_INFO,
  REQ_VERSION,
  type AttachRequest,
  type ContainerInfo,
} from '../shared/wire.ts';

const { Client, Server } = ssh2;

const hostKeys = generateKeyPair('test-host');
const clientKeys = generateKeyPair('test-client');
const hostPublic = publicKeyBlob(hostKeys.publicKey);
const clientPublic = parseKey(clientKeys.publicKey, 'client key');

const INFO: ContainerInfo[] = [
  { id: 'c1', name: 'web', cmd: ['nginx', '-g', 'daemon off;'], tty: false, openStdin: false, primary: true, state: 'running', pid: 42, startedAt: '2026-01-01T00:00:00.000Z' },
  { id: 'exec-1', name: 'sh', cmd: ['sh'], tty: true, openStdin: true, primary: false, state: 'exited', exitCode: 3 },
];

interface Pair {
  client: InstanceType<typeof Client>;
  /** The guest side of the connection once it exists. */
  conn: Connection;
  server: InstanceType<typeof Server>;
  port: number;
  serverErrors: Error[];
}

/** A real ssh2 server (guest) serving tether, with public-key auth for user daemon. */
async function startServer(t: Tap, handlers: Partial<ServerHandlers>, onConnection?: (conn: Connection) => void) {
  const serverErrors: Error[] = [];
  const conns: Connection[] = [];
  const server = new Server({ hostKeys: [hostKeys.privateKey] }, (conn) => {
    conns.push(conn);
    serveTether(conn, {
      globalRequest: handlers.globalRequest ?? (() => null),
      openAttach: handlers.openAttach ?? ((_request, _accept, reject) => reject({ kind: 'unknown-id', message: 'none here' })),
    });
    conn.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && ctx.username === 'daemon' && ctx.key.algo === clientPublic.type && ctx.key.data.equals(clientPublic.getPublicSSH())) {
        // Without a signature the client only asks whether the key would do.
        if (!ctx.signature || clientPublic.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return ctx.accept();
      }
      ctx.reject(['publickey']);
    });
    conn.on('error', (error) => serverErrors.push(error));
    onConnection?.(conn);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const conn of conns) conn.end();
    server.close();
  });
  return { server, port: (server.address() as AddressInfo).port, serverErrors, conns };
}

/** A real ssh2 client (appliance) extended with tether, verifying the server's host key. */
function startClient(t: Tap, port: number, handlers: Partial<ClientHandlers> = {}) {
  const client = new Client();
  extendClient(client, { globalRequest: handlers.globalRequest ?? (() => {}) });
  client.on('error', () => {});
  client.connect({
    host: '127.0.0.1',
    port,
    username: 'daemon',
    privateKey: clientKeys.privateKey,
    hostVerifier: (key: Buffer) => key.equals(hostPublic),
  });
  t.teardown(() => client.end());
  return client;
}

async function pair(t: Tap, handlers: Partial<ServerHandlers> = {}, clientHandlers: Partial<ClientHandlers> = {}): Promise<Pair> {
  const { server, port, serverErrors, conns } = await startServer(t, handlers);
  const client = startClient(t, port, clientHandlers);
  await once(client, 'ready');
  return { client, conn: conns[0]!, server, port, serverErrors };
}

type Tap = Test;

/** The error a promise rejects with (or undefined), for matching fields tap's rejects() cannot. */
const rejection = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

/** Accept every attach, handing the channel and request to `onChannel`. */
function acceptAll(onChannel: (channel: ServerAttachChannel, request: AttachRequest) => void): Partial<ServerHandlers> {
  return { openAttach: (request, accept) => onChannel(accept(), request) };
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

t.test('ssh2 is exactly the version whose internals the extension relies on', async (t) => {
  const { version } = createRequire(import.meta.url)('ssh2/package.json') as { version: string };
  t.equal(version, '1.17.0', 'before moving the pin, re-read what actors/ssh/extension.ts says it relies on; the tests below exercise each of it');
});

// --- global requests ---------------------------------------------------------------

t.test('container-ids, version and container-info requests reach the guest and their replies come back', async (t) => {
  const seen: [string, Buffer][] = [];
  const { client } = await pair(t, {
    globalRequest(name, payload) {
      seen.push([name, Buffer.from(payload)]);
      if (name === REQ_CONTAINER_IDS) return encodeContainerIds(['c1', 'exec-1']);
      if (name === REQ_VERSION) return encodeVersion(PROTOCOL_VERSION);
      if (name === REQ_CONTAINER_INFO) return encodeContainerInfo(INFO);
      return null;
    },
  });
  const [ids, version, info] = await Promise.all([
    requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload()),
    requestGlobal(client, REQ_VERSION, Buffer.from('payload from the appliance')),
    requestGlobal(client, REQ_CONTAINER_INFO, encodeNoPayload()),
  ]);
  t.strictSame(decodeContainerIds(ids!), ['c1', 'exec-1']);
  t.equal(decodeVersion(version!), PROTOCOL_VERSION);
  t.strictSame(decodeContainerInfo(info!), INFO);
  t.strictSame(seen, [
    [REQ_CONTAINER_IDS, Buffer.alloc(0)],
    [REQ_VERSION, Buffer.from('payload from the appliance')],
    [REQ_CONTAINER_INFO, Buffer.alloc(0)],
  ], 'the guest saw each request once, in order, with its payload');
});

t.test('a tether request the guest answers with null gets SSH_MSG_REQUEST_FAILURE', async (t) => {
  const { client } = await pair(t, { globalRequest: () => null });
  t.equal(await requestGlobal(client, REQ_VERSION, encodeNoPayload()), null);
});

t.test('an unknown global request still gets ssh2\'s default failure and never reaches tether', async (t) => {
  const seen: string[] = [];
  const { client } = await pair(t, { globalRequest: (name) => (seen.push(name), Buffer.alloc(0)) });
  t.equal(await requestGlobal(client, 'no-such-request@example.com', encodeNoPayload()), null);
  t.equal(await requestGlobal(client, REQ_VERSION, encodeNoPayload())!.then((b) => b?.length), 0, 'a later tether request is still matched to its own reply');
  t.strictSame(seen, [REQ_VERSION]);
});

t.test('replies stay matched to requests when tether requests interleave with ssh2\'s own (tcpip-forward)', async (t) => {
  const { client } = await pair(t, { globalRequest: (name) => (name === REQ_VERSION ? encodeVersion(7) : null) });
  const forward = new Promise<Error | undefined>((resolve) => client.forwardIn('127.0.0.1', 0, (error) => resolve(error)));
  const version = requestGlobal(client, REQ_VERSION, encodeNoPayload());
  const ids = requestGlobal(client, REQ_CONTAINER_IDS, encodeNoPayload());
  t.match(await forward, { message: /Unable to bind/ }, 'ssh2 got the failure for its own request');
  t.equal(decodeVersion((await version)!), 7);
  t.equal(await ids, null);
});

t.test('a global request without want-reply is delivered and resolves to null at once', async (t) => {
  const seen: string[] = [];
  let delivered!: () => void;
  const arrived = new Promise<void>((resolve) => (delivered = resolve));
  const { client } = await pair(t, { globalRequest: (name) => (seen.push(name), delivered(), encodeVersion(1)) });
  t.equal(await requestGlobal(client, REQ_VERSION, encodeNoPayload(), false), null);
  await arrived;
  t.strictSame(seen, [REQ_VERSION]);
});

t.test('requestGlobal rejects when the connection closes before the reply', async (t) => {
  let conn!: Connection;
  const { port } = await startServer(t, {
    globalRequest() {
      conn.end();
      return encodeVersion(1);
    },
  }, (c) => (conn = c));
  const client = startClient(t, port);
  await once(client, 'ready');
  await t.rejects(requestGlobal(client, REQ_VERSION, encodeNoPayload()), { message: 'version: connection closed before the reply' });
  await t.rejects(requestGlobal(client, REQ_VERSION, encodeNoPayload()), { message: 'version: not connected' }, 'and refuses at once afterwards');
});

t.test('a guest push reaches the appliance\'s handler with its payload', async (t) => {
  const received: [string, Buffer][] = [];
  let pushed!: () => void;
  const arrived = new Promise<void>((resolve) => (pushed = resolve));
  const { conn } = await pair(t, {}, {
    globalRequest(name, payload) {
      received.push([name, Buffer.from(payload)]);
      if (received.length === 2) pushed();
    },
  });
  pushGlobal(conn, REQ_CONTAINER_IDS, encodeContainerIds(['c1', 'exec-2']));
  pushGlobal(conn, REQ_CONTAINER_INFO, encodeContainerInfo(INFO));
  await arrived;
  t.equal(received[0]![0], REQ_CONTAINER_IDS);
  t.strictSame(decodeContainerIds(received[0]![1]), ['c1', 'exec-2']);
  t.equal(received[1]![0], REQ_CONTAINER_INFO);
  t.strictSame(decodeContainerInfo(received[1]![1]), INFO);
});

t.test('tether requests are refused until the appliance has authenticated', async (t) => {
  const seen: string[] = [];
  const { port, conns } = await startServer(t, {
    globalRequest: (name) => (seen.push(name), encodeVersion(1)),
    openAttach: (_r, accept) => accept(),
  });
  const client = startClient(t, port);
  // 'handshake' comes before ssh2 starts user authentication.
  await once(client, 'handshake');
  const version = requestGlobal(client, REQ_VERSION, encodeNoPayload());
  const attach = openAttach(client, { containerId: 'c1', offset: 0n });
  t.throws(() => pushGlobal(conns[0]!, REQ_CONTAINER_IDS, encodeContainerIds([])), /before the appliance has authenticated/, 'the guest cannot push either');
  t.equal(await version, null, 'global request refused');
  t.match(await rejection(attach), { reason: 1 }, 'attach refused as administratively prohibited');
  t.strictSame(seen, [], 'the guest was never asked');
});

// --- attach channels -----------------------------------------------------------------

t.test('an attach open carries the container ID and offset, and bytes flow both ways', async (t) => {
  const requests: AttachRequest[] = [];
  const { client } = await pair(t, acceptAll((channel, request) => {
    requests.push(request);
    // Echo stdin back, upper-cased, until the appliance ends it.
    channel.on('data', (data: Buffer) => channel.write(data.toString().toUpperCase()));
    channel.on('end', () => channel.end());
  }));
  const live = await openAttach(client, { containerId: 'c1', offset: OFFSET_LIVE });
  const replay = await openAttach(client, { containerId: 'exec-1', offset: 12345n });
  live.end('hello guest');
  replay.end('again');
  t.equal((await collect(live)).toString(), 'HELLO GUEST');
  t.equal((await collect(replay)).toString(), 'AGAIN');
  t.strictSame(requests, [{ containerId: 'c1', offset: OFFSET_LIVE }, { containerId: 'exec-1', offset: 12345n }]);
});

t.test('stderr arrives as extended data on the client channel\'s stderr', async (t) => {
  const { client } = await pair(t, acceptAll((channel) => {
    channel.write('out');
    channel.stderr.write('err');
    channel.end();
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const [stdout, stderr] = await Promise.all([collect(channel), collect(channel.stderr)]);
  t.equal(stdout.toString(), 'out');
  t.equal(stderr.toString(), 'err');
});

t.test('end() delivers all stderr written before it, even when it waits for window space', async (t) => {
  const big = randomBytes(3 * 1024 * 1024);
  const { client } = await pair(t, acceptAll((channel) => {
    channel.stderr.write(big);
    channel.end();
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const [, stderr] = await Promise.all([collect(channel), collect(channel.stderr)]);
  t.equal(stderr.length, big.length);
  t.ok(stderr.equals(big), 'intact');
});

// ssh2 1.17's own resumption loses the first case and duplicates stdout in the second.
t.test('stderr written while stdout waits for window space is delivered', async (t) => {
  const out = randomBytes(3 * 1024 * 1024);
  const err = randomBytes(1024);
  const { client } = await pair(t, acceptAll((channel) => {
    channel.write(out);
    channel.stderr.write(err);
    channel.end();
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const [stdout, stderr] = await Promise.all([collect(channel), collect(channel.stderr)]);
  t.ok(stdout.equals(out), 'stdout intact');
  t.ok(stderr.equals(err), 'stderr intact');
});

t.test('stdout that waited for window space is sent once, even when stderr waits for window later', async (t) => {
  const out = randomBytes(3 * 1024 * 1024);
  const err = randomBytes(3 * 1024 * 1024);
  const { client } = await pair(t, acceptAll((channel) => {
    channel.write(out, () => {
      channel.stderr.write(err);
      channel.end();
    });
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const [stdout, stderr] = await Promise.all([collect(channel), collect(channel.stderr)]);
  t.equal(stdout.length, out.length, 'no stdout byte sent twice');
  t.ok(stdout.equals(out), 'stdout intact');
  t.ok(stderr.equals(err), 'stderr intact');
});

t.test('channel requests reach the guest with their payloads, and replies come back in request order', async (t) => {
  const seen: [string, Buffer, boolean][] = [];
  const replies = new Map<string, (ok: boolean) => void>();
  let allSeen!: () => void;
  const arrived = new Promise<void>((resolve) => (allSeen = resolve));
  const { client } = await pair(t, acceptAll((channel) => {
    channel.on('request', (name: string, payload: Buffer, reply?: (ok: boolean) => void) => {
      seen.push([name, Buffer.from(payload), reply !== undefined]);
      if (reply) replies.set(name, reply);
      if (seen.length === 5) allSeen();
    });
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const results = [
    channel.request(CHANNEL_REQ_UNBLOCK, encodeNoPayload()),
    channel.request(CHANNEL_REQ_PING),
    channel.request(CHANNEL_REQ_WINDOW_CHANGE, encodeWindowChange({ cols: 120, rows: 40, widthPx: 0, heightPx: 0 })),
    channel.request(CHANNEL_REQ_SIGNAL, encodeSignal('WINCH'), false),
    channel.request(CHANNEL_REQ_CLOSE_STDIN),
  ];
  await arrived;
  t.strictSame(seen.map(([name, , wantReply]) => [name, wantReply]), [
    [CHANNEL_REQ_UNBLOCK, true],
    [CHANNEL_REQ_PING, true],
    [CHANNEL_REQ_WINDOW_CHANGE, true],
    [CHANNEL_REQ_SIGNAL, false],
    [CHANNEL_REQ_CLOSE_STDIN, true],
  ]);
  t.strictSame(decodeWindowChange(seen[2]![1]), { cols: 120, rows: 40, widthPx: 0, heightPx: 0 });
  t.equal(decodeSignal(seen[3]![1]), 'WINCH');
  // Answer out of order: the wire order must still match the requests.
  replies.get(CHANNEL_REQ_CLOSE_STDIN)!(true);
  replies.get(CHANNEL_REQ_PING)!(true);
  replies.get(CHANNEL_REQ_WINDOW_CHANGE)!(false);
  replies.get(CHANNEL_REQ_UNBLOCK)!(false);
  t.strictSame(await Promise.all(results), [false, true, false, true, true]);
});

t.test('a channel request nobody listens for is refused', async (t) => {
  const { client } = await pair(t, acceptAll(() => {}));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  t.equal(await channel.request(CHANNEL_REQ_PING), false);
});

t.test('a channel request rejects when the channel closes before the reply', async (t) => {
  const { client } = await pair(t, acceptAll((channel) => channel.on('request', () => channel.close())));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  channel.resume(); // ssh2 emits 'close' only after 'end'
  const closed = once(channel, 'close');
  await t.rejects(channel.request(CHANNEL_REQ_CLOSE_STDIN), { message: 'close-stdin: channel closed before the reply' });
  await closed;
  await t.rejects(channel.request(CHANNEL_REQ_PING), { message: 'ping: channel is closed' }, 'and refuses at once afterwards');
});

t.test('the guest\'s output offset reaches the appliance as a request on the channel', async (t) => {
  const { client } = await pair(t, acceptAll((channel) => {
    channel.sendOffset(4096n);
    channel.end('after the offset');
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: OFFSET_LIVE });
  const events: string[] = [];
  channel.on('request', (name: string, payload: Buffer, reply?: unknown) => {
    t.equal(name, CHANNEL_REQ_OUTPUT_OFFSET);
    t.equal(reply, undefined, 'no reply wanted');
    events.push(`offset ${decodeOutputOffset(payload)}`);
  });
  channel.on('data', (data: Buffer) => events.push(`data ${data}`));
  await once(channel, 'close');
  t.strictSame(events, ['offset 4096', 'data after the offset'], 'the offset comes before the output');
});

t.test('offset and exit sent in one burst with the open confirmation reach listeners attached after openAttach resolves', async (t) => {
  const { client, conn } = await pair(t, acceptAll((channel) => {
    channel.sendOffset(10n);
    channel.write('out');
    channel.exitStatus(3);
    channel.end();
  }));
  // Corked, the guest's confirmation, request, data, exit and close leave in
  // one write, so ssh2 parses them all before openAttach's caller runs.
  const socket = (conn as unknown as { _sock: import('node:net').Socket })._sock;
  socket.cork();
  const attach = openAttach(client, { containerId: 'c1', offset: 0n });
  setTimeout(() => socket.uncork(), 50);
  const channel = await attach;
  const events: string[] = [];
  channel.on('request', (name: string, payload: Buffer) => events.push(`${name} ${decodeOutputOffset(payload)}`));
  channel.on('exit', (code: number) => events.push(`exit ${code}`));
  channel.on('data', (data: Buffer) => events.push(`data ${data}`));
  await once(channel, 'close');
  t.strictSame(events.sort(), ['data out', 'exit 3', `${CHANNEL_REQ_OUTPUT_OFFSET} 10`]);
});

t.test('exit-status reaches the appliance as \'exit\' after all output written before it', async (t) => {
  const big = randomBytes(3 * 1024 * 1024); // more than one window: some must wait for a window adjust
  const { client } = await pair(t, acceptAll((channel) => {
    channel.write(big);
    channel.stderr.write('bye');
    channel.exitStatus(7);
    channel.end();
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  let stdout = 0;
  let stderr = 0;
  channel.on('data', (data: Buffer) => (stdout += data.length));
  channel.stderr.on('data', (data: Buffer) => (stderr += data.length));
  const closed = once(channel, 'close');
  const atExit = await new Promise<unknown[]>((resolve) => channel.on('exit', (code: number) => {
    // Bytes already emitted plus bytes buffered but not yet emitted.
    resolve([code, stdout + channel.readableLength, stderr + channel.stderr.readableLength]);
  }));
  t.strictSame(atExit, [7, big.length, 3], 'exit code 7, after all stdout and stderr');
  await closed;
});

t.test('exit-signal reaches the appliance as \'exit\' with the SIG-prefixed name, core flag and message', async (t) => {
  const { client } = await pair(t, acceptAll((channel) => {
    channel.exitSignal('RTMIN+3', true, 'realtime');
    channel.end();
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  channel.resume();
  t.strictSame(await once(channel, 'exit'), [null, 'SIGRTMIN+3', true, 'realtime']);
});

t.test('an exit report after end() is refused', async (t) => {
  let thrown: unknown;
  const { client } = await pair(t, acceptAll((channel) => {
    channel.end();
    try {
      channel.exitStatus(0);
    } catch (error) {
      thrown = error;
    }
  }));
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  channel.resume();
  await once(channel, 'close');
  t.match(thrown, { message: 'exit-status must be sent before end()' });
});

t.test('open failures decode on the appliance with their kind, message and exit code', async (t) => {
  const { client } = await pair(t, {
    openAttach(request, _accept, reject) {
      if (request.containerId === 'gone') reject({ kind: 'unknown-id', message: 'no container gone' });
      else if (request.containerId === 'broken') reject({ kind: 'launch-failed', message: 'exec: no such file' });
      else reject({ kind: 'exited', message: 'finished before attach', exitCode: 3 });
    },
  });
  const cases: [string, number, object][] = [
    ['gone', 1, { kind: 'unknown-id', message: 'no container gone' }],
    ['broken', 2, { kind: 'launch-failed', message: 'exec: no such file' }],
    ['done', 2, { kind: 'exited', message: 'finished before attach', exitCode: 3 }],
  ];
  for (const [containerId, reason, failure] of cases) {
    const error = await rejection(openAttach(client, { containerId, offset: 0n }));
    t.type(error, AttachOpenError, containerId);
    t.equal((error as AttachOpenError).reason, reason, `${containerId}: reason`);
    t.strictSame((error as AttachOpenError).failure, failure, `${containerId}: failure`);
    t.match((error as Error).message, `attach ${containerId}: `, `${containerId}: message names the container`);
  }
});

t.test('a malformed attach payload is refused with the decoder\'s message, and the guest goes on serving', async (t) => {
  const opened: string[] = [];
  const { client, serverErrors } = await pair(t, {
    globalRequest: () => encodeVersion(1),
    ...acceptAll((channel, request) => {
      opened.push(request.containerId);
      channel.end('ok');
    }),
  });
  const valid = encodeAttachOpen({ containerId: 'c1', offset: 0n });
  const malformed: [string, Buffer, string][] = [
    ['truncated', Buffer.from([0, 0, 0, 9, 0x63]), 'attach open: extra data truncated: need 9 bytes for container ID at offset 4, have 1'],
    ['no extra data', Buffer.alloc(0), 'attach open: extra data truncated: need 4 bytes for container ID length at offset 0, have 0'],
    ['trailing bytes', Buffer.concat([valid, Buffer.from([1])]), 'attach open: extra data: 1 unexpected trailing bytes at offset 14'],
  ];
  for (const [what, extraData, description] of malformed) {
    const error = await rejection(openChannel(client, 'attach', extraData));
    t.type(error, ChannelOpenError, what);
    t.match(error, { reason: 2, description }, what);
  }
  t.strictSame(opened, [], 'the guest was never asked');
  t.equal(decodeVersion((await requestGlobal(client, REQ_VERSION, encodeNoPayload()))!), 1, 'global requests still work');
  const channel = await openAttach(client, { containerId: 'c1', offset: 0n });
  t.equal((await collect(channel)).toString(), 'ok', 'so do attaches');
  t.strictSame(serverErrors, []);
  t.strictSame(decodeAttachOpen(valid), { containerId: 'c1', offset: 0n });
});

t.test('an attach accepted after the connection ended yields a channel that closes', async (t) => {
  let answer!: (accept: () => ServerAttachChannel) => void;
  const pending = new Promise<() => ServerAttachChannel>((resolve) => (answer = resolve));
  const { client, conn } = await pair(t, { openAttach: (_request, accept) => answer(accept) });
  const attachFailed = rejection(openAttach(client, { containerId: 'c1', offset: 0n }));
  const accept = await pending;
  client.end();
  await once(conn, 'close');
  t.match(await attachFailed, { message: /No response from server/ }, 'the appliance saw the connection go');
  const channel = accept();
  channel.resume();
  await once(channel, 'close');
  t.pass('the late channel closed');
});

t.test('session channels and exec still work as ssh2 serves them', async (t) => {
  const { port } = await startServer(t, {}, (conn) => {
    conn.on('session', (accept) => {
      accept().on('exec', (acceptExec, _reject, info) => {
        const stream = acceptExec();
        stream.write(`ran ${info.command}`);
        stream.exit(0);
        stream.end();
      });
    });
  });
  const client = startClient(t, port);
  await once(client, 'ready');
  const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec('uname -a', (error, s) => (error ? reject(error) : resolve(s))));
  const exit = once(stream, 'exit');
  t.equal((await collect(stream)).toString(), 'ran uname -a');
  t.strictSame(await exit, [0]);
});

t.test('channel types nobody serves are still rejected by ssh2', async (t) => {
  const { client } = await pair(t);
  t.match(await rejection(openChannel(client, 'x-unknown@example.com', Buffer.alloc(0))), { reason: 3 }, 'unknown channel type');
});

t.test('16 MiB through an attach channel arrives intact and in order, with backpressure on the guest', async (t) => {
  const data = randomBytes(16 * 1024 * 1024);
  const chunk = 64 * 1024;
  let sawFull = false;
  let drains = 0;
  const { client } = await pair(t, acceptAll(async (channel) => {
    for (let offset = 0; offset < data.length; offset += chunk) {
      if (!channel.write(data.subarray(offset, offset + chunk))) {
        sawFull = true;
        await once(channel, 'drain');
        drains++;
      }
    }
    channel.end();
  }));
  const channel: ClientAttachChannel = await openAttach(client, { containerId: 'c1', offset: 0n });
  const received = await collect(channel);
  t.equal(received.length, data.length);
  t.equal(createHash('sha256').update(received).digest('hex'), createHash('sha256').update(data).digest('hex'), 'same bytes in the same order');
  t.ok(sawFull, 'write() returned false once the window and buffer were full');
  t.ok(drains > 0, '\'drain\' followed');
});
