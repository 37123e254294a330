// The Docker API server driven by the real docker CLI. The directory behind it
// is a stand-in over local child processes (a pty for tty containers); the
// thing under test is the API layer, not the directory.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { type IPty, spawn as spawnPty } from '@lydell/node-pty';
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

const DOCKER = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
if (!DOCKER) {
  console.error('# SKIPPING test/api-docker-cli.test.ts: no `docker` CLI on PATH, so nothing real can talk to the API');
  t.plan(0, 'no docker CLI on PATH');
  process.exit(0);
}

const VERSION = '0.1.0-clitest';

// ---------------------------------------------------------------- directory

/** What the stand-in needs from a process, whether it runs on pipes or a pty. */
interface Proc {
  readonly pid: number;
  write(data: Buffer, done: () => void): void;
  closeStdin(): void;
  resize(cols: number, rows: number): void;
  kill(): void;
}

interface Sinks {
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
  exit(code: number, signal?: string): void;
}

function startPipes(cmd: string[], sinks: Sinks): Proc {
  const child: ChildProcess = spawn(cmd[0]!, cmd.slice(1), { stdio: 'pipe' });
  child.stdout!.on('data', sinks.stdout);
  child.stderr!.on('data', sinks.stderr);
  child.stdin!.on('error', () => {}); // the process may exit before reading what it was sent
  // 'close' comes after stdout and stderr are drained, so no output is lost.
  child.on('close', (code, signal) => sinks.exit(code ?? 128, signal ?? undefined));
  return {
    pid: child.pid!,
    write: (data, done) => child.stdin!.write(data, () => done()),
    closeStdin: () => child.stdin!.end(),
    resize: () => {},
    kill: () => child.kill('SIGKILL'),
  };
}

function startPty(cmd: string[], sinks: Sinks): Proc {
  const pty: IPty = spawnPty(cmd[0]!, cmd.slice(1), { name: 'xterm', cols: 80, rows: 24 });
  pty.onData((data) => sinks.stdout(Buffer.from(data)));
  pty.onExit(({ exitCode }) => sinks.exit(exitCode));
  return {
    pid: pty.pid,
    write: (data, done) => {
      pty.write(data.toString('latin1'));
      done();
    },
    closeStdin: () => pty.write('\x04'),
    resize: (cols, rows) => pty.resize(cols, rows),
    kill: () => pty.kill('SIGKILL'),
  };
}

interface ContainerSpec {
  name: string;
  cmd: string[];
  tty?: boolean;
  /** Launch now, or hold it (state "blocked") until the first attach, as the guest's run-block does. */
  start?: 'now' | 'on-attach';
}

class Container {
  readonly record: ContainerRecord;
  #proc?: Proc;
  #attached?: { stdout: PassThrough; stderr?: PassThrough; end(detached: boolean): void };
  #exitWaiters: Array<() => void> = [];
  /** Everything attached clients wrote to the process's stdin. */
  input = '';
  #inputWatchers = new Set<() => void>();

  constructor(spec: ContainerSpec) {
    this.record = {
      id: randomBytes(32).toString('hex'),
      name: spec.name,
      cmd: spec.cmd,
      tty: spec.tty ?? false,
      openStdin: true,
      primary: true,
      state: 'blocked',
      created: new Date().toISOString(),
      hostname: spec.name,
      vm: `vm-${spec.name}`,
      link: { up: true, detail: 'connected' },
    };
    if (spec.start === 'now') this.#launch();
  }

  get proc(): Proc | undefined {
    return this.#proc;
  }

  #launch(): void {
    const sinks: Sinks = {
      stdout: (data) => this.#attached?.stdout.write(data),
      // With a tty there is no stderr; without one, each stream goes to its own sink.
      stderr: (data) => this.#attached?.stderr?.write(data),
      exit: (code, signal) => {
        Object.assign(this.record, { state: 'exited', exitCode: code, signal, finishedAt: new Date().toISOString() });
        this.#attached?.end(false);
        for (const wake of this.#exitWaiters.splice(0)) wake();
      },
    };
    this.#proc = (this.record.tty ? startPty : startPipes)(this.record.cmd, sinks);
    Object.assign(this.record, { state: 'running', pid: this.#proc.pid, startedAt: new Date().toISOString() });
  }

  attach(options: AttachOptions): Attachment {
    if (this.record.state === 'exited') throw new ApiError(409, `container ${this.record.id} has exited`);
    const stdout = new PassThrough();
    const stderr = this.record.tty ? undefined : new PassThrough();
    let settle!: (result: { exitCode?: number; detached: boolean }) => void;
    const done = new Promise<{ exitCode?: number; detached: boolean }>((resolve) => (settle = resolve));
    const streams = [stdout, ...(stderr ? [stderr] : [])];
    const attached = {
      stdout,
      ...(stderr ? { stderr } : {}),
      end: (detached: boolean) => {
        if (this.#attached === attached) this.#attached = undefined;
        const ended = Promise.all(streams.map((stream) => once(stream, 'end')));
        for (const stream of streams) stream.end();
        void ended.then(() => settle({ ...(detached ? {} : { exitCode: this.record.exitCode }), detached }));
      },
    };
    this.#attached = attached;
    if (this.record.state === 'blocked') this.#launch();
    const proc = this.#proc!;
    const stdin =
      options.stdin && this.record.openStdin
        ? new Writable({
            write: (chunk: Buffer, _encoding, callback) => {
              this.input += chunk.toString('latin1');
              for (const watcher of [...this.#inputWatchers]) watcher();
              proc.write(chunk, callback);
            },
            final: (callback) => {
              proc.closeStdin();
              callback();
            },
          })
        : undefined;
    return {
      tty: this.record.tty,
      stdout,
      ...(stderr ? { stderr } : {}),
      ...(stdin ? { stdin } : {}),
      detach: () => attached.end(true),
      done,
    };
  }

  received(text: string): Promise<void> {
    return new Promise((resolve) => {
      const watcher = () => {
        if (!this.input.includes(text)) return;
        this.#inputWatchers.delete(watcher);
        resolve();
      };
      this.#inputWatchers.add(watcher);
      watcher();
    });
  }

  exited(): Promise<void> {
    if (this.record.state === 'exited') return Promise.resolve();
    return new Promise((resolve) => this.#exitWaiters.push(resolve));
  }
}

class ProcessDirectory implements ContainerDirectory {
  readonly containers: Container[] = [];

  add(spec: ContainerSpec): Container {
    const container = new Container(spec);
    this.containers.push(container);
    return container;
  }

  list(): ContainerRecord[] {
    return this.containers.map((container) => container.record);
  }

  find(ref: string): ContainerRecord | undefined {
    return this.#find(ref)?.record;
  }

  explainUnknown(): string {
    return 'no containerVM has reported it';
  }

  #find(ref: string): Container | undefined {
    const name = ref.replace(/^\//, '');
    const byName = this.containers.find((container) => container.record.name === name);
    if (byName) return byName;
    const byId = this.containers.filter((container) => container.record.id.startsWith(ref));
    return byId.length === 1 ? byId[0] : undefined;
  }

  #get(id: string): Container {
    const container = this.#find(id);
    if (!container) throw new ApiError(404, `No such container: ${id}`);
    return container;
  }

  async attach(id: string, options: AttachOptions): Promise<Attachment> {
    return this.#get(id).attach(options);
  }

  async resize(id: string, size: { cols: number; rows: number }): Promise<void> {
    this.#get(id).proc?.resize(size.cols, size.rows);
  }

  async wait(id: string, _condition: WaitCondition): Promise<{ exitCode: number }> {
    const container = this.#get(id);
    await container.exited();
    return { exitCode: container.record.exitCode! };
  }

  killAll(): void {
    for (const container of this.containers) if (container.record.state === 'running') container.proc!.kill();
  }
}

// ---------------------------------------------------------------- harness

interface Api {
  directory: ProcessDirectory;
  requests: string[];
  docker(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }>;
  dockerArgs(args: string[]): string[];
  env: NodeJS.ProcessEnv;
  /** Resolves when the server has logged a line matching the pattern. */
  logged(pattern: RegExp): Promise<void>;
}

async function startApi(
  t: { teardown(fn: () => unknown): void },
  containers: ContainerSpec[],
  transport: 'tcp' | 'unix' = 'tcp',
): Promise<Api> {
  const directory = new ProcessDirectory();
  for (const spec of containers) directory.add(spec);
  const requests: string[] = [];
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  const server = createApiServer(directory, {
    version: VERSION,
    log: (level, message) => {
      lines.push(message);
      if (level === 'debug' && /^(GET|HEAD|POST) /.test(message)) requests.push(message);
      for (const watcher of [...watchers]) watcher();
    },
  });
  const logged = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const watcher = () => {
        if (!lines.some((line) => pattern.test(line))) return;
        watchers.delete(watcher);
        resolve();
      };
      watchers.add(watcher);
      watcher();
    });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => sockets.add(socket));
  // Nothing from the user's docker setup may leak in: no config, no context, no DOCKER_HOST.
  const config = mkdtempSync(path.join(tmpdir(), 'tether-docker-'));
  server.listen(transport === 'tcp' ? { port: 0, host: '127.0.0.1' } : { path: path.join(config, 'api.sock') });
  await once(server, 'listening');
  const host = transport === 'tcp' ? `tcp://127.0.0.1:${(server.address() as AddressInfo).port}` : `unix://${server.address()}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DOCKER_')));
  env.DOCKER_CONFIG = config;

  t.teardown(async () => {
    directory.killAll();
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
    rmSync(config, { recursive: true, force: true });
  });

  const dockerArgs = (args: string[]) => ['-H', host, ...args];
  const docker = async (args: string[], input?: string) => {
    const child = spawn(DOCKER!, dockerArgs(args), { env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data));
    child.stderr.on('data', (data: Buffer) => (stderr += data));
    child.stdin.end(input);
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr };
  };
  return { directory, requests, docker, dockerArgs, env, logged };
}

// ---------------------------------------------------------------- tests

t.test('docker version shows the server as tether with its version and API range', async (t) => {
  const api = await startApi(t, []);
  const { code, stdout } = await api.docker(['version']);
  t.equal(code, 0);
  t.match(stdout, /^Server: tether$/m);
  t.match(stdout, new RegExp(`^  Version:\\s+${VERSION.replace(/\./g, '\\.')}$`, 'm'));
  t.match(stdout, /API version:\s+1\.45 \(minimum version 1\.24\)/);
  t.match(stdout, /API version:\s+1\.45 \(downgraded from/, 'the client negotiated down to our version');
});

t.test('docker ps lists running and blocked containers; docker ps -a adds exited ones', async (t) => {
  const api = await startApi(t, [
    { name: 'sleeper', cmd: ['sleep', '1000'], start: 'now' },
    { name: 'held', cmd: ['cat'] },
    { name: 'quitter', cmd: ['sh', '-c', 'exit 3'], start: 'now' },
  ]);
  await api.directory.containers[2]!.exited();
  const format = ['--format', '{{.Names}}|{{.Status}}|{{.Command}}'];

  const running = await api.docker(['ps', ...format]);
  t.equal(running.code, 0);
  const runningLines = running.stdout.trim().split('\n').sort();
  t.equal(runningLines.length, 2);
  t.match(runningLines[0], /^held\|Up .* \(waiting for attach\)\|"cat"$/);
  t.match(runningLines[1], /^sleeper\|Up [^(]*\|"sleep 1000"$/);

  const all = await api.docker(['ps', '-a', ...format]);
  t.equal(all.code, 0);
  t.same(
    all.stdout.trim().split('\n').map((line) => line.split('|')[0]).sort(),
    ['held', 'quitter', 'sleeper'],
  );
  // Docker joins the command's words with spaces, quoting none of them.
  t.match(all.stdout, /^quitter\|Exited \(3\) .* ago\|"sh -c exit 3"$/m);

  const table = await api.docker(['ps']);
  t.match(table.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m, 'the default table renders');
  t.match(table.stdout, new RegExp(`^${api.directory.containers[0]!.record.id.slice(0, 12)}\\s`, 'm'));

  const filtered = await api.docker(['ps', '--filter', 'status=exited', '--format', '{{.Names}}']);
  t.equal(filtered.stdout.trim(), 'quitter', 'a status filter finds stopped containers without -a');
});

t.test('docker ps --filter: exited, ancestor, before, since, name, id and label as Docker reads them', async (t) => {
  const api = await startApi(t, [
    { name: 'held', cmd: ['cat'] },
    { name: 'sleeper', cmd: ['sleep', '1000'], start: 'now' },
    { name: 'quitter', cmd: ['sh', '-c', 'exit 3'], start: 'now' },
    { name: 'zero', cmd: ['true'], start: 'now' },
  ]);
  const [held, sleeper, quitter, zero] = api.directory.containers;
  await Promise.all([quitter!.exited(), zero!.exited()]);
  // One second apart, oldest first, so before and since have an order to go by.
  for (const [i, container] of [held!, sleeper!, quitter!, zero!].entries()) container.record.created = `2025-01-01T00:00:0${i}Z`;
  // As the container store gives a container created through the API from an image.
  Object.assign(sleeper!.record, { settings: { Image: 'alpine', ImageID: `sha256:abc123${'0'.repeat(58)}` } });

  const names = async (...filters: string[]) => {
    const result = await api.docker(['ps', '-a', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Names}}']);
    t.equal(result.code, 0, result.stderr);
    return result.stdout.split('\n').filter(Boolean);
  };
  t.same(await names('exited=3'), ['quitter']);
  t.same(await names('exited=0'), ['zero']);
  t.same(await names('exited=0', 'exited=3'), ['zero', 'quitter'], 'values of one filter are alternatives');
  t.same(await names('ancestor=alpine'), ['sleeper']);
  t.same(await names('ancestor=alpine:latest'), ['sleeper'], 'an absent tag is latest');
  t.same(await names('ancestor=abc123'), ['sleeper'], 'an image ID prefix');
  t.same(await names('ancestor=busybox'), []);
  t.same(await names('before=quitter'), ['sleeper', 'held']);
  t.same(await names('since=sleeper'), ['zero', 'quitter']);
  t.same(await names('since=held', 'before=zero'), ['quitter', 'sleeper'], 'different filters must all hold');
  t.same(await names('name=sleep'), ['sleeper']);
  t.same(await names(`id=${quitter!.record.id.slice(0, 12)}`), ['quitter']);
  t.same(await names('label=com.example=x'), [], 'no container has labels');

  const notAll = await api.docker(['ps', '--filter', 'exited=3', '--format', '{{.Names}}']);
  t.equal(notAll.stdout, '', 'as in Docker, an exited filter does not imply -a');

  const badCode = await api.docker(['ps', '--filter', 'exited=three']);
  t.not(badCode.code, 0);
  t.match(badCode.stderr, "invalid filter 'exited=three'");
  const unknownRef = await api.docker(['ps', '--filter', 'before=nope']);
  t.not(unknownRef.code, 0);
  t.match(unknownRef.stderr, 'No such container: nope');
});

t.test('docker inspect prints the container as JSON, Config.Tty included', async (t) => {
  const api = await startApi(t, [
    { name: 'console', cmd: ['cat'], tty: true },
    { name: 'pipes', cmd: ['cat'] },
  ]);
  const { code, stdout } = await api.docker(['inspect', 'console', 'pipes']);
  t.equal(code, 0);
  const [consoleView, pipesView] = JSON.parse(stdout) as Array<Record<string, any>>;
  t.equal(consoleView!.Name, '/console');
  t.equal(consoleView!.Id, api.directory.containers[0]!.record.id);
  t.equal(consoleView!.Config.Tty, true);
  t.equal(pipesView!.Config.Tty, false);
  t.same(consoleView!.Config.Cmd, ['cat']);
  t.equal(consoleView!.State.Running, true);
  t.equal(consoleView!.Tether.VM, 'vm-console');

  const templated = await api.docker(['inspect', '-f', '{{.Config.Tty}} {{.State.Status}}', 'console']);
  t.equal(templated.stdout.trim(), 'true running');
});

t.test("printf 'abc\\n' | docker attach prints abc and exits 0 when cat does", async (t) => {
  const api = await startApi(t, [{ name: 'echo', cmd: ['cat'] }]);
  const { id } = api.directory.containers[0]!.record;
  const { code, stdout, stderr } = await api.docker(['attach', id], 'abc\n');
  t.equal(stdout, 'abc\n');
  t.equal(stderr, '');
  t.equal(code, 0);
  t.equal(api.directory.containers[0]!.record.state, 'exited', 'EOF on the CLI stdin closed the process stdin');

  t.same(api.requests, [
    'HEAD /_ping 200',
    `POST /v1.45/containers/${id}/wait 200`,
    `GET /v1.45/containers/${id}/json 200`,
    `POST /v1.45/containers/${id}/attach?stderr=1&stdin=1&stdout=1&stream=1 101`,
    `GET /v1.45/containers/${id}/json 200`,
  ]);
  t.comment(`docker attach sent:\n${api.requests.join('\n')}`);
});

t.test('docker attach exits with the status of the process (from /wait)', async (t) => {
  const api = await startApi(t, [{ name: 'three', cmd: ['sh', '-c', 'cat; exit 3'] }]);
  const { code, stdout } = await api.docker(['attach', 'three'], 'abc\n');
  t.equal(stdout, 'abc\n');
  t.equal(code, 3);
});

t.test('docker attach to a non-tty container gets stdout and stderr separately', async (t) => {
  const api = await startApi(t, [{ name: 'both', cmd: ['sh', '-c', 'echo to-out; echo to-err >&2'] }]);
  const { code, stdout, stderr } = await api.docker(['attach', 'both']);
  t.equal(code, 0);
  t.equal(stdout, 'to-out\n');
  t.equal(stderr, 'to-err\n');
});

t.test('docker attach to an unknown container fails naming it', async (t) => {
  const api = await startApi(t, []);
  const { code, stderr } = await api.docker(['attach', 'no-such-thing']);
  t.not(code, 0);
  t.match(stderr, /No such container: no-such-thing/);
});

/** `docker attach` on a terminal, which it insists on for a tty container; resolves once typed keys reach the process. */
async function attachOnTerminal(api: Api, container: Container, args: string[]) {
  const cli = spawnPty(DOCKER!, api.dockerArgs(['attach', ...args]), {
    name: 'xterm',
    cols: 100,
    rows: 30,
    env: api.env as Record<string, string>,
  });
  let screen = '';
  cli.onData((data) => (screen += data));
  const exited = new Promise<number>((resolve) => cli.onExit(({ exitCode }) => resolve(exitCode)));
  // Typed before the CLI reads its terminal, this waits in the pty; once it
  // reaches the process, the CLI has its terminal in raw mode and is reading
  // key by key, so the next key is seen on its own.
  cli.write('hello\r');
  await container.received('hello');
  return { cli, exited, screen: () => screen };
}

t.test('docker attach --detach-keys ctrl-x detaches and leaves the process running', async (t) => {
  // Over a unix socket: see the next test for tcp://.
  const api = await startApi(t, [{ name: 'shell', cmd: ['cat'], tty: true }], 'unix');
  const container = api.directory.containers[0]!;
  const { cli, exited, screen } = await attachOnTerminal(api, container, ['--detach-keys', 'ctrl-x', 'shell']);
  cli.write('\x18');
  const exitCode = await exited;

  t.match(screen(), /read escape sequence/);
  t.equal(exitCode, 1, 'the CLI reports the detach as docker does');
  t.notMatch(container.input, /\x18/, 'the detach key never reached the process');
  t.equal(container.record.state, 'running');
  t.doesNotThrow(() => process.kill(container.proc!.pid, 0), 'the process is still alive');
  t.ok(api.requests.some((line) => /^POST \/v1\.45\/containers\/shell\/resize\?h=\d+&w=\d+ 200$/.test(line)), 'the terminal size was passed on');

  const ps = await api.docker(['ps', '--format', '{{.Names}} {{.State}}']);
  t.equal(ps.stdout.trim(), 'shell running');
});

t.test('over tcp:// the CLI half-closes on its detach keys; the server detaches and the process keeps running', async (t) => {
  // docker 28 spots the keys itself in tty mode, but over TCP its stdin copy
  // goes through net.TCPConn.ReadFrom, which wraps the escape error, so the CLI
  // takes it for EOF: it half-closes and then waits on /wait for an exit that
  // is not coming (Docker's own daemon leaves it hanging the same way).
  const api = await startApi(t, [{ name: 'shell', cmd: ['cat'], tty: true }]);
  const container = api.directory.containers[0]!;
  const { cli, exited } = await attachOnTerminal(api, container, ['--detach-keys', 'ctrl-x', 'shell']);
  cli.write('\x18');
  await api.logged(/^attach shell: output ended \(detached\)$/);

  t.equal(container.record.state, 'running');
  t.doesNotThrow(() => process.kill(container.proc!.pid, 0), 'the process is still alive');
  cli.kill('SIGKILL');
  await exited;
});
