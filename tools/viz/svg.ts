/**
 * A laid-out machine as SVG. Styling is in presentation attributes, so a file
 * opened on its own looks right and a page's CSS (the live view's
 * highlighting) still wins over it. Each state's group carries
 * `data-state="<machine>.<path>"` and holds its children's groups, so a page
 * finds any state by that attribute.
 */
import { DOT_SIZE, FINAL_INSET, type MachineLayout, type PlacedArrow, type PlacedBox, type Point, PADDING, TITLE_HEIGHT } from './layout.ts';
import { escapeXml, FONT_FAMILY, FONT_SIZE, LINE_HEIGHT, num } from './text.ts';

const INK = '#3a3a3a';
const RADIUS = 8;
/** From the top of a line of text to its baseline. */
const BASELINE = 12;

export function machineSvg(layout: MachineLayout): string {
  const marker = `arrow-${layout.machine}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="machine" data-machine="${escapeXml(layout.machine)}" width="${num(layout.width)}" height="${num(layout.height)}" viewBox="0 0 ${num(layout.width)} ${num(layout.height)}" font-family="${escapeXml(FONT_FAMILY)}" font-size="${FONT_SIZE}" fill="${INK}">`,
    `<title>${escapeXml(layout.machine)}</title>`,
    // One marker per machine: several diagrams share one page, and ids must not collide there.
    `<defs><marker id="${escapeXml(marker)}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${INK}"/></marker></defs>`,
    stateGroup(layout.root, layout.initials),
    ...layout.arrows.map((arrow) => arrowGroup(arrow, marker)),
    '</svg>',
  ].join('\n');
}

function stateGroup(placed: PlacedBox, initials: MachineLayout['initials']): string {
  const { box, x, y, width, height } = placed;
  const compound = placed.children.length > 0;
  const dashed = box.region ? ' stroke-dasharray="6 4"' : '';
  const parts = [`<g class="state state-${box.kind}" data-state="${escapeXml(box.id)}">`];
  parts.push(`<rect class="state-border" x="${num(x)}" y="${num(y)}" width="${num(width)}" height="${num(height)}" rx="${RADIUS}" fill="#ffffff" stroke="${INK}" stroke-width="1.2"${dashed}/>`);
  if (box.kind === 'final') {
    const inset = FINAL_INSET;
    parts.push(`<rect class="state-final" x="${num(x + inset)}" y="${num(y + inset)}" width="${num(width - 2 * inset)}" height="${num(height - 2 * inset)}" rx="${RADIUS - 2}" fill="none" stroke="${INK}" stroke-width="1.2"/>`);
  }
  const top = y + (box.kind === 'final' ? FINAL_INSET : 0);
  if (compound) parts.push(titleBar(x, y, width, dashed));
  parts.push(`<text class="state-name" x="${num(x + PADDING)}" y="${num(top + 4 + BASELINE)}" font-weight="bold">${escapeXml(box.name)}</text>`);
  if (!compound && box.lines.length) parts.push(`<path d="M${num(x)},${num(top + TITLE_HEIGHT)} H${num(x + width)}" stroke="#cccccc"/>`);
  box.lines.forEach((line, i) => {
    parts.push(`<text class="state-line" x="${num(x + PADDING)}" y="${num(top + TITLE_HEIGHT + i * LINE_HEIGHT + BASELINE)}" fill="#555555">${escapeXml(line)}</text>`);
  });
  const dot = initials.get(box.id);
  if (dot) parts.push(`<circle class="initial" data-initial-of="${escapeXml(box.id)}" cx="${num(dot.x)}" cy="${num(dot.y)}" r="${DOT_SIZE / 2}" fill="${INK}"/>`);
  for (const child of placed.children) parts.push(stateGroup(child, initials));
  parts.push('</g>');
  return parts.join('\n');
}

/** The shaded band behind a compound state's name, rounded at the top like its border. */
function titleBar(x: number, y: number, width: number, dashed: string): string {
  const bottom = y + TITLE_HEIGHT;
  const d = `M${num(x)},${num(bottom)} V${num(y + RADIUS)} Q${num(x)},${num(y)} ${num(x + RADIUS)},${num(y)} H${num(x + width - RADIUS)} Q${num(x + width)},${num(y)} ${num(x + width)},${num(y + RADIUS)} V${num(bottom)} Z`;
  return `<path class="state-title" d="${d}" fill="#e8edf5" stroke="${INK}" stroke-width="1.2"${dashed}/>`;
}

function arrowGroup(placed: PlacedArrow, marker: string): string {
  const line = `<polyline points="${placed.points.map(pair).join(' ')}" fill="none" stroke="${INK}" stroke-width="1.2" marker-end="url(#${escapeXml(marker)})"/>`;
  const { arrow, label } = placed;
  if (!arrow) return `<g class="initial-arrow">${line}</g>`;
  const parts = [`<g class="transition" data-source="${escapeXml(arrow.source)}" data-target="${escapeXml(arrow.target)}">`, line];
  if (label) {
    parts.push(`<rect x="${num(label.x)}" y="${num(label.y)}" width="${num(label.width)}" height="${num(label.height)}" fill="#ffffff" fill-opacity="0.85"/>`);
    parts.push(`<text class="transition-label" x="${num(label.x + 2)}" y="${num(label.y + BASELINE)}">${escapeXml(arrow.label)}</text>`);
  }
  parts.push('</g>');
  return parts.join('\n');
}

function pair(point: Point): string {
  return `${num(point.x)},${num(point.y)}`;
}

