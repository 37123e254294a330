import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../appliance/api/errors.ts';
import { formatTimestamp, LineTimestamps, type LogChunk, parseLogsQuery, parseTail, parseTimeUs, tailLines } from '../appliance/api/logs.ts';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { api, docker, dockerMissing, notRoot, readUntil, startWorld, type World } from './support/world.ts';
import { shellGate } from './support/gate.ts';

// `docker logs` served from the output log files the guest writes: the pure
// parts directly, then the real docker CLI against sandboxed containerVMs.

const chunk = (stream: 'stdout' | 'stderr', text: string, timeUs = 0): LogChunk => ({ stream, timeUs, data: Buffer.from(text) });
const text = (chunks: LogChunk[]) => chunks.map((c) => `${c.stream}:${Buffer.from(c.data).toString()}`);

t.test('since and until read Unix seconds with any fraction, rounding inwards to whole µs', async (t) => {
  t.equal(parseTimeUs('since', '1700000000', 'up'), 1_700_000_000_000_000);
  t.equal(parseTimeUs('since', '1700000000.5', 'up'), 1_700_000_000_500_000);
  t.equal(parseTimeUs('since', '1700000000.123456789', 'up'), 1_700_000_000_123_457, 'a lower bound rounds up');
  t.equal(parseTimeUs('until', '1700000000.123456789', 'down'), 1_700_000_000_123_456, 'an upper bound rounds down');
  t.equal(parseTimeUs('since', '1700000000.123456000', 'up'), 1_700_000_000_123_456, 'zeros past µs change nothing');
});

t.test('since and until read RFC 3339 with a zone and any fraction', async (t) => {
  t.equal(parseTimeUs('since', '2023-11-14T22:13:20Z', 'up'), 1_700_000_000_000_000);
  t.equal(parseTimeUs('since', '2023-11-14T22:13:20.000250Z', 'up'), 1_700_000_000_000_250);
  t.equal(parseTimeUs('since', '2023-11-15T00:13:20.5+02:00', 'up'), 1_700_000_000_500_000);
});

t.test('a since that is neither form is a 400 naming the parameter and the value', async (t) => {
  t.throws(() => parseTimeUs('since', '10m', 'up'), { constructor: ApiError, status: 400, message: /"since": "10m" is neither/ });
  t.throws(() => parseTimeUs('until', '2023-11-14 22:13:20', 'down'), { status: 400, message: /"until"/ });
});

t.test('tail is all, a line count, or a 400', async (t) => {
  t.equal(parseTail(null), undefined);
  t.equal(parseTail('all'), undefined);
  t.equal(parseTail('-1'), undefined, 'negative reads as all, as Docker has it');
  t.equal(parseTail('0'), 0);
  t.equal(parseTail('12'), 12);
  t.throws(() => parseTail('ten'), { status: 400, message: /"tail": "ten"/ });
});

t.test('the query needs a stream; until=0 is no bound', async (t) => {
  t.throws(() => parseLogsQuery(new URLSearchParams('follow=1')), { status: 400, message: /at least one stream/ });
  t.same(parseLogsQuery(new URLSearchParams('stdout=1&until=0&since=0&tail=all')), {
    stdout: true, stderr: false, follow: false, timestamps: false, sinceUs: 0,
  });
  t.same(parseLogsQuery(new URLSearchParams('stderr=true&follow=1&timestamps=1&tail=3&until=5')), {
    stdout: false, stderr: true, follow: true, timestamps: true, untilUs: 5_000_000, tail: 3,
  });
});

t.test('tail keeps the last lines across chunks, cutting the chunk the first kept line starts in', async (t) => {
  // Lines: "a", "b", "cd" (across the chunks), "e".
  const chunks = [chunk('stdout', 'a\nb\nc'), chunk('stdout', 'd\ne\n')];
  t.same(text(tailLines(chunks, 1)), ['stdout:e\n']);
  t.same(text(tailLines(chunks, 2)), ['stdout:c', 'stdout:d\ne\n'], 'a line spanning chunks is kept whole');
  t.same(text(tailLines(chunks, 3)), ['stdout:b\nc', 'stdout:d\ne\n']);
  t.same(text(tailLines(chunks, 0)), []);
  t.same(text(tailLines(chunks, 10)), ['stdout:a\nb\nc', 'stdout:d\ne\n']);
});

t.test("tail counts each stream's lines where they start, an unfinished last line included", async (t) => {
  // stdout's "x" line started before stderr's "y": both kept with tail 2, and the line still open at the end counts.
  const chunks = [chunk('stdout', 'w\nx'), chunk('stderr', 'y\n'), chunk('stdout', 'x\n'), chunk('stdout', 'z')];
  t.same(text(tailLines(chunks, 3)), ['stdout:x', 'stderr:y\n', 'stdout:x\n', 'stdout:z']);
  t.same(text(tailLines(chunks, 2)), ['stderr:y\n', 'stdout:z']);
});

t.test('timestamps are RFC 3339 with nine fraction digits, in UTC', async (t) => {
  t.equal(formatTimestamp(1_700_000_000_000_250), '2023-11-14T22:13:20.000250000Z');
  t.equal(formatTimestamp(1_700_000_000_999_999), '2023-11-14T22:13:20.999999000Z');
});

t.test('each line gets the timestamp of the chunk it starts in, per stream', async (t) => {
  const stamps = new LineTimestamps();
  const at = (s: number) => s * 1_000_000;
  const ts = (s: number) => formatTimestamp(at(s));
  t.equal(stamps.frame(chunk('stdout', 'a\nb', at(1))).toString(), `${ts(1)} a\n${ts(1)} b`);
  t.equal(stamps.frame(chunk('stderr', 'e\n', at(2))).toString(), `${ts(2)} e\n`, "stderr's line starts though stdout's is open");
  t.equal(stamps.frame(chunk('stdout', 'c\nd\n', at(3))).toString(), `c\n${ts(3)} d\n`, "stdout's open line gets no second timestamp");
});

// ---------------------------------------------------------------- end to end

const skip = notRoot() || dockerMissing() || sandboxUnsupported();
if (skip) t.comment(`skipping the docker logs end-to-end tests: ${skip}`);

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z /;

/** One containerVM whose primary waits, with a session per case; the cases read logs once their session has exited. */
async function logsWorld(t: Parameters<typeof startWorld>[0], sessions: Record<string, unknown>): Promise<World> {
  const world = await startWorld(t);
  await world.sandbox({ id: 'logs1', name: 'vm-logs1', hostname: 'logs1', sessions: { logs1: { cmd: ['sleep', '1000'] }, ...sessions } });
  return world;
}

const exited = (world: World, id: string) => world.container(id, (c) => c.state === 'exited');

t.test('docker logs after exit has every line of stdout and of stderr, each in order', { skip }, async (t) => {
  const world = await logsWorld(t, {
    mixed: { cmd: ['sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3'] },
  });
  await exited(world, 'mixed');
  const result = await docker(world, ['logs', 'mixed']);
  t.equal(result.code, 0, result.stderr);
  t.equal(result.stdout, 'out1\nout2\nout3\n');
  t.equal(result.stderr, 'err1\nerr2\n');
});

t.test('--tail keeps the last lines; --timestamps starts each line with an RFC 3339 timestamp', { skip }, async (t) => {
  const world = await logsWorld(t, { lines: { cmd: ['printf', 'l1\\nl2\\nl3\\nl4\\n'] } });
  await exited(world, 'lines');
  const tail = await docker(world, ['logs', '--tail', '2', 'lines']);
  t.equal(tail.stdout, 'l3\nl4\n');
  const stamped = await docker(world, ['logs', '--timestamps', 'lines']);
  const lines = stamped.stdout.split('\n').slice(0, -1);
  t.equal(lines.length, 4, stamped.stdout);
  for (const [i, line] of lines.entries()) t.match(line, new RegExp(`${TIMESTAMP.source}l${i + 1}$`));
});

t.test('--since and --until select lines by the time they were logged', { skip }, async (t) => {
  const world = await logsWorld(t, { timed: { cmd: ['sh', '-c', 'echo early; sleep 1; echo late'] } });
  await exited(world, 'timed');
  const stamped = await docker(world, ['logs', '--timestamps', 'timed']);
  const [early, late] = stamped.stdout.split('\n').map((line) => line.split(' ')[0]!);
  t.ok(early && late, `two timestamped lines in ${JSON.stringify(stamped.stdout)}`);
  t.equal((await docker(world, ['logs', '--since', late!, 'timed'])).stdout, 'late\n');
  t.equal((await docker(world, ['logs', '--until', early!, 'timed'])).stdout, 'early\n');
  t.equal((await docker(world, ['logs', '--since', early!, '--until', late!, 'timed'])).stdout, 'early\nlate\n', 'both bounds are inclusive');
});

t.test("a tty container's logs come raw, as the terminal wrote them", { skip }, async (t) => {
  const world = await logsWorld(t, { tty1: { cmd: ['printf', 'a\\nb\\n'], tty: true } });
  await exited(world, 'tty1');
  const result = await docker(world, ['logs', 'tty1']);
  t.equal(result.stdout, 'a\r\nb\r\n');
  t.equal(result.stderr, '');
});

t.test('docker logs -f streams a line printed after it started and ends when the container exits', { skip }, async (t) => {
  const gate = shellGate();
  const world = await logsWorld(t, {
    follow1: { cmd: ['sh', '-c', `echo first; ${gate.wait}; echo second`] },
  });
  await world.container('follow1', (c) => c.state === 'running');
  const config = mkdtempSync(join(tmpdir(), 'tether-docker-config-'));
  t.teardown(() => rmSync(config, { recursive: true, force: true }));
  const child = spawn('docker', ['-H', world.appliance.api, 'logs', '-f', 'follow1'], { env: { ...process.env, DOCKER_CONFIG: config } });
  t.teardown(() => child.kill());
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  await readUntil(child.stdout, 'first\n', 'the line printed before the follow');
  await gate.open();
  let seen = '';
  child.stdout.on('data', (d: Buffer) => (seen += d));
  t.equal(await closed, 0, 'docker logs -f ended by itself once the container exited');
  t.equal(seen, 'second\n');
});

/** One raw request: status, Content-Type and body bytes. */
function rawGet(world: World, path: string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get(new URL(path, world.appliance.api.replace(/^tcp:/, 'http:')), (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

t.test('over raw HTTP: 404 for an unknown ID, 400 without a stream, multiplexed frames otherwise', { skip }, async (t) => {
  const world = await logsWorld(t, { both: { cmd: ['sh', '-c', 'echo out; echo err >&2'] } });
  await exited(world, 'both');
  const unknown = await api(world, 'GET', '/containers/nosuch/logs?stdout=1');
  t.equal(unknown.status, 404);
  t.match(unknown.body, { message: /^No such container: nosuch/ });
  const none = await api(world, 'GET', '/containers/both/logs');
  t.equal(none.status, 400);
  t.match(none.body, { message: /you must choose at least one stream/ });
  const framed = await rawGet(world, '/v1.45/containers/both/logs?stderr=1');
  t.equal(framed.status, 200);
  t.equal(framed.type, 'application/vnd.docker.multiplexed-stream');
  t.same([...framed.body], [2, 0, 0, 0, 0, 0, 0, 4, ...Buffer.from('err\n')], 'one stderr frame, stdout left out');
});
