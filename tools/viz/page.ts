/**
 * The visualizer's HTML: the index `--out` writes beside the SVG files, and
 * the live page `--serve` serves with the diagrams inline (so its script can
 * mark their states). Both show the last `tether check` report when there is
 * one. Self-contained: no stylesheet, script or font is fetched.
 */
import type { CheckReport, PropertyResult } from '../check/report.ts';
import { clientScript } from './client.ts';
import type { Diagram } from './diagrams.ts';
import { sequenceSvg } from './sequence.ts';
import { escapeXml as esc } from './text.ts';

export const COUNTEREXAMPLE_FILE = 'counterexample.svg';

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 1rem 2rem; color: #222; }
h2 { margin-top: 2rem; }
nav a { margin-right: 1rem; }
.diagram { overflow: auto; border: 1px solid #ddd; padding: 0.5rem; }
pre { background: #f6f6f6; padding: 0.5rem; overflow: auto; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; }
.violated { color: #b00020; font-weight: bold; }
.status { padding: 0.4rem 0.7rem; border-radius: 4px; background: #eee; }
.status.reachable { background: #e3f6e3; }
.status.unreachable { background: #fde2e2; }
.count { font-size: 0.8em; color: #666; font-weight: normal; margin-left: 0.5rem; }
section.live .count { color: #d9480f; }
.actors { list-style: none; padding: 0; font-family: monospace; }
.actor button { font-family: monospace; }
.actor.shown button { font-weight: bold; border-color: #d9480f; }
[data-state].active > .state-border, [data-state].active > .state-title { stroke: #d9480f; stroke-width: 3; }
[data-state].active > .state-border { fill: #fff4e6; }
`;

function document(title: string, body: string[]): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(title)}</title>`,
    // No favicon request: the page fetches nothing it does not carry.
    '<link rel="icon" href="data:,">',
    `<style>${STYLE}</style>`,
    '</head><body>',
    `<h1>${esc(title)}</h1>`,
    ...body,
    '</body></html>',
    '',
  ].join('\n');
}

function nav(diagrams: Diagram[], href: (machine: string) => string): string {
  return `<nav>${diagrams.map((d) => `<a href="${esc(href(d.machine))}">${esc(d.machine)}</a>`).join(' ')}</nav>`;
}

/** The page `--out` writes: every machine's SVG, linked and shown. */
export function indexPage(diagrams: Diagram[], report: CheckReport | undefined, stateDir: string): string {
  return document('tether state machines', [
    nav(diagrams, (m) => `#${m}`),
    ...diagrams.map((d) =>
      [
        `<section class="machine" id="${esc(d.machine)}" data-machine="${esc(d.machine)}">`,
        `<h2><a href="${esc(d.machine)}.svg">${esc(d.machine)}</a></h2>`,
        `<div class="diagram"><img src="${esc(d.machine)}.svg" alt="state diagram of ${esc(d.machine)}"></div>`,
        '</section>',
      ].join('\n'),
    ),
    checkSection(report, stateDir, `<p><a href="${COUNTEREXAMPLE_FILE}">${COUNTEREXAMPLE_FILE}</a></p>`),
  ]);
}

/** The page `--serve` serves: the diagrams inline, each with its live actors. */
export function livePage(diagrams: Diagram[], report: CheckReport | undefined, stateDir: string, appliance: string): string {
  return document('tether live state', [
    `<p id="status" class="status">connecting to the appliance at ${esc(appliance)}…</p>`,
    nav(diagrams, (m) => `#${m}`),
    ...diagrams.map((d) =>
      [
        `<section class="machine" id="${esc(d.machine)}" data-machine="${esc(d.machine)}">`,
        `<h2>${esc(d.machine)}<span class="count">no live actor</span></h2>`,
        '<ul class="actors"></ul>',
        `<div class="diagram">${d.svg}</div>`,
        '</section>',
      ].join('\n'),
    ),
    checkSection(report, stateDir, ''),
    `<script>${clientScript}</script>`,
  ]);
}

/** The last `tether check`: its figures, its properties, and its counterexample as a sequence diagram, text and Mermaid. */
function checkSection(report: CheckReport | undefined, stateDir: string, counterexampleLink: string): string {
  if (!report) return `<section id="check"><h2>Last model check</h2><p>No <code>tether check</code> report in ${esc(stateDir)} yet.</p></section>`;
  const figures = `${report.states} states, ${report.transitions} transitions, depth ${report.depth}, ${report.seconds} s (${report.statesPerSecond} states/s)`;
  const parts = [
    '<section id="check"><h2>Last model check</h2>',
    `<p>Scenario <code>${esc(report.scenario)}</code> at ${esc(report.at)}: ${esc(figures)}${report.truncated ? ', stopped at the scenario\'s bound' : ''}.</p>`,
    '<table><tr><th>property</th><th>what it says</th><th>result</th></tr>',
    ...report.properties.map((p) => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.description)}</td>${result(p)}</tr>`),
    '</table>',
  ];
  const trace = report.counterexample;
  if (trace) {
    parts.push(
      `<h3 id="counterexample">Counterexample: <code>${esc(trace.property)}</code></h3>`,
      `<p>${esc(trace.message)}</p>`,
      `<div class="diagram">${sequenceSvg(trace)}</div>`,
      counterexampleLink,
      '<h4>As text</h4>',
      `<pre>${esc(trace.text)}</pre>`,
      '<h4>Mermaid</h4>',
      `<pre class="mermaid-source">${esc(trace.mermaid)}</pre>`,
    );
  }
  parts.push('</section>');
  return parts.join('\n');
}

function result(p: PropertyResult): string {
  if (!p.held) return `<td class="violated">violated${p.message ? `: ${esc(p.message)}` : ''}</td>`;
  return p.checked ? '<td class="held">held</td>' : '<td class="unchecked">not proven: the search stopped first</td>';
}
