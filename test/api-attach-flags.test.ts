import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { onTerminal } from './support/terminal.ts';
import { docker, dockerMissing, startWorld, transcript, type World } from './support/world.ts';

// `docker attach` and `docker start -a` flags end to end: the real CLI (on a
// real terminal where it insists on one) against sandboxed containerVMs.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping docker attach flag tests: ${skip}`);

/** A running containerVM whose primary session is `session` (the guest config's form of `docker run -d[i][t]`). */
async function runningContainer(t: Test, name: string, session: Record<string, unknown>): Promise<World> {
  const world = await startWorld(t);
  await world.sandbox({ id: name, name, hostname: name, sessions: { [name]: session } });
  await world.container(name, (c) => c.state === 'running' && c.link.up);
  return world;
}

/**
 * The world's API on a unix socket, as a local docker CLI usually reaches its
 * daemon. It matters for a tty attach: docker 28 spots detach keys itself in
 * tty mode, but over tcp:// its stdin copy runs through net.TCPConn.ReadFrom,
 * which wraps the escape error, so the CLI takes the keys for EOF and then
 * waits for an exit that is not coming (docker/cli#3385; the server side of
 * that is tested in api-docker-cli.test.ts). Over a unix socket it detaches.
 */
async function unixEndpoint(t: Test, world: World): Promise<string> {
  const { hostname, port } = new URL(world.appliance.api.replace(/^tcp:/, 'http:'));
  const dir = mkdtempSync(join(tmpdir(), 'tether-attach-'));
  const path = join(dir, 'api.sock');
  // allowHalfOpen on both sides: the CLI's half-close must reach the API as one.
  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(path, resolve));
  t.teardown(() => {
    proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return `unix://${path}`;
}

function cliEnv(t: Test): Record<string, string> {
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  t.teardown(() => rmSync(config, { recursive: true, force: true }));
  return { ...(process.env as Record<string, string>), DOCKER_CONFIG: config };
}

/** `docker -H host ARGS` on a terminal of its own. */
function dockerOnTerminal(t: Test, host: string, args: string[]) {
  return onTerminal(t, ['docker', '-H', host, ...args], cliEnv(t));
}

/** `docker -H (the world's API) ARGS` on pipes, its output kept. */
function onPipes(t: Test, world: World, args: string[]) {
  const cli: ChildProcess = spawn('docker', ['-H', world.appliance.api, ...args], { env: cliEnv(t), stdio: ['pipe', 'pipe', 'pipe'] });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => cli.on('close', (code, signal) => resolve({ code, signal })));
  t.teardown(() => cli.kill('SIGKILL'));
  return { cli, stdout: transcript(cli.stdout!), stderr: transcript(cli.stderr!), ended };
}

const shell = { cmd: ['sh'], tty: true, openStdin: true };

t.test('docker attach to a tty container: ctrl-p ctrl-q detaches, the container keeps running, and a new attach sees new output', { skip }, async (t) => {
  const world = await runningContainer(t, 'tty1', shell);
  const host = await unixEndpoint(t, world);

  const first = dockerOnTerminal(t, host, ['attach', 'tty1']);
  // $((...)) is expanded by the shell, so the sum on screen is its output, not the typed echo.
  first.type('echo first-$((20+1))\r');
  await first.shows('first-21');
  first.type('\x10\x11');
  t.equal(await first.exited, 1, 'the CLI reports a detach as docker does');
  t.match(first.screen(), /read escape sequence/);
  t.equal(world.appliance.directory.find('tty1')?.state, 'running', 'the container runs on');

  const second = dockerOnTerminal(t, host, ['attach', 'tty1']);
  second.type('echo second-$((40+2))\r');
  await second.shows('second-42');
  t.notMatch(second.screen(), /first-21/, 'a new attach streams from now, not the earlier output');
  second.type('\x10\x11');
  t.equal(await second.exited, 1);
  t.equal(world.appliance.directory.find('tty1')?.state, 'running');
});

t.test('docker run -it: ctrl-p ctrl-q detaches the CLI and the container keeps running; docker run -dit then attach does the same', { skip }, async (t) => {
  const world = await startWorld(t);
  const host = await unixEndpoint(t, world);

  const run = dockerOnTerminal(t, host, ['run', '-it', '--name', 'it1', 'host', 'sh']);
  run.type('echo run-$((3*3))\r');
  await run.shows('run-9');
  run.type('\x10\x11');
  t.equal(await run.exited, 0, 'docker run takes a detach as success, as docker does');
  t.equal(world.appliance.directory.find('it1')?.state, 'running');

  const started = await docker(world, ['run', '-dit', '--name', 'dit1', 'host', 'sh']);
  t.equal(started.code, 0, started.stderr);
  await world.container('dit1', (c) => c.state === 'running' && c.link.up);
  const attach = dockerOnTerminal(t, host, ['attach', 'dit1']);
  attach.type('echo dit-$((4*4))\r');
  await attach.shows('dit-16');
  attach.type('\x10\x11');
  t.equal(await attach.exited, 1);
  t.equal(world.appliance.directory.find('dit1')?.state, 'running');
});

t.test('docker attach --detach-keys on a tty container detaches on those keys; a lone first key passes through', { skip }, async (t) => {
  const world = await runningContainer(t, 'tty2', shell);
  const host = await unixEndpoint(t, world);
  const cli = dockerOnTerminal(t, host, ['attach', '--detach-keys', 'ctrl-x,x', 'tty2']);
  // ctrl-x then y is not the sequence: both go through, and the shell's line ends up "y...".
  cli.type('echo \x18');
  cli.type('y-$((2+3))\r');
  await cli.shows('y-5');
  cli.type('\x18x');
  t.equal(await cli.exited, 1);
  t.match(cli.screen(), /read escape sequence/);
  t.equal(world.appliance.directory.find('tty2')?.state, 'running');
});

const trapper = 'for s in INT USR1; do trap "echo got $s" $s; done; trap "echo got TERM; exit 3" TERM; while :; do echo tick; sleep 0.2; done';

t.test('docker attach passes SIGINT and SIGTERM it receives on to the container (--sig-proxy, the default)', { skip }, async (t) => {
  const world = await runningContainer(t, 'sig1', { cmd: ['sh', '-c', trapper], openStdin: true });
  const attach = onPipes(t, world, ['attach', 'sig1']);
  // A tick on the CLI's stdout: it is attached, so its signal forwarding is in place.
  await attach.stdout.until('tick');
  attach.cli.kill('SIGINT');
  await attach.stdout.until('got INT', "the container's INT trap");
  t.equal(world.appliance.directory.find('sig1')?.state, 'running', 'the trap ran and the container runs on');
  attach.cli.kill('SIGTERM');
  await attach.stdout.until('got TERM', "the container's TERM trap");
  t.same(await attach.ended, { code: 3, signal: null }, "the CLI ends with the container's exit status");
});

t.test('docker attach --sig-proxy=false: SIGINT to the CLI is not sent to the container', { skip }, async (t) => {
  const world = await runningContainer(t, 'sig2', { cmd: ['sh', '-c', trapper], openStdin: true });
  const attach = onPipes(t, world, ['attach', '--sig-proxy=false', 'sig2']);
  await attach.stdout.until('tick');
  attach.cli.kill('SIGINT');
  // docker 28 on SIGINT stops streaming and waits for the container's exit
  // (RunAttach's getExitStatus). A USR1 sent after the SIGINT is a marker: a
  // forwarded INT would have reached the container first, and sh runs its
  // traps in signal order, so "got INT" would come before "got USR1".
  const marked = await docker(world, ['kill', '-s', 'USR1', 'sig2']);
  t.equal(marked.code, 0, marked.stderr);
  const logs = onPipes(t, world, ['logs', '-f', 'sig2']);
  await logs.stdout.until('got USR1', "the container's USR1 trap");
  t.notMatch(logs.stdout.text(), /got INT/);
  t.equal(world.appliance.directory.find('sig2')?.state, 'running');

  const stopped = await docker(world, ['kill', '-s', 'TERM', 'sig2']);
  t.equal(stopped.code, 0, stopped.stderr);
  t.same(await attach.ended, { code: 3, signal: null }, "the CLI was still waiting, and ends with the container's exit status");
});

t.test('docker attach --no-stdin: output flows, typed input does not reach the process', { skip }, async (t) => {
  // cat echoes whatever reaches its stdin; the ticks show output flowing.
  const world = await runningContainer(t, 'ns1', { cmd: ['sh', '-c', '(while :; do echo tick; sleep 0.2; done) & exec cat'], openStdin: true });
  const watcher = onPipes(t, world, ['attach', '--no-stdin', 'ns1']);
  const mark = watcher.stdout.mark();
  await watcher.stdout.until('tick', 'output on the --no-stdin attach', mark);
  watcher.cli.stdin!.write('typed-into-no-stdin\n');
  // Two more ticks: the CLI has been reading while they came.
  await watcher.stdout.until(/tick[^]*tick/, 'two ticks after the typing', watcher.stdout.mark());

  const typist = onPipes(t, world, ['attach', 'ns1']);
  await typist.stdout.until('tick');
  typist.cli.stdin!.write('typed-into-attach\n');
  await watcher.stdout.until('typed-into-attach', "the other attach's input, echoed by cat");
  t.notMatch(watcher.stdout.text(), /typed-into-no-stdin/);
  t.equal(world.appliance.directory.find('ns1')?.state, 'running');
});

t.test('docker start -a of a created container streams its output and returns its exit code', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, ['create', '--name', 'sa1', 'host', 'sh', '-c', 'echo out; echo err >&2; exit 5']);
  t.equal(created.code, 0, created.stderr);
  const started = await docker(world, ['start', '-a', 'sa1']);
  t.equal(started.stdout, 'out\n');
  t.equal(started.stderr, 'err\n');
  t.equal(started.code, 5);
});

t.test('docker start -ai of a created container passes stdin and returns when it ends', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, ['create', '-i', '--name', 'sa2', 'host', 'cat']);
  t.equal(created.code, 0, created.stderr);
  const started = await docker(world, ['start', '-ai', 'sa2'], 'through start -ai\n');
  t.equal(started.stdout, 'through start -ai\n', started.stderr);
  t.equal(started.code, 0);
});

t.test('docker start -a of an exited container runs it again and streams the new run only', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, ['create', '--name', 'sa3', 'host', 'sh', '-c', 'echo "run at $(date +%s%N)"; exit 4']);
  t.equal(created.code, 0, created.stderr);
  const first = await docker(world, ['start', '-a', 'sa3']);
  t.match(first.stdout, /^run at \d+\n$/, first.stderr);
  t.equal(first.code, 4);
  const second = await docker(world, ['start', '-a', 'sa3']);
  t.match(second.stdout, /^run at \d+\n$/, second.stderr);
  t.not(second.stdout, first.stdout, 'the output of this run, not the last one');
  t.equal(second.code, 4);
});
