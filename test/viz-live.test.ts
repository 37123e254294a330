import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { parseAddress } from '../appliance/address.ts';
import { machines } from '../machines/index.ts';
import { drawMachines } from '../tools/viz/diagrams.ts';
import { livePage } from '../tools/viz/page.ts';
import { startVizServer } from '../tools/viz/serve.ts';
import { collect, startWorld } from './support/world.ts';

// `tether viz --serve` in a real browser: Debian's Chromium, headless,
// against a real appliance and a sandboxed guest.

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y chromium`;
if (skip) console.error(`# SKIP viz-live: ${skip}`);

/** How long a page may take to show what the appliance did: a deadline for a wait, not a measurement. */
const WAIT = { timeout: 20_000 };

/** A fresh headless Chromium that fetches nothing from outside, and a page whose errors are collected. */
async function openPage(t: Test, url: string): Promise<{ page: Page; errors: string[] }> {
  const profile = mkdtempSync(join(tmpdir(), 'tether-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors };
}

async function servePage(t: Test, appliance: string): Promise<string> {
  const server = await startVizServer({
    appliance: parseAddress(appliance, 'the appliance'),
    host: '127.0.0.1',
    port: 0,
    page: livePage(await drawMachines(), undefined, 'no state dir', appliance),
    warn: (message) => t.fail(`the feed sent a malformed message: ${message}`),
  });
  t.teardown(() => server.close());
  return server.url;
}

const actorItem = (actor: string) => `li.actor[data-actor="${actor}"]`;
const activeState = (machine: string, state: string) => `section[data-machine="${machine}"] [data-state="${machine}.${state}"].active`;

t.test('the live page draws every machine and follows the appliance: a guest connects, its link reaches session, a dropped link is replaced', { skip }, async (t) => {
  const world = await startWorld(t);
  const { page, errors } = await openPage(t, await servePage(t, world.appliance.api));

  const drawn = await page.$$eval('section[data-machine] svg.machine', (svgs) => svgs.map((svg) => svg.getAttribute('data-machine')));
  t.same(drawn, Object.values(machines).map((m) => m.id), 'an SVG for every machine, in the registry order');
  await page.waitForSelector('#status.reachable', WAIT);
  await page.waitForSelector(`section[data-machine="connectionMap"] ${actorItem('appliance/connectionMap')}`, WAIT);
  await page.waitForSelector(activeState('connectionMap', 'serving'), WAIT);
  t.equal(await page.$$eval('section[data-machine="applianceLink"] li.actor', (items) => items.length), 0, 'no link before a guest connects');

  const sandbox = await world.sandbox({ id: 'viz', name: 'viz', hostname: 'viz', sessions: { viz: { cmd: ['cat'], openStdin: true } } });
  await world.container('viz');
  await page.waitForSelector(`section[data-machine="applianceLink"] ${actorItem('appliance/link1')}`, WAIT);
  await page.waitForSelector(activeState('applianceLink', 'session'), WAIT);
  await page.waitForSelector(`section[data-machine="applianceSession"] ${actorItem('appliance/link1/ssh')}`, WAIT);
  t.pass('the link appeared and reached session');

  sandbox.line!.bridge.drop();
  await page.waitForSelector(`section[data-machine="applianceLink"] ${actorItem('appliance/link2')}`, WAIT);
  await page.waitForSelector(`${actorItem('appliance/link1')}`, { ...WAIT, state: 'detached' });
  await page.waitForSelector(activeState('applianceLink', 'session'), WAIT);
  t.pass('the dropped link went from the page, and its successor reached session');
  t.same(errors, [], 'no console errors');
});

t.test("the live page follows a guest's actors over its link and an attach's container channel: the attach unblocks a run-block session", { skip }, async (t) => {
  const world = await startWorld(t);
  const { page, errors } = await openPage(t, await servePage(t, world.appliance.api));
  await page.waitForSelector('#status.reachable', WAIT);
  await world.sandbox({ id: 'held', name: 'held', hostname: 'held', sessions: { held: { cmd: ['cat'], openStdin: true, runBlock: true } } });
  await world.container('held');

  const session = `section[data-machine="processSession"] ${actorItem('guest:held/session:held')}`;
  await page.waitForSelector(`${session} .actor-state:has-text("blocked")`, WAIT);
  await page.waitForSelector(activeState('processSession', 'blocked'), WAIT);
  await page.waitForSelector(`section[data-machine="guest"] ${actorItem('guest:held')}`, WAIT);
  await page.waitForSelector(`section[data-machine="serialLink"] ${actorItem('guest:held/link')}`, WAIT);
  await page.waitForSelector(`section[data-machine="guestSession"] ${actorItem('guest:held/link/ssh')}`, WAIT);
  await page.waitForSelector(activeState('guestSession', 'serving'), WAIT);
  t.pass("the guest's actors are on the page, its session blocked");

  const attach = await world.appliance.directory.attach('held', { stdin: true, stdout: true, stderr: true, stream: true, logs: false });
  await page.waitForSelector(`${session} .actor-state:has-text("running")`, WAIT);
  await page.waitForSelector(activeState('processSession', 'running'), WAIT);
  await page.waitForSelector(`section[data-machine="containerChannel"] ${actorItem('appliance/attach/1')}`, WAIT);
  await page.waitForSelector(activeState('containerChannel', 'connected.streaming'), WAIT);
  t.pass('the attach unblocked the session, and its container channel streams');

  const output = collect(attach.stdout);
  attach.stdin!.end();
  await output;
  await attach.done;
  await page.waitForSelector(actorItem('appliance/attach/1'), { ...WAIT, state: 'detached' });
  await page.waitForSelector(`${session} .actor-state:has-text("exited")`, WAIT);
  t.pass('the ended attach went from the page, and the session shows its exit');
  t.same(errors, [], 'no console errors');
});

t.test('the live page says when the appliance is unreachable', { skip }, async (t) => {
  const { page, errors } = await openPage(t, await servePage(t, 'tcp://127.0.0.1:1'));
  const status = await page.waitForSelector('#status.unreachable', WAIT);
  t.match(await status.textContent(), /the appliance is unreachable: tcp:\/\/127\.0\.0\.1:1: connect ECONNREFUSED .*retrying/);
  t.equal(await page.$$eval('svg.machine', (svgs) => svgs.length), Object.keys(machines).length, 'the diagrams are there all the same');
  t.same(errors, [], 'no console errors');
});
