import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import t, { type Test } from 'tap';
import { type AnyStateMachine, type AnyStateNode, createMachine } from 'xstate';
import { machines } from '../machines/index.ts';
import { type CheckReport, type Counterexample, writeLastReport } from '../tools/check/report.ts';
import { vizCommand } from '../tools/viz/command.ts';
import { drawMachine } from '../tools/viz/diagrams.ts';
import { sequenceSvg } from '../tools/viz/sequence.ts';

// The state diagrams, drawn from the machine definitions: checked against
// the definitions walked here, independently of how the drawing walks them.

interface Element {
  tag: string;
  attrs: Record<string, string>;
  children: Element[];
  text: string;
}

/** Parses `xml`, failing the test with the parser's complaint when it is not well-formed. */
function parseXml(t: Test, xml: string): Element {
  const valid = XMLValidator.validate(xml);
  t.equal(valid, true, 'well-formed XML');
  const ordered = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml) as unknown[];
  const convert = (node: Record<string, unknown>): Element => {
    const tag = Object.keys(node).find((k) => k !== ':@')!;
    const content = node[tag];
    if (tag === '#text') return { tag, attrs: {}, children: [], text: String(content) };
    const children = (content as Record<string, unknown>[]).map(convert);
    return { tag, attrs: (node[':@'] ?? {}) as Record<string, string>, children, text: children.map((c) => c.text).join('') };
  };
  return convert(ordered.map((n) => n as Record<string, unknown>).find((n) => 'svg' in n)!);
}

function all(root: Element, match: (e: Element) => boolean): Element[] {
  return [...(match(root) ? [root] : []), ...root.children.flatMap((c) => all(c, match))];
}

/** Every state node of a machine with its data-state id. */
function statesOf(machine: AnyStateMachine): { id: string; node: AnyStateNode }[] {
  const walk = (node: AnyStateNode): { id: string; node: AnyStateNode }[] => [
    { id: [machine.id, ...node.path].join('.'), node },
    ...Object.values(node.states).flatMap(walk),
  ];
  return walk(machine.root);
}

const labels = (svg: Element) => all(svg, (e) => e.attrs.class === 'transition-label').map((e) => e.text);
const stateElement = (svg: Element, id: string) => all(svg, (e) => e.attrs['data-state'] === id)[0];

t.test('the registry names every machine by its own id', async (t) => {
  for (const [key, machine] of Object.entries(machines)) t.equal(machine.id, key, `machines.${key} is machine ${machine.id}`);
});

for (const machine of Object.values(machines)) {
  t.test(`${machine.id}: its diagram has an element for every state, final states double-bordered, an initial dot in every compound state`, async (t) => {
    const svg = parseXml(t, (await drawMachine(machine)).svg);
    const states = statesOf(machine);
    const drawn = all(svg, (e) => 'data-state' in e.attrs).map((e) => e.attrs['data-state']);
    t.same(drawn.sort(), states.map((s) => s.id).sort(), 'one data-state element per state node, and no other');
    for (const { id, node } of states) {
      const element = stateElement(svg, id)!;
      t.ok(element.children.some((c) => c.attrs.class === 'state-name' && c.text === node.key), `${id} is named ${node.key}`);
      if (node.type === 'final') t.ok(element.children.some((c) => c.attrs.class === 'state-final'), `${id} has the inner border of a final state`);
      if (node.type === 'compound') t.ok(all(element, (e) => e.attrs['data-initial-of'] === id).length === 1, `${id} has its initial dot`);
    }
    const arrows = all(svg, (e) => e.attrs.class === 'transition');
    t.ok(arrows.every((a) => a.children.some((c) => c.tag === 'polyline' && /\d/.test(c.attrs.points ?? ''))), 'every transition is drawn as a polyline');
  });
}

t.test('transitions are labelled with their event, guard and delay; invoked actors are listed in their state', async (t) => {
  const handshake = parseXml(t, (await drawMachine(machines.handshake!)).svg);
  t.ok(labels(handshake).includes('always [synAckArrived]'), 'an eventless transition with a named guard');
  t.ok(labels(handshake).includes('after retry'), 'a delayed transition, by its delay name');
  const channel = parseXml(t, (await drawMachine(machines.containerChannel!)).svg);
  t.ok(labels(channel).includes('CHANNEL_REJECTED [exitedOnOpen]'), 'an event with a guard');
  t.ok(labels(channel).includes('done: lookup'), "an invoked actor's completion, by the actor's name");
  const resolving = stateElement(channel, 'containerChannel.resolving')!;
  t.ok(resolving.children.some((c) => c.attrs.class === 'state-line' && c.text === 'invoke lookup'), 'the invoked actor is listed in its state');
  const streaming = stateElement(channel, 'containerChannel.connected.streaming')!;
  t.ok(streaming.children.some((c) => c.text === 'STDIN [guard]'), 'a transition that changes no state is listed in its state, an inline guard as "guard"');
});

t.test('parallel regions are dashed, and a numeric delay is shown in milliseconds', async (t) => {
  const machine = createMachine({
    id: 'sample',
    initial: 'idle',
    states: {
      idle: { after: { 500: 'busy' } },
      busy: {
        type: 'parallel',
        states: {
          left: { initial: 'a', states: { a: { on: { GO: 'b' } }, b: { type: 'final' } } },
          right: { initial: 'c', states: { c: { invoke: { src: 'worker', id: 'w1' } } } },
        },
      },
    },
  });
  const svg = parseXml(t, (await drawMachine(machine)).svg);
  t.ok(labels(svg).includes('after 500 ms'));
  for (const region of ['sample.busy.left', 'sample.busy.right']) {
    const border = stateElement(svg, region)!.children.find((c) => c.attrs.class === 'state-border')!;
    t.ok(border.attrs['stroke-dasharray'], `${region} is drawn dashed`);
  }
  t.notOk(stateElement(svg, 'sample.busy')!.children.find((c) => c.attrs.class === 'state-border')!.attrs['stroke-dasharray'], 'the parallel state itself is not');
  t.ok(stateElement(svg, 'sample.busy.right.c')!.children.some((c) => c.text === 'invoke worker as w1'), 'an invoked actor with its id');
  t.notOk(all(svg, (e) => e.attrs['data-initial-of'] === 'sample.busy').length, 'a parallel state has no initial dot: all its regions are entered');
});

const counterexample: Counterexample = {
  property: 'waiterDeadline',
  message: 'a waiter for c1 is still waiting after its deadline',
  participants: ['client', 'connectionMap', 'guest'],
  steps: [
    { from: 'client', to: 'connectionMap', label: 'LOOKUP c1' },
    { from: 'guest', to: 'connectionMap', label: 'LINK_DOWN link1' },
    { from: 'connectionMap', to: 'connectionMap', label: 'clock +600 ms' },
  ],
  text: '1. client -> connectionMap: LOOKUP c1\n2. guest -> connectionMap: LINK_DOWN link1\n3. connectionMap -> connectionMap: clock +600 ms',
  mermaid: 'sequenceDiagram\n  client->>connectionMap: LOOKUP c1',
};

t.test('a counterexample renders as a sequence diagram: a lifeline per participant, numbered steps, a loop for a self-message', async (t) => {
  const svg = parseXml(t, sequenceSvg(counterexample));
  t.same(all(svg, (e) => 'data-participant' in e.attrs).map((e) => e.attrs['data-participant']), counterexample.participants);
  const steps = all(svg, (e) => 'data-step' in e.attrs);
  t.same(steps.map((s) => s.text), ['1. LOOKUP c1', '2. LINK_DOWN link1', '3. clock +600 ms']);
  t.equal(steps[0]!.children[0]!.tag, 'line', 'a message between two participants is a line');
  t.equal(steps[2]!.children[0]!.tag, 'path', 'a self-message is a loop');
  const x = (name: string) => Number(all(svg, (e) => e.attrs['data-participant'] === name)[0]!.children.find((c) => c.tag === 'line')!.attrs.x1);
  const arrow = steps[1]!.children[0]!.attrs;
  t.same([Number(arrow.x1), Number(arrow.x2)], [x('guest'), x('connectionMap')], 'step 2 runs from the guest lifeline to the connection map lifeline');
});

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-viz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('viz --out writes one SVG per machine and an index.html linking them', async (t) => {
  const out = join(tempDir(t), 'out');
  const state = tempDir(t);
  await vizCommand(['--out', out, '--state', state]);
  const ids = Object.values(machines).map((m) => m.id);
  t.same(readdirSync(out).sort(), [...ids.map((id) => `${id}.svg`), 'index.html'].sort());
  const index = readFileSync(join(out, 'index.html'), 'utf8');
  for (const id of ids) t.match(index, `href="${id}.svg"`, `index.html links ${id}.svg`);
  t.match(index, `No <code>tether check</code> report in ${state}`, 'and says there is no check report yet');
});

t.test("viz --out shows the last check report: its properties, the counterexample's sequence diagram, text and Mermaid source", async (t) => {
  const out = tempDir(t);
  const state = tempDir(t);
  const report: CheckReport = {
    scenario: 'default',
    states: 1234,
    transitions: 5678,
    depth: 21,
    seconds: 2.5,
    statesPerSecond: 493,
    truncated: false,
    properties: [
      { name: 'waiterDeadline', description: 'no waiter outlives its deadline', held: false, checked: true, message: 'c1 waited past 500 ms' },
      { name: 'routing', description: 'a channel reaches the container asked for', held: true, checked: true },
      { name: 'exitStatus', description: "every exit status reaches the appliance", held: true, checked: false },
    ],
    counterexample,
    at: '2026-11-29T12:00:00.000Z',
  };
  writeLastReport(state, report);
  await vizCommand(['--out', out, '--state', state]);
  const index = readFileSync(join(out, 'index.html'), 'utf8');
  t.match(index, '1234 states, 5678 transitions');
  t.match(index, '<td class="violated">violated: c1 waited past 500 ms</td>');
  t.match(index, '<td class="held">held</td>');
  t.match(index, '<td class="unchecked">not proven');
  t.match(index, 'sequenceDiagram\n  client-&#62;&#62;connectionMap: LOOKUP c1', 'the Mermaid source, escaped');
  t.match(index, '1. client -&#62; connectionMap: LOOKUP c1', 'the trace as text');
  t.match(index, 'data-step="3"', 'the sequence diagram, inline');
  t.ok(existsSync(join(out, 'counterexample.svg')), 'and as its own file');
});

t.test('viz refuses bad flags and an unwritable directory, saying what was asked and what went wrong', async (t) => {
  const file = join(tempDir(t), 'a-file');
  writeFileSync(file, '');
  await t.rejects(vizCommand(['--bogus']), { message: /Unknown option '--bogus'\nusage: tether viz --out DIR/ });
  await t.rejects(vizCommand([]), { message: /--out DIR or --serve is required/ });
  await t.rejects(vizCommand(['--out']), { message: /Option '--out <value>' argument missing/ });
  await t.rejects(vizCommand(['--out', file, '--serve']), { message: /--out and --serve do not go together/ });
  await t.rejects(vizCommand(['--out', file, '--port', '1']), { message: /--port only goes with --serve/ });
  await t.rejects(vizCommand(['--serve', '--port', 'eighty']), { message: /--port eighty: expected a port number/ });
  await t.rejects(vizCommand(['--serve', '--appliance', 'http://x']), { message: /--appliance http:\/\/x: expected tcp:\/\/HOST:PORT/ });
  await t.rejects(vizCommand(['--out', join(file, 'sub')]), { message: new RegExp(`cannot write the diagrams to ${join(file, 'sub')}: ENOTDIR`) });
  const corrupt = tempDir(t);
  mkdirSync(corrupt, { recursive: true });
  writeFileSync(join(corrupt, 'last-check.json'), '{');
  await t.rejects(vizCommand(['--out', tempDir(t), '--state', corrupt]), { message: new RegExp(`cannot read the last tether check report in ${corrupt}`) });
});
