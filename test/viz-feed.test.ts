import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { startVizServer, type VizServer } from '../tools/viz/serve.ts';
import { eventually } from './support/world.ts';

// The live visualizer's server relays an appliance's inspection feed to its
// page. Here the "appliance" is a stand-in that is missing, garbled, or not
// an appliance at all: the server says so and keeps going.

interface FeedEvent {
  event: string;
  data: { reachable?: boolean; detail?: string; actor?: string };
}

async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function vizServer(t: Test, appliancePort: number, warnings: string[] = []): Promise<VizServer> {
  const server = await startVizServer({
    appliance: { kind: 'tcp', host: '127.0.0.1', port: appliancePort },
    host: '127.0.0.1',
    port: 0,
    page: '<p>the page</p>',
    warn: (message) => warnings.push(message),
  });
  t.teardown(() => server.close());
  return server;
}

/** The server's /feed as it arrives, one entry per SSE message. */
function readFeed(t: Test, server: VizServer): FeedEvent[] {
  const events: FeedEvent[] = [];
  const request = http.get(`${server.url}feed`, (response) => {
    let pending = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      const blocks = (pending + chunk).split('\n\n');
      pending = blocks.pop()!;
      for (const block of blocks) {
        const lines = block.split('\n');
        const data = lines.find((line) => line.startsWith('data: '));
        if (data) events.push({ event: lines.find((line) => line.startsWith('event: '))?.slice(7) ?? 'message', data: JSON.parse(data.slice(6)) });
      }
    });
  });
  request.on('error', () => {});
  t.teardown(() => request.destroy());
  return events;
}

t.test('an unreachable appliance is reported and retried; once it answers, only well-formed messages are relayed', async (t) => {
  const port = await unusedPort();
  const warnings: string[] = [];
  const events = readFeed(t, await vizServer(t, port, warnings));
  const down = await eventually(() => events.find((e) => e.event === 'reachability'), 'the first reachability report');
  t.equal(down.data.reachable, false);
  t.match(down.data.detail, new RegExp(`tcp://127.0.0.1:${port}: connect ECONNREFUSED .*; retrying every 1 s`));

  // The appliance comes up, and its feed has garbage before a good message; its next answer is a 404.
  let requests = 0;
  const appliance = http.createServer((req, res) => {
    requests++;
    if (req.url !== '/tether/v1/inspect' || requests > 1) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end('{"message":"page not found"}');
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: not json\n\n: a comment\n\ndata: {"system":"appliance"}\n\n');
    res.write('data: {"system":"appliance","actor":"appliance","machine":"appliance","state":{"a":{"b":7}},"status":"active"}\n\n');
    res.end('data: {"system":"appliance","actor":"appliance","machine":"appliance","state":"idle","status":"active","event":"GO"}\n\n');
  });
  await new Promise<void>((resolve) => appliance.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => appliance.close(resolve)));

  await eventually(() => events.find((e) => e.data.detail?.includes('answered HTTP 404')), 'the 404 after the feed ended');
  const told = events.map((e) => (e.event === 'reachability' ? `${e.data.reachable ? 'up' : 'down'}: ${e.data.detail!.slice(`tcp://127.0.0.1:${port}: `.length)}` : e.data.actor));
  t.same(
    told.filter((line, i) => line !== told[i - 1]),
    [
      `down: connect ECONNREFUSED 127.0.0.1:${port}; retrying every 1 s`,
      'up: connected',
      'appliance',
      'down: the feed ended; retrying every 1 s',
      "down: answered HTTP 404 (application/json), not tether's inspection feed: is it a tether appliance's Docker API address?; retrying every 1 s",
    ],
    'down until it answered, then the one good message, then down again (repeats aside)',
  );
  t.equal(warnings.length, 3, 'the three malformed messages were skipped with a warning');
});

t.test('the server serves the page at / and nothing else', async (t) => {
  const server = await vizServer(t, await unusedPort());
  const get = (path: string, method = 'GET') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request(`${server.url.replace(/\/$/, '')}${path}`, { method }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body }));
      });
      request.on('error', reject);
      request.end();
    });
  t.same(await get('/'), { status: 200, body: '<p>the page</p>' });
  t.same(await get('/nothing'), { status: 404, body: '/nothing not found: the page is at /\n' });
  t.same(await get('/', 'POST'), { status: 405, body: 'POST is not served here\n' });
});
