/**
 * Detach keys: the byte sequence in a client's stdin that means "leave the
 * process running and let me go". Written the way Docker writes them
 * (`ctrl-p,ctrl-q`, `ctrl-a,x`, `DEL`).
 */
import { ApiError } from './errors.ts';

/** ctrl-p, ctrl-q: Docker's default. */
export const DEFAULT_DETACH_KEYS: Uint8Array = Uint8Array.of(16, 17);

const CTRL_KEY = /^ctrl-([@a-z[\\\]^_])$/;

/** Parses Docker's notation (moby/term ToBytes); absent or empty means the default. */
export function parseDetachKeys(spec: string | null): Uint8Array {
  if (spec === null || spec === '') return DEFAULT_DETACH_KEYS;
  return Uint8Array.from(spec.split(','), (key) => keyCode(key, spec));
}

function keyCode(key: string, spec: string): number {
  if (key.length === 1 && key.charCodeAt(0) < 0x80) return key.charCodeAt(0);
  if (key === 'DEL') return 0x7f;
  const ctrl = CTRL_KEY.exec(key);
  // ctrl-<c> is <c> with bit 6 cleared: ctrl-@ 0, ctrl-a 1 ... ctrl-_ 31.
  if (ctrl) return ctrl[1]!.toUpperCase().charCodeAt(0) & 0x1f;
  throw new ApiError(400, `Invalid detach keys (${spec}) provided: unknown key ${JSON.stringify(key)}`);
}

/**
 * Watches a byte stream for the detach sequence across chunk boundaries.
 * Bytes that might begin the sequence are held back until it either
 * completes (they are dropped, with everything after them) or stops matching
 * (they are forwarded after all).
 */
export class DetachKeyScanner {
  /** How many leading bytes of the sequence are being held back. */
  #held = 0;

  constructor(private readonly keys: Uint8Array) {}

  scan(chunk: Uint8Array): { forward: Buffer; detached: boolean } {
    const forward: Uint8Array[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.#held === 0) {
        // Nothing held: pass through everything up to the next possible start in one piece.
        const start = chunk.indexOf(this.keys[0]!, i);
        const end = start === -1 ? chunk.length : start;
        if (end > i) forward.push(chunk.subarray(i, end));
        if (start === -1) break;
        this.#held = 1;
        i = start + 1;
      } else {
        forward.push(this.#advance(chunk[i]!));
        i++;
      }
      if (this.#held === this.keys.length) {
        this.#held = 0;
        return { forward: Buffer.concat(forward), detached: true };
      }
    }
    return { forward: Buffer.concat(forward), detached: false };
  }

  /** At the end of the stream the held bytes can no longer complete the sequence. */
  flush(): Buffer {
    const held = Buffer.from(this.keys.subarray(0, this.#held));
    this.#held = 0;
    return held;
  }

  /**
   * Extends the held prefix by one byte; while that is no longer a prefix of
   * the sequence, releases bytes from its front (a later start may still
   * match, as in ctrl-p ctrl-p ctrl-q). Returns the released bytes.
   */
  #advance(byte: number): Uint8Array {
    const candidate = Uint8Array.of(...this.keys.subarray(0, this.#held), byte);
    let released = 0;
    while (!this.#isPrefix(candidate.subarray(released))) released++;
    this.#held = candidate.length - released;
    return candidate.subarray(0, released);
  }

  #isPrefix(bytes: Uint8Array): boolean {
    return bytes.every((byte, index) => this.keys[index] === byte);
  }
}
