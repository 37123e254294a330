// The Docker API server on the wire: raw sockets for the hijacked attach
// stream and exact bytes, fetch for the JSON routes. The directory behind it
// is scripted, so each test decides what the "process" does and when.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import t from 'tap';
import type {
  AttachOptions,
  Attachment,
  ContainerDirectory,
  ContainerRecord,
  WaitCondition,
} from '../appliance/api/directory.ts';
import { ApiError } from '../appliance/api/errors.ts';
import { createApiServer } from '../appliance/api/server.ts';

const VERSION = '0.1.0-httptest';
const COMMON_HEADERS = `Api-Version: 1.45\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: tether/${VERSION} (${process.platform})\r\n`;

// ---------------------------------------------------------------- directory

/** One attach as the scripted directory handed it out; the test plays the process. */
class ScriptedAttachment {
  readonly stdout = new PassThrough();
  readonly stderr?: PassThrough;
  #input: Buffer[] = [];
  #inputLength = 0;
  #inputWatchers = new Set<() => void>();
  /** While set, the process reads nothing: callbacks of stdin writes wait in here. */
  #stdinHeld?: Array<() => void>;
  stdinEnded = false;
  detached = false;
  readonly stdin: Writable;
  readonly attachment: Attachment;
  #settle!: (result: { exitCode?: number; detached: boolean }) => void;

  constructor(
    readonly options: AttachOptions,
    tty: boolean,
  ) {
    if (!tty) this.stderr = new PassThrough();
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.#input.push(chunk);
        this.#inputLength += chunk.length;
        for (const watcher of [...this.#inputWatchers]) watcher();
        if (this.#stdinHeld) this.#stdinHeld.push(callback);
        else callback();
      },
      final: (callback) => {
        this.stdinEnded = true;
        callback();
      },
    });
    const done = new Promise<{ exitCode?: number; detached: boolean }>((resolve) => (this.#settle = resolve));
    this.attachment = {
      tty,
      stdout: this.stdout,
      ...(this.stderr ? { stderr: this.stderr } : {}),
      ...(options.stdin ? { stdin: this.stdin } : {}),
      detach: () => {
        this.detached = true;
        this.#end({ detached: true });
      },
      done,
    };
  }

  /** What the client sent to the process's stdin. */
  get input(): Buffer {
    return Buffer.concat(this.#input);
  }

  /** Resolves once stdin has received something ending in `text`. */
  received(text: string): Promise<void> {
    return waitFor(this.#inputWatchers, () => (this.input.toString('latin1').endsWith(text) ? true : undefined)).then(() => {});
  }

  receivedBytes(count: number): Promise<void> {
    return waitFor(this.#inputWatchers, () => (this.#inputLength >= count ? true : undefined)).then(() => {});
  }

  holdStdin(): void {
    this.#stdinHeld = [];
  }

  releaseStdin(): void {
    const held = this.#stdinHeld ?? [];
    this.#stdinHeld = undefined;
    for (const callback of held) callback();
  }

  exit(exitCode: number): void {
    this.#end({ exitCode, detached: false });
  }

  #end(result: { exitCode?: number; detached: boolean }): void {
    const streams = [this.stdout, ...(this.stderr ? [this.stderr] : [])];
    void Promise.all(streams.map((stream) => once(stream, 'end'))).then(() => this.#settle(result));
    for (const stream of streams) stream.end();
  }
}

function record(fields: Partial<ContainerRecord> & Pick<ContainerRecord, 'id' | 'name'>): ContainerRecord {
  return {
    cmd: ['cat'],
    tty: false,
    openStdin: true,
    primary: true,
    state: 'running',
    pid: 4242,
    created: '2025-01-01T00:00:00.000Z',
    startedAt: '2025-01-01T00:00:01.000Z',
    vm: `vm-${fields.name}`,
    link: { up: true, detail: 'connected since 2025-01-01T00:00:00Z' },
    ...fields,
  };
}

class ScriptedDirectory implements ContainerDirectory {
  readonly attachments: ScriptedAttachment[] = [];
  readonly resizes: Array<{ id: string; cols: number; rows: number }> = [];
  readonly waits: Array<{ id: string; condition: WaitCondition; answer(result: { exitCode: number; error?: string } | Error): void }> = [];
  #attachWatchers = new Set<() => void>();
  #waitWatchers = new Set<() => void>();
  /** Makes the next attach fail with this. */
  failAttach?: Error;

  constructor(readonly records: ContainerRecord[]) {}

  list(): ContainerRecord[] {
    return this.records;
  }

  find(ref: string): ContainerRecord | undefined {
    const name = ref.replace(/^\//, '');
    return this.records.find((candidate) => candidate.name === name || candidate.id.startsWith(ref));
  }

  explainUnknown(): string {
    return 'no containerVM has reported it';
  }

  async attach(id: string, options: AttachOptions): Promise<Attachment> {
    if (this.failAttach) throw this.failAttach;
    const scripted = new ScriptedAttachment(options, this.find(id)!.tty);
    this.attachments.push(scripted);
    for (const watcher of [...this.#attachWatchers]) watcher();
    return scripted.attachment;
  }

  async resize(id: string, size: { cols: number; rows: number }): Promise<void> {
    this.resizes.push({ id, ...size });
  }

  wait(id: string, condition: WaitCondition): Promise<{ exitCode: number; error?: string }> {
    return new Promise((resolve, reject) => {
      this.waits.push({ id, condition, answer: (result) => (result instanceof Error ? reject(result) : resolve(result)) });
      for (const watcher of [...this.#waitWatchers]) watcher();
    });
  }

  /** Resolves with the n-th attachment (counting from 1) once it exists. */
  attached(n = 1): Promise<ScriptedAttachment> {
    return waitFor(this.#attachWatchers, () => this.attachments[n - 1]);
  }

  waiting(n = 1): Promise<ScriptedDirectory['waits'][number]> {
    return waitFor(this.#waitWatchers, () => this.waits[n - 1]);
  }
}

function waitFor<T>(watchers: Set<() => void>, probe: () => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const watcher = () => {
      const found = probe();
      if (found === undefined) return;
      watchers.delete(watcher);
      resolve(found);
    };
    watchers.add(watcher);
    watcher();
  });
}

// ---------------------------------------------------------------- harness

const CAT = record({ id: 'c0ffee'.padEnd(64, '0'), name: 'cat' });
const TTY = record({ id: 'beef'.padEnd(64, '1'), name: 'console', tty: true });

async function startApi(t: { teardown(fn: () => unknown): void }, records: ContainerRecord[] = [CAT, TTY]) {
  const directory = new ScriptedDirectory(records.map((fields) => ({ ...fields })));
  const logs: string[] = [];
  const server = createApiServer(directory, { version: VERSION, log: (level, message) => logs.push(`${level} ${message}`) });
  // The server's ends of client connections.
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => sockets.add(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  });
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  return { directory, logs, sockets, url, connect: (request: string, options?: { allowHalfOpen?: boolean }) => RawConnection.open(port, request, options) };
}

/** A client socket with a byte buffer the test reads from at its own pace. */
class RawConnection {
  #buffer = Buffer.alloc(0);
  #ended = false;
  #watchers = new Set<() => void>();
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      this.#notify();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    this.closed = once(socket, 'close').then(() => {});
  }

  /** allowHalfOpen keeps the client's side open after the server's end, as the docker CLI does until it is done. */
  static async open(port: number, request: string, options: { allowHalfOpen?: boolean } = {}): Promise<RawConnection> {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
    await once(socket, 'connect');
    const connection = new RawConnection(socket);
    socket.write(request);
    return connection;
  }

  #notify(): void {
    for (const watcher of [...this.#watchers]) watcher();
  }

  #take(count: number): Buffer {
    const taken = this.#buffer.subarray(0, count);
    this.#buffer = this.#buffer.subarray(count);
    return taken;
  }

  /** The response head, through the blank line. */
  head(): Promise<string> {
    return waitFor(this.#watchers, () => {
      const end = this.#buffer.indexOf('\r\n\r\n');
      return end === -1 ? undefined : this.#take(end + 4).toString('latin1');
    });
  }

  /** Exactly `count` bytes. */
  read(count: number): Promise<Buffer> {
    return waitFor(this.#watchers, () => (this.#buffer.length >= count ? this.#take(count) : undefined));
  }

  /** Everything up to the server's end of the stream. */
  rest(): Promise<Buffer> {
    return waitFor(this.#watchers, () => (this.#ended ? this.#take(this.#buffer.length) : undefined));
  }
}

function attachRequest(ref: string, query: string, options: { upgrade?: boolean; version?: string } = {}): string {
  const upgrade = options.upgrade ?? true;
  return (
    `POST ${options.version ?? '/v1.45'}/containers/${ref}/attach?${query} HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\n` +
    (upgrade ? 'Connection: Upgrade\r\nUpgrade: tcp\r\n' : 'Connection: close\r\n') +
    '\r\n'
  );
}

function frame(stream: 1 | 2, payload: string): Buffer {
  const header = Buffer.from([stream, 0, 0, 0, 0, 0, 0, 0]);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, Buffer.from(payload)]);
}

// ---------------------------------------------------------------- attach

t.test('an upgraded attach answers 101 UPGRADED with the stream type and Docker headers', async (t) => {
  const api = await startApi(t);
  const plain = await api.connect(attachRequest('cat', 'stream=1&stdout=1'));
  t.equal(
    await plain.head(),
    `HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${COMMON_HEADERS}\r\n`,
  );
  const console = await api.connect(attachRequest('console', 'stream=1&stdout=1'));
  t.match(await console.head(), /^HTTP\/1\.1 101 UPGRADED\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\n/);
  t.same(api.directory.attachments[0]!.options, { stdin: false, stdout: true, stderr: false, stream: true, logs: false });
});

t.test('non-tty output is framed with the 8-byte header, byte for byte, and the stream ends with the process', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdout=1&stderr=1'));
  await client.head();
  const attached = await api.directory.attached();

  attached.stdout.write('hello');
  t.same(await client.read(13), Buffer.from([1, 0, 0, 0, 0, 0, 0, 5, ...Buffer.from('hello')]));
  attached.stderr!.write('oops\n');
  t.same(await client.read(13), Buffer.from([2, 0, 0, 0, 0, 0, 0, 5, ...Buffer.from('oops\n')]));
  const big = 'x'.repeat(70_000);
  attached.stdout.write(big);
  t.same(await client.read(8), Buffer.from([1, 0, 0, 0, 0x00, 0x01, 0x11, 0x70]), 'length is big-endian in bytes 4-7');
  t.equal((await client.read(70_000)).toString(), big);

  attached.exit(0);
  t.equal((await client.rest()).length, 0, 'nothing after the last frame');
  await client.closed;
});

t.test('tty output goes out raw', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('console', 'stream=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  attached.stdout.write('\x1b[1mbold\r\n');
  attached.exit(0);
  t.equal((await client.rest()).toString(), '\x1b[1mbold\r\n');
});

t.test('client bytes reach stdin; a half-close ends stdin while output keeps flowing (non-tty)', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&stdout=1&stderr=1') + 'early');
  await client.head();
  const attached = await api.directory.attached();
  client.socket.write('abc\n');
  client.socket.end();
  await once(attached.stdin, 'finish');
  t.equal(attached.input.toString(), 'earlyabc\n', 'bytes sent right behind the request head count too');
  t.ok(attached.stdinEnded);
  t.notOk(attached.detached);

  attached.stdout.write('bye');
  t.same(await client.read(11), frame(1, 'bye'));
  attached.exit(0);
  await client.closed;
});

t.test('a half-close on a tty attach detaches and leaves stdin open', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('console', 'stream=1&stdin=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  client.socket.end();
  await client.closed;
  t.ok(attached.detached);
  t.notOk(attached.stdinEnded);
});

t.test('without stdin, a half-close changes nothing', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  client.socket.end('ignored');
  attached.stdout.write('still here');
  t.same(await client.read(18), frame(1, 'still here'));
  t.notOk(attached.detached);
  attached.exit(0);
  await client.closed;
});

t.test('detach keys on a tty: bytes before them reach stdin, the rest does not, stdin stays open and the connection ends', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('console', 'stream=1&stdin=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  // ctrl-p then x: a prefix that stops matching is passed on.
  client.socket.write('ab\x10x');
  // The sequence split across two writes.
  client.socket.write('\x10');
  client.socket.write('\x11after');
  await client.closed;
  t.ok(attached.detached);
  t.equal(attached.input.toString('latin1'), 'ab\x10x');
  t.notOk(attached.stdinEnded);
});

t.test("detachKeys in Docker's notation replace the default", async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('console', 'stream=1&stdin=1&stdout=1&detachKeys=ctrl-a,x'));
  await client.head();
  const attached = await api.directory.attached();
  client.socket.write('\x10\x11\x01y\x01x');
  await client.closed;
  t.ok(attached.detached);
  t.equal(attached.input.toString('latin1'), '\x10\x11\x01y');
});

t.test('without a tty the detach keys are data: every byte reaches stdin and nothing detaches', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  client.socket.write('ab\x10\x11cd');
  client.socket.end();
  await once(attached.stdin, 'finish');
  t.equal(attached.input.toString('latin1'), 'ab\x10\x11cd');
  t.notOk(attached.detached);
  attached.exit(0);
});

t.test('bad detachKeys are a 400 naming them, before anything is attached', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&detachKeys=ctrl-foo'));
  const head = await client.head();
  t.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(head, /\r\nContent-Type: application\/json\r\n/);
  t.same(JSON.parse((await client.rest()).toString()), { message: 'Invalid detach keys (ctrl-foo) provided: unknown key "ctrl-foo"' });
  t.equal(api.directory.attachments.length, 0);
});

t.test('attach without Upgrade answers 200 OK and streams on the raw socket (old clients)', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&stdout=1&stderr=1', { upgrade: false }));
  t.equal(await client.head(), `HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n${COMMON_HEADERS}\r\n`);
  const attached = await api.directory.attached();
  attached.stdout.write('out');
  t.same(await client.read(11), frame(1, 'out'));
  client.socket.write('GET /_ping HTTP/1.1\r\n\r\n');
  client.socket.write('typed');
  await attached.received('typed');
  t.equal(attached.input.toString(), 'GET /_ping HTTP/1.1\r\n\r\ntyped', 'stdin that reads as HTTP is still stdin');
  attached.exit(0);
  t.equal((await client.rest()).length, 0);
});

t.test('attach to an unknown container is a 404 naming it, upgraded or not', async (t) => {
  const api = await startApi(t);
  for (const upgrade of [true, false]) {
    const client = await api.connect(attachRequest('nosuch', 'stream=1', { upgrade }));
    t.match(await client.head(), /^HTTP\/1\.1 404 Not Found\r\n/);
    t.same(JSON.parse((await client.rest()).toString()), { message: 'No such container: nosuch (no containerVM has reported it)' });
  }
});

t.test('a connection reset mid-stream detaches, leaves stdin open, and the server keeps serving', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  client.socket.resetAndDestroy();
  await once(attached.stdout, 'end');
  t.ok(attached.detached);
  t.notOk(attached.stdinEnded);
  t.equal(await (await fetch(api.url('/_ping'))).text(), 'OK');
});

t.test('output pauses while the client is not reading and resumes, in order, when it reads', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('console', 'stream=1&stdout=1'));
  await client.head();
  client.socket.pause();
  const attached = await api.directory.attached();
  const sent: Buffer[] = [];
  // Fill the connection until the session pauses the process's output.
  while (!attached.stdout.isPaused()) {
    const chunk = Buffer.alloc(64 * 1024, sent.length % 251);
    sent.push(chunk);
    attached.stdout.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  client.socket.resume();
  const expected = Buffer.concat(sent);
  const received = await client.read(expected.length);
  t.notOk(attached.stdout.isPaused(), 'output resumed once the client drained it');
  t.ok(received.equals(expected), `all ${sent.length} chunks arrived intact and in order`);
  attached.exit(0);
});

t.test('client input waits in the connection while the process is not reading its stdin', async (t) => {
  const api = await startApi(t);
  const client = await api.connect(attachRequest('cat', 'stream=1&stdin=1&stdout=1'));
  await client.head();
  const attached = await api.directory.attached();
  const [serverSide] = api.sockets;
  attached.holdStdin();
  // More than loopback's socket buffers hold, so it cannot all be in flight at once.
  const sent = Buffer.alloc(32 * 1024 * 1024);
  for (let i = 0; i < sent.length; i += 4096) sent[i] = (i / 4096) % 256;
  client.socket.write(sent);
  while (!serverSide!.isPaused()) await new Promise((resolve) => setImmediate(resolve));
  t.ok(attached.stdin.writableLength < 1024 * 1024, `the server stopped reading with ${attached.stdin.writableLength} bytes queued for stdin`);

  attached.releaseStdin();
  await attached.receivedBytes(sent.length);
  t.ok(attached.input.equals(sent), 'all of it arrived, in order, once the process read again');
  attached.exit(0);
});

t.test('a container its attach released reads as running to inspect until that client disconnects', async (t) => {
  // docker attach re-inspects right after attaching and drops unread output if
  // the container is not running by then.
  const api = await startApi(t, [{ ...CAT, state: 'blocked', pid: undefined, startedAt: undefined }, TTY]);
  const [held, running] = api.directory.records;
  const inspect = async (name: string) => ((await (await fetch(api.url(`/containers/${name}/json`))).json()) as Record<string, any>).State;

  const client = await api.connect(attachRequest('cat', 'stream=1&stdout=1'), { allowHalfOpen: true });
  await client.head();
  const released = await api.directory.attached();
  Object.assign(held!, { state: 'exited', exitCode: 3, finishedAt: new Date().toISOString() });
  released.exit(3);
  await client.rest();
  t.match(await inspect('cat'), { Running: true, Status: 'running', ExitCode: 0 }, 'while its client has not closed');

  const other = await api.connect(attachRequest('console', 'stream=1&stdout=1'));
  await other.head();
  Object.assign(running!, { state: 'exited', exitCode: 0, finishedAt: new Date().toISOString() });
  t.match(await inspect('console'), { Running: false, Status: 'exited' }, 'not for an attach to a container that was already running');

  const [serverSide] = api.sockets;
  client.socket.end();
  await once(serverSide!, 'close');
  t.match(await inspect('cat'), { Running: false, Status: 'exited', ExitCode: 3 });
});

t.test('an attach the directory refuses answers with its status; other failures are 500s', async (t) => {
  const api = await startApi(t);
  api.directory.failAttach = new ApiError(504, 'link to vm-cat down for 30s');
  let response = await fetch(api.url('/containers/cat/attach?stream=1'), { method: 'POST' });
  t.equal(response.status, 504);
  t.same(await response.json(), { message: 'link to vm-cat down for 30s' });

  api.directory.failAttach = new Error('connection map exploded');
  response = await fetch(api.url('/containers/cat/attach?stream=1'), { method: 'POST' });
  t.equal(response.status, 500);
  t.same(await response.json(), { message: 'connection map exploded' });
  t.ok(api.logs.some((line) => line.startsWith('error POST /containers/cat/attach?stream=1 failed: Error: connection map exploded')));
});

// ---------------------------------------------------------------- JSON routes

t.test('_ping answers OK with the headers clients negotiate from, to GET and HEAD', async (t) => {
  const api = await startApi(t);
  for (const method of ['GET', 'HEAD']) {
    const response = await fetch(api.url('/_ping'), { method });
    t.equal(response.status, 200);
    t.equal(await response.text(), method === 'GET' ? 'OK' : '');
    t.equal(response.headers.get('api-version'), '1.45');
    t.equal(response.headers.get('ostype'), 'linux');
    t.equal(response.headers.get('docker-experimental'), 'false');
    t.equal(response.headers.get('builder-version'), '1');
    t.equal(response.headers.get('cache-control'), 'no-cache, no-store, must-revalidate');
    t.equal(response.headers.get('pragma'), 'no-cache');
  }
});

t.test('version prefixes: supported ones route, others get Docker 400s', async (t) => {
  const api = await startApi(t);
  t.equal((await fetch(api.url('/v1.45/_ping'))).status, 200);
  t.equal((await fetch(api.url('/v1.24/_ping'))).status, 200);
  let response = await fetch(api.url('/v1.46/containers/json'));
  t.equal(response.status, 400);
  t.same(await response.json(), { message: 'client version 1.46 is too new. Maximum supported API version is 1.45' });
  response = await fetch(api.url('/v1.12/version'));
  t.equal(response.status, 400);
  t.same(await response.json(), {
    message: 'client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version',
  });
});

t.test('GET /version reports tether and the API range', async (t) => {
  const api = await startApi(t);
  const version = (await (await fetch(api.url('/version'))).json()) as Record<string, any>;
  t.equal(version.Platform.Name, 'tether');
  t.equal(version.Version, VERSION);
  t.equal(version.ApiVersion, '1.45');
  t.equal(version.MinAPIVersion, '1.24');
  t.equal(version.Components[0].Name, 'Engine');
  t.equal(version.Components[0].Details.ApiVersion, '1.45');
  t.ok(['Os', 'Arch', 'KernelVersion', 'GoVersion', 'GitCommit', 'BuildTime'].every((key) => key in version));
});

t.test('unknown routes and wrong methods are 404 page not found', async (t) => {
  const api = await startApi(t);
  for (const [method, path] of [
    ['GET', '/nope'],
    ['GET', '/v1.45/containers/cat/nope'],
    ['DELETE', '/containers/cat/json'],
    ['GET', '/v1.45'],
  ] as const) {
    const response = await fetch(api.url(path), { method });
    t.equal(response.status, 404, `${method} ${path}`);
    t.same(await response.json(), { message: 'page not found' });
  }
});

t.test('unknown containers are a 404 naming the reference asked for', async (t) => {
  const api = await startApi(t);
  for (const [method, path] of [
    ['GET', '/containers/ghost/json'],
    ['POST', '/containers/ghost/wait'],
    ['POST', '/containers/ghost/resize?h=1&w=1'],
  ] as const) {
    const response = await fetch(api.url(path), { method });
    t.equal(response.status, 404, `${method} ${path}`);
    t.same(await response.json(), { message: 'No such container: ghost (no containerVM has reported it)' });
  }
});

t.test('inspect has what docker attach and docker inspect read', async (t) => {
  const api = await startApi(t, [
    CAT,
    record({ id: 'dead'.padEnd(64, '2'), name: 'gone', state: 'failed', error: 'exec: "nope": not found', exitCode: 127, finishedAt: '2025-01-01T00:00:02.000Z' }),
  ]);
  const running = (await (await fetch(api.url(`/containers/${CAT.id.slice(0, 6)}/json`))).json()) as Record<string, any>;
  t.equal(running.Id, CAT.id);
  t.equal(running.Name, '/cat');
  t.match(running.State, { Status: 'running', Running: true, Paused: false, Restarting: false, Pid: 4242, ExitCode: 0 });
  t.match(running.Config, { Tty: false, OpenStdin: true, AttachStdin: true, Cmd: ['cat'] });
  t.equal(running.Path, 'cat');
  t.same(running.Args, []);
  t.equal(running.State.FinishedAt, '0001-01-01T00:00:00Z');

  const failed = (await (await fetch(api.url('/containers/%2Fgone/json'))).json()) as Record<string, any>;
  t.match(failed.State, { Status: 'exited', Running: false, Pid: 0, ExitCode: 127, Error: 'exec: "nope": not found' });
});

t.test('container list: running only by default; all, limit and filters as Docker reads them', async (t) => {
  const api = await startApi(t, [
    record({ id: 'a1'.padEnd(64, '0'), name: 'web', created: '2025-01-01T00:00:03Z' }),
    record({ id: 'b2'.padEnd(64, '0'), name: 'held', state: 'blocked', created: '2025-01-01T00:00:02Z', startedAt: undefined }),
    record({ id: 'c3'.padEnd(64, '0'), name: 'done', state: 'exited', exitCode: 3, created: '2025-01-01T00:00:01Z', finishedAt: '2025-01-01T00:00:04Z' }),
    record({ id: 'd4'.padEnd(64, '0'), name: 'new', state: 'created', created: '2025-01-01T00:00:00Z', startedAt: undefined, pid: undefined }),
  ]);
  const names = async (query: string) => {
    const response = await fetch(api.url(`/containers/json${query}`));
    t.equal(response.status, 200, query);
    return ((await response.json()) as Array<{ Names: string[] }>).map((entry) => entry.Names[0]);
  };
  t.same(await names(''), ['/web', '/held'], 'newest first, running and blocked only');
  t.same(await names('?all=1'), ['/web', '/held', '/done', '/new']);
  t.same(await names('?limit=3'), ['/web', '/held', '/done'], 'a limit counts stopped ones too');
  t.same(await names('?limit=-1'), ['/web', '/held'], 'docker-py sends limit=-1 for none');
  const filtered = (filters: object) => names(`?all=1&filters=${encodeURIComponent(JSON.stringify(filters))}`);
  t.same(await filtered({ status: { exited: true } }), ['/done']);
  t.same(await filtered({ status: ['running', 'created'] }), ['/web', '/held', '/new'], 'the old list form');
  t.same(await filtered({ id: { c3: true } }), ['/done'], 'an ID prefix');
  t.same(await filtered({ name: { '^/(web|new)$': true } }), ['/web', '/new'], 'names match as regular expressions');
  t.same(await filtered({ name: { web: true }, status: { exited: true } }), [], 'different filters must all hold');
  t.same(await filtered({ label: { 'com.docker.compose.project=x': true } }), [], 'no container has labels');
  t.same(await names(`?filters=${encodeURIComponent('{"status":{"exited":true}}')}`), ['/done'], 'a status filter implies all');

  const entry = ((await (await fetch(api.url('/containers/json?all=1'))).json()) as Array<Record<string, any>>)[2]!;
  t.match(entry, {
    Id: 'c3'.padEnd(64, '0'),
    Names: ['/done'],
    Command: 'cat',
    Created: Date.parse('2025-01-01T00:00:01Z') / 1000,
    State: 'exited',
    Status: /^Exited \(3\) .+ ago$/,
    Ports: [],
    Labels: {},
    Mounts: [],
    HostConfig: { NetworkMode: 'default' },
    NetworkSettings: { Networks: {} },
  });

  for (const [filters, message] of [
    ['{"bogus":{"x":true}}', "invalid filter 'bogus'"],
    ['{"status":{"sleeping":true}}', "invalid filter 'status=sleeping'"],
    ['{"name":', /^invalid filters parameter "\{\\"name\\":": /],
    ['[1]', 'invalid filters parameter "[1]": not a JSON object'],
  ] as const) {
    const response = await fetch(api.url(`/containers/json?filters=${encodeURIComponent(filters)}`));
    t.equal(response.status, 400, filters);
    t.match(((await response.json()) as { message: string }).message, message);
  }
  const badLimit = await fetch(api.url('/containers/json?limit=ten'));
  t.equal(badLimit.status, 400);
  t.same(await badLimit.json(), { message: 'invalid value for parameter "limit": "ten" is not an integer' });
});

t.test('wait sends its headers at once and the exit status when the container stops', async (t) => {
  const api = await startApi(t);
  const response = await fetch(api.url('/v1.45/containers/cat/wait'), { method: 'POST' });
  t.equal(response.status, 200, 'headers arrived while the container still runs');
  const waiting = await api.directory.waiting();
  t.same([waiting.id, waiting.condition], [CAT.id, 'not-running']);
  waiting.answer({ exitCode: 137 });
  t.same(await response.json(), { StatusCode: 137, Error: null });

  const failing = await fetch(api.url('/containers/cat/wait?condition=next-exit'), { method: 'POST' });
  const second = await api.directory.waiting(2);
  t.equal(second.condition, 'next-exit');
  second.answer(new ApiError(504, 'link to vm-cat down past its deadline'));
  t.same(await failing.json(), { StatusCode: -1, Error: { Message: 'link to vm-cat down past its deadline' } });

  const bad = await fetch(api.url('/containers/cat/wait?condition=whenever'), { method: 'POST' });
  t.equal(bad.status, 400);
  t.same(await bad.json(), {
    message: 'invalid value for parameter "condition": "whenever" (expected not-running, next-exit, removed)',
  });
});

t.test('a client leaving during wait does not disturb the server', async (t) => {
  const api = await startApi(t);
  const client = await api.connect('POST /containers/cat/wait HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\n\r\n');
  t.match(await client.head(), /^HTTP\/1\.1 200 OK\r\n/);
  client.socket.destroy();
  await client.closed;
  (await api.directory.waiting()).answer({ exitCode: 0 });
  t.equal(await (await fetch(api.url('/_ping'))).text(), 'OK');
});

t.test('resize passes the size on; missing or bad h and w are 400s naming the parameter', async (t) => {
  const api = await startApi(t);
  const ok = await fetch(api.url('/v1.45/containers/console/resize?h=40&w=120'), { method: 'POST' });
  t.equal(ok.status, 200);
  t.same(api.directory.resizes, [{ id: TTY.id, cols: 120, rows: 40 }]);
  for (const [query, message] of [
    ['w=120', 'missing parameter "h"'],
    ['h=40', 'missing parameter "w"'],
    ['h=abc&w=120', 'invalid value for parameter "h": "abc" is not an integer from 0 to 65535'],
    ['h=40&w=-1', 'invalid value for parameter "w": "-1" is not an integer from 0 to 65535'],
    ['h=4.5&w=1', 'invalid value for parameter "h": "4.5" is not an integer from 0 to 65535'],
    ['h=40&w=4294967296', 'invalid value for parameter "w": "4294967296" is not an integer from 0 to 65535'],
  ]) {
    const response = await fetch(api.url(`/containers/console/resize?${query}`), { method: 'POST' });
    t.equal(response.status, 400, query);
    t.same(await response.json(), { message });
  }
});

t.test('malformed requests get a 400 and the server keeps serving', async (t) => {
  const api = await startApi(t);
  const garbage = await api.connect('THIS IS NOT HTTP\r\n\r\n');
  t.match(await garbage.head(), /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match((await garbage.rest()).toString(), /^\{"message":"bad request: /);

  const badEscape = await fetch(api.url('/containers/%E0%A4%A/json'));
  t.equal(badEscape.status, 400);
  t.same(await badEscape.json(), { message: 'malformed escape in URL path segment: %E0%A4%A' });

  t.equal(await (await fetch(api.url('/_ping'))).text(), 'OK');
});

t.test('each request is logged at debug level with its status', async (t) => {
  const api = await startApi(t);
  await fetch(api.url('/v1.45/containers/json'));
  await fetch(api.url('/v1.45/containers/ghost/json'));
  t.same(api.logs, ['debug GET /v1.45/containers/json 200', 'debug GET /v1.45/containers/ghost/json 404']);
});
