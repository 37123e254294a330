/**
 * The serial line's resync handshake, byte-compatible with VMware VIC's
 * pkg/serial/handshake.go. The appliance initiates, the guest responds:
 *
 *   initiator → SYN p            responder → ACK p+1 q
 *   initiator → ACK q+1          responder → PROBE (23 bytes)
 *   initiator → PROBE (echoed)   responder → ACK
 *
 * Every byte after the last handshake byte belongs to SSH. This module holds
 * the codec only: frame builders and scanners that find a frame in whatever a
 * receiver has buffered, and say which bytes can never be part of one (stale
 * line noise, so they can be dropped). Which frame to look for, and what to do
 * when one is found, is the handshake machine's business.
 */

export const SYN = 0x16;
export const ACK = 0x06;
export const NAK = 0x15;

/** The lossiness probe VIC sends: a coloured "hello world!" line. */
export const PROBE: Uint8Array = new TextEncoder().encode('\x1b[32mhello world\x1b[39m!\n');

const FLAGS = new Set([SYN, ACK, NAK]);

export const inc = (byte: number): number => (byte + 1) & 0xff;

export const synFrame = (p: number): Uint8Array => Uint8Array.of(SYN, p);
export const synAckFrame = (p: number, q: number): Uint8Array => Uint8Array.of(ACK, inc(p), q);
export const ackFrame = (q: number): Uint8Array => Uint8Array.of(ACK, inc(q));
export const FINAL_ACK: Uint8Array = Uint8Array.of(ACK);
export const NAK_FRAME: Uint8Array = Uint8Array.of(NAK);

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * A scan either finds a frame (`end` is the index just past it) or says from
 * which index the buffer must be kept because a frame may still start there;
 * everything before `keepFrom` is noise.
 */
export type Scan<F> = ({ found: true; end: number } & F) | { found: false; keepFrom: number };

/**
 * Responder, waiting for `SYN p`. The latest complete SYN in the buffer wins:
 * an initiator that retried has forgotten its earlier nonces. A SYN in the
 * last byte is not complete yet, so the SYN before it (if any) is answered;
 * the trailing SYN stays buffered and restarts the exchange once its nonce
 * arrives, unless it was that earlier SYN's nonce (a peer such as VIC may
 * pick SYN as p).
 */
export function scanSyn(buf: Uint8Array): Scan<{ p: number }> {
  const last = buf.lastIndexOf(SYN);
  if (last < 0) return { found: false, keepFrom: buf.length };
  if (last === buf.length - 1) {
    // (lastIndexOf counts a negative start from the end, hence the guard.)
    const previous = last > 0 ? buf.lastIndexOf(SYN, last - 1) : -1;
    if (previous < 0) return { found: false, keepFrom: last };
    return { found: true, p: buf[previous + 1]!, end: previous + 2 };
  }
  return { found: true, p: buf[last + 1]!, end: last + 2 };
}

/**
 * Responder, having answered with nonce q: waits for `ACK q+1`, or for a new
 * complete SYN (the initiator started over). `ACK q+1` anywhere in the buffer
 * wins: a SYN before it can only be noise, or the nonce byte of a peer that
 * picked SYN as its p, because an initiator that retried never sends `ACK q+1`.
 * An `ACK r` for another nonce is stale and skipped.
 */
export function scanAckOrSyn(buf: Uint8Array, q: number): Scan<{ frame: 'ack' | 'syn' }> {
  const want = inc(q);
  for (let i = 0; i + 1 < buf.length; i++) {
    if (buf[i] === ACK && buf[i + 1] === want) return { found: true, frame: 'ack', end: i + 2 };
  }
  const syn = scanSyn(buf);
  if (syn.found) return { found: true, frame: 'syn', end: syn.end };
  const last = buf[buf.length - 1];
  return { found: false, keepFrom: last === ACK || last === SYN ? buf.length - 1 : buf.length };
}

/** Initiator, having sent `SYN p`: waits for the first `ACK p+1 q`. */
export function scanSynAck(buf: Uint8Array, p: number): Scan<{ q: number }> {
  const want = inc(p);
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== ACK) continue;
    if (i + 1 === buf.length) return { found: false, keepFrom: i };
    if (buf[i + 1] !== want) continue;
    if (i + 2 === buf.length) return { found: false, keepFrom: i };
    return { found: true, q: buf[i + 2]!, end: i + 3 };
  }
  return { found: false, keepFrom: buf.length };
}

/** Initiator, having sent `ACK q+1`: waits for the probe, skipping anything before it. */
export function scanProbe(buf: Uint8Array): Scan<object> {
  outer: for (let i = 0; i < buf.length; i++) {
    for (let j = 0; j < PROBE.length; j++) {
      if (i + j === buf.length) return { found: false, keepFrom: i };
      if (buf[i + j] !== PROBE[j]) continue outer;
    }
    return { found: true, end: i + PROBE.length };
  }
  return { found: false, keepFrom: buf.length };
}

/**
 * Responder, having sent the probe: the next bytes must be its exact echo.
 * Unlike the other scans nothing is skipped here; this is the lossiness check.
 */
export function matchEcho(buf: Uint8Array): 'match' | 'partial' | 'mismatch' {
  const n = Math.min(buf.length, PROBE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== PROBE[i]) return 'mismatch';
  return n === PROBE.length ? 'match' : 'partial';
}

/**
 * Nonces come from a xorshift32 generator whose state travels in machine
 * context, so a machine stays deterministic given its seed.
 */
export function nextRandom(state: number): number {
  let x = state >>> 0 || 0x9e3779b9;
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/**
 * Draws the next nonce that is not `previous` (a stale answer to the previous
 * nonce must not match) and for which `acceptable` holds. Our own nonces avoid
 * flag bytes where they would make a frame ambiguous to a scanner: a SYN nonce
 * would read as the start of a newer SYN, an ACK in `p+1` as the start of an
 * ACK. Peers such as VIC may still send any value; that costs them a retry.
 */
export function drawNonce(state: number, previous: number | undefined, acceptable: (n: number) => boolean): { nonce: number; state: number } {
  let next = state;
  for (;;) {
    next = nextRandom(next);
    const nonce = next & 0xff;
    if (nonce !== previous && acceptable(nonce)) return { nonce, state: next };
  }
}

/** Initiator's p: neither p nor p+1 may be a flag byte. */
export const goodSynNonce = (p: number): boolean => !FLAGS.has(p) && !FLAGS.has(inc(p));
/** Responder's q: the initiator sends q+1 back, which must not be a flag byte. */
export const goodAckNonce = (q: number): boolean => !FLAGS.has(inc(q));
