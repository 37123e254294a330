/**
 * A counterexample of `tether check` as a sequence diagram: one lifeline per
 * participant, left to right, and one numbered arrow per step, top to bottom;
 * a step from a participant to itself is a loop on its lifeline.
 */
import type { Counterexample } from '../check/report.ts';
import { escapeXml, FONT_FAMILY, FONT_SIZE, num, textWidth } from './text.ts';

const MARGIN = 16;
const HEAD_HEIGHT = 28;
const STEP = 34;
const SELF_STEP = 46;
const LOOP_WIDTH = 28;
const LOOP_HEIGHT = 16;
const INK = '#3a3a3a';

export function sequenceSvg(trace: Pick<Counterexample, 'participants' | 'steps'>): string {
  // A step naming someone the participants leave out still gets a lifeline, at the right.
  const participants = [...new Set([...trace.participants, ...trace.steps.flatMap((s) => [s.from, s.to])])];
  const labels = trace.steps.map((step, i) => `${i + 1}. ${step.label}`);
  const crossing = labels.filter((_, i) => trace.steps[i]!.from !== trace.steps[i]!.to);
  const looping = labels.filter((_, i) => trace.steps[i]!.from === trace.steps[i]!.to);
  const headWidth = Math.max(...participants.map(textWidth)) + 20;
  const gap = Math.max(140, headWidth + 24, ...crossing.map((l) => textWidth(l) + 24));
  const x = new Map(participants.map((p, i) => [p, MARGIN + headWidth / 2 + i * gap]));
  // Room right of the last lifeline for a loop there and its label.
  const right = Math.max(headWidth / 2, ...looping.map((l) => LOOP_WIDTH + 8 + textWidth(l)));

  const parts: string[] = [];
  let y = MARGIN + HEAD_HEIGHT + 24;
  trace.steps.forEach((step, i) => {
    const from = x.get(step.from)!;
    const to = x.get(step.to)!;
    const label = escapeXml(labels[i]!);
    parts.push(`<g class="step" data-step="${i + 1}">`);
    if (from === to) {
      parts.push(`<path d="M${num(from)},${num(y)} H${num(from + LOOP_WIDTH)} V${num(y + LOOP_HEIGHT)} H${num(from)}" fill="none" stroke="${INK}" stroke-width="1.2" marker-end="url(#sequence-arrow)"/>`);
      parts.push(`<text x="${num(from + LOOP_WIDTH + 6)}" y="${num(y + LOOP_HEIGHT / 2 + 4)}">${label}</text>`);
      y += SELF_STEP;
    } else {
      parts.push(`<line x1="${num(from)}" y1="${num(y)}" x2="${num(to)}" y2="${num(y)}" stroke="${INK}" stroke-width="1.2" marker-end="url(#sequence-arrow)"/>`);
      parts.push(`<text x="${num((from + to) / 2)}" y="${num(y - 6)}" text-anchor="middle" stroke="#ffffff" stroke-width="4" paint-order="stroke">${label}</text>`);
      y += STEP;
    }
    parts.push('</g>');
  });

  const bottom = y;
  const width = MARGIN + headWidth / 2 + (participants.length - 1) * gap + right + MARGIN;
  const height = bottom + MARGIN;
  const lifelines = participants.map((p) => {
    const cx = x.get(p)!;
    return [
      `<g class="participant" data-participant="${escapeXml(p)}">`,
      `<line x1="${num(cx)}" y1="${MARGIN + HEAD_HEIGHT}" x2="${num(cx)}" y2="${num(bottom)}" stroke="#999999" stroke-dasharray="4 4"/>`,
      `<rect x="${num(cx - headWidth / 2)}" y="${MARGIN}" width="${num(headWidth)}" height="${HEAD_HEIGHT}" rx="4" fill="#e8edf5" stroke="${INK}"/>`,
      `<text x="${num(cx)}" y="${MARGIN + 18}" text-anchor="middle" font-weight="bold">${escapeXml(p)}</text>`,
      '</g>',
    ].join('\n');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="sequence" width="${num(width)}" height="${num(height)}" viewBox="0 0 ${num(width)} ${num(height)}" font-family="${escapeXml(FONT_FAMILY)}" font-size="${FONT_SIZE}" fill="${INK}">`,
    `<defs><marker id="sequence-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${INK}"/></marker></defs>`,
    ...lifelines,
    ...parts,
    '</svg>',
  ].join('\n');
}
