/**
 * Text in the SVGs: one monospace font, so a label's width can be known
 * without a browser (ELK needs every label's size before it lays out).
 */

export const FONT_FAMILY = "'DejaVu Sans Mono', Menlo, Consolas, monospace";
export const FONT_SIZE = 12;
/** Advance of one character at FONT_SIZE; DejaVu Sans Mono's is 0.602 em, rounded up for other monospace fonts. */
const CHAR_WIDTH = 7.4;
export const LINE_HEIGHT = 16;

export function textWidth(text: string): number {
  return Math.ceil([...text].length * CHAR_WIDTH);
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Coordinates rounded to what a screen can show, so the SVG text stays small. */
export function num(value: number): string {
  return String(Math.round(value * 10) / 10);
}
