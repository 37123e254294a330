import type { Counterexample, TraceStep } from './report.ts';

/**
 * A counterexample as a sequence diagram: the participants in a fixed
 * left-to-right order (the process at the far guest end, the API client at
 * the far appliance end), the steps as text lines and as Mermaid source.
 */

const ORDER = ['process', 'guest', 'impostor', 'line', 'hypervisor', 'clock', 'appliance'];

function rank(participant: string): number {
  const at = ORDER.indexOf(participant);
  if (at >= 0) return at;
  // attach0, attach1, ... then the API client.
  return participant === 'client' ? 100 : 50 + Number(participant.replace(/\D/g, '') || 0);
}

export function sequenceDiagram(property: string, message: string, steps: TraceStep[]): Counterexample {
  const participants = [...new Set(steps.flatMap((s) => [s.from, s.to]))].sort((a, b) => rank(a) - rank(b));
  const width = String(steps.length).length;
  const text = [
    ...steps.map((s, i) => `${String(i + 1).padStart(width)}. ${s.from} → ${s.to}: ${s.label}`),
    `violated: ${property}: ${message}`,
  ].join('\n');
  const mermaid = [
    'sequenceDiagram',
    ...participants.map((p) => `  participant ${p}`),
    ...steps.map((s) => `  ${s.from}->>${s.to}: ${escape(s.label)}`),
    `  Note over ${participants[0] ?? 'guest'},${participants[participants.length - 1] ?? 'appliance'}: violated ${property}: ${escape(message)}`,
  ].join('\n');
  return { property, message, participants, steps, text, mermaid };
}

/** Mermaid ends a message at a newline and treats `;` and `#` specially. */
function escape(label: string): string {
  return label.replace(/[\n;#]/g, ' ');
}
