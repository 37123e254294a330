/**
 * Linux x86-64 signal names and numbers. Names travel without the "SIG"
 * prefix (the SSH `signal` channel request, `stopSignal` in the guest config,
 * exit reports) and numbers make exit codes (128 + n), so both directions
 * live here as one pure table.
 *
 * Real-time signals use glibc's numbering, as Docker does: RTMIN is 34
 * because glibc reserves 32 and 33 for its threads, and those two have no
 * name.
 */

const STANDARD: Readonly<Record<string, number>> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, BUS: 7, FPE: 8,
  KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15,
  STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22,
  URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29,
  PWR: 30, SYS: 31,
};

/** Other spellings accepted on input; output always uses the names above. */
const ALIASES: Readonly<Record<string, string>> = { IOT: 'ABRT', POLL: 'IO', CLD: 'CHLD' };

export const RTMIN = 34;
export const RTMAX = 64;

const NAMES: readonly (string | undefined)[] = (() => {
  const names: (string | undefined)[] = [];
  for (const [name, n] of Object.entries(STANDARD)) names[n] = name;
  // Docker's naming: RTMIN, RTMIN+1..RTMIN+15, then RTMAX-14..RTMAX-1, RTMAX.
  for (let n = RTMIN; n <= RTMAX; n++) {
    const k = n - RTMIN;
    names[n] = k === 0 ? 'RTMIN' : n === RTMAX ? 'RTMAX' : k <= 15 ? `RTMIN+${k}` : `RTMAX-${RTMAX - n}`;
  }
  return names;
})();

/** The canonical name (no "SIG") of signal number `n`, if it has one. */
export function signalName(n: number): string | undefined {
  return Number.isInteger(n) ? NAMES[n] : undefined;
}

/** The number of a canonical signal name (as returned by `parseSignal`). */
export function signalNumber(name: string): number | undefined {
  const n = STANDARD[name];
  if (n !== undefined) return n;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d{1,2}))?$/.exec(name);
  if (rt === null) return undefined;
  const base = rt[1] === 'MIN' ? RTMIN : RTMAX;
  const offset = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '+' ? 1 : -1);
  // RTMIN-n and RTMAX+n are outside the range and not spellings anyone uses.
  if ((rt[1] === 'MIN' && offset < 0) || (rt[1] === 'MAX' && offset > 0)) return undefined;
  const n2 = base + offset;
  return n2 >= RTMIN && n2 <= RTMAX ? n2 : undefined;
}

/**
 * Normalises what a user may write ("TERM", "SIGTERM", "term", "15",
 * "RTMIN+3", "SIGRTMAX-1") to the canonical name, or undefined when it names
 * no signal. RT offsets are normalised too ("RTMIN+20" becomes "RTMAX-10").
 */
export function parseSignal(text: string): string | undefined {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) return signalName(Number(t));
  const bare = t.startsWith('SIG') ? t.slice(3) : t;
  const name = ALIASES[bare] ?? bare;
  const n = signalNumber(name);
  return n === undefined ? undefined : signalName(n);
}

/** The exit status of a process killed by `name`: 128 + its number, as shells and Docker report it. */
export function signalExitCode(name: string): number {
  return 128 + (signalNumber(name) ?? 0);
}
