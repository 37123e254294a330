import t, { type Test } from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { startWorld, type World } from './support/world.ts';

// Every route's refusals over raw HTTP against a real appliance, as Docker
// gives them: the status Docker uses, Content-Type application/json, and a
// body {"message": ...} that names what was asked.

const skip = sandboxUnsupported();
if (skip) t.comment(`skipping API error tests: ${skip}`);

/** One refusal: the request, and the status and message it must get (a RegExp where part of it is tether's detail). */
type Case = [method: string, path: string, status: number, message: string | RegExp, body?: unknown];

/** An unknown container's 404: Docker's words, then what the appliance knows of the name. */
const noSuchContainer = (ref: string) => new RegExp(`^No such container: ${ref}( \\(.+\\))?$`);

/** A world with `up` running (`sleep`) and `over` exited (status 3), both containerVMs of their own. */
async function startContainers(t: Test): Promise<World> {
  const world = await startWorld(t);
  await world.sandbox({ id: 'up', name: 'up', hostname: 'up', sessions: { up: { cmd: ['sleep', '1000'] } } });
  await world.sandbox({ id: 'over', name: 'over', hostname: 'over', sessions: { over: { cmd: ['sh', '-c', 'exit 3'] } } });
  await world.container('up', (c) => c.state === 'running' && c.link.up);
  await world.container('over', (c) => c.state === 'exited');
  return world;
}

// One for every test: none of the requests below changes a container.
const shared = skip ? undefined : await startContainers(t);

async function check(t: Test, world: World, cases: readonly Case[]): Promise<void> {
  const base = world.appliance.api.replace(/^tcp:/, 'http:');
  for (const [method, path, status, message, body] of cases) {
    const response = await fetch(`${base}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const what = `${method} ${path}`;
    t.equal(response.status, status, what);
    t.equal(response.headers.get('content-type'), 'application/json', `${what}: JSON`);
    const answer = (await response.json()) as Record<string, unknown>;
    t.same(Object.keys(answer), ['message'], `${what}: only a message`);
    if (typeof message === 'string') t.equal(answer.message, message, what);
    else t.match(answer.message, message, what);
  }
}

t.test('routing: unknown paths are 404 page not found; bad versions and escapes are 400s naming them', { skip }, async (t) => {
  await check(t, await startWorld(t), [
    ['GET', '/nope', 404, 'page not found'],
    ['DELETE', '/_ping', 404, 'page not found'],
    ['GET', '/v9.99/version', 400, 'client version 9.99 is too new. Maximum supported API version is 1.45'],
    ['GET', '/v1.12/version', 400, 'client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version'],
    ['GET', '/containers/%zz/json', 400, 'malformed escape in URL path segment: %zz'],
  ]);
});

t.test('inspect, list and wait: 404 for an unknown container, 400 for bad filters and conditions', { skip }, async (t) => {
  await check(t, shared!, [
    ['GET', '/containers/nope/json', 404, noSuchContainer('nope')],
    ['GET', `/containers/json?filters=${encodeURIComponent('{"bogus":["x"]}')}`, 400, "invalid filter 'bogus'"],
    ['GET', `/containers/json?filters=${encodeURIComponent('{"status":["sleeping"]}')}`, 400, "invalid filter 'status=sleeping'"],
    ['GET', `/containers/json?filters=${encodeURIComponent('{"exited":["three"]}')}`, 400, "invalid filter 'exited=three'"],
    ['GET', `/containers/json?filters=${encodeURIComponent('{"before":["nope"]}')}`, 404, noSuchContainer('nope')],
    ['GET', '/containers/json?filters=%7B', 400, /^invalid filters parameter "\{": /],
    ['GET', '/containers/json?limit=ten', 400, 'invalid value for parameter "limit": "ten" is not an integer'],
    ['POST', '/containers/nope/wait', 404, noSuchContainer('nope')],
    ['POST', '/containers/up/wait?condition=bogus', 400, 'invalid value for parameter "condition": "bogus" (expected not-running, next-exit, removed)'],
  ]);
});

t.test('kill: 404 unknown, 409 not running, 400 bad signal, worded as Docker words them', { skip }, async (t) => {
  await check(t, shared!, [
    ['POST', '/containers/nope/kill', 404, /^Cannot kill container: nope: No such container: nope/],
    ['POST', '/containers/over/kill', 409, 'Cannot kill container: over: Container over is not running'],
    ['POST', '/containers/up/kill?signal=BOGUS', 400, 'Invalid signal: BOGUS'],
  ]);
});

t.test('stop: 404 unknown, 400 bad t or signal; a stopped container is 304 with no body', { skip }, async (t) => {
  const w = shared!;
  await check(t, w, [
    ['POST', '/containers/nope/stop', 404, noSuchContainer('nope')],
    ['POST', '/containers/up/stop?t=soon', 400, 'invalid value for parameter "t": "soon" is not an integer from 0 to 2147483'],
    ['POST', '/containers/up/stop?signal=NOPE', 400, 'Invalid signal: NOPE'],
  ]);
  const stopped = await fetch(`${w.appliance.api.replace(/^tcp:/, 'http:')}/containers/over/stop`, { method: 'POST' });
  t.equal(stopped.status, 304);
  t.equal(await stopped.text(), '');
});

t.test('resize: 400 for a missing or bad size, 404 unknown, 409 for a container that is not running', { skip }, async (t) => {
  await check(t, shared!, [
    ['POST', '/containers/up/resize?w=80', 400, 'missing parameter "h"'],
    ['POST', '/containers/up/resize?h=24&w=wide', 400, 'invalid value for parameter "w": "wide" is not an integer from 0 to 65535'],
    ['POST', '/containers/nope/resize?h=24&w=80', 404, noSuchContainer('nope')],
    ['POST', '/containers/over/resize?h=24&w=80', 409, 'Container over is not running'],
  ]);
});

t.test('attach: 404 unknown, 400 bad detach keys, before anything is attached', { skip }, async (t) => {
  await check(t, shared!, [
    ['POST', '/containers/nope/attach?stream=1&stdout=1', 404, noSuchContainer('nope')],
    ['POST', '/containers/up/attach?stream=1&stdout=1&detachKeys=ctrl-%C3%A4', 400, 'Invalid detach keys (ctrl-ä) provided: unknown key "ctrl-ä"'],
  ]);
});

t.test('exec: 404 unknown container or instance, 409 not running, 400 bad body', { skip }, async (t) => {
  await check(t, shared!, [
    ['POST', '/containers/nope/exec', 404, noSuchContainer('nope'), { Cmd: ['true'] }],
    ['POST', '/containers/over/exec', 409, /^Container over is not running/, { Cmd: ['true'] }],
    ['POST', '/containers/up/exec', 400, /Cmd must be an array of strings/, { Cmd: 'true' }],
    ['POST', '/exec/nope/start', 404, 'No such exec instance: nope', {}],
    ['GET', '/exec/nope/json', 404, 'No such exec instance: nope'],
    ['POST', '/exec/nope/resize?h=1&w=1', 404, 'No such exec instance: nope'],
  ]);
});

t.test('logs: 404 unknown, 400 without a stream or with a bad tail', { skip }, async (t) => {
  await check(t, shared!, [
    ['GET', '/containers/nope/logs?stdout=1', 404, noSuchContainer('nope')],
    ['GET', '/containers/up/logs', 400, /you must choose at least one stream/],
    ['GET', '/containers/up/logs?stdout=1&tail=x', 400, /"tail": "x"/],
  ]);
});

t.test('create, start, remove and images: 404 unknown image or container, 409 name in use or running', { skip }, async (t) => {
  await check(t, shared!, [
    ['POST', '/containers/create', 404, 'No such image: no-such-image', { Image: 'no-such-image', Cmd: ['true'] }],
    ['POST', '/containers/create?name=up', 409, /^Conflict\. The container name "\/up" is already in use by container "up"/, { Image: 'host', Cmd: ['true'] }],
    ['POST', '/containers/create?name=-x', 400, /^Invalid container name \(-x\)/, { Image: 'host', Cmd: ['true'] }],
    ['POST', '/containers/nope/start', 404, noSuchContainer('nope')],
    ['DELETE', '/containers/nope', 404, noSuchContainer('nope')],
    ['GET', '/images/nope/json', 404, 'No such image: nope'],
    ['DELETE', '/images/nope', 404, 'No such image: nope'],
  ]);
});
