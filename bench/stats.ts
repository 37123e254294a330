/**
 * Summaries and formatting for benchmark samples. The machine is shared and
 * noisy, so benchmarks report medians and ratios against a peer measured in
 * the same run rather than trusting any single absolute time.
 */

/** Linear interpolation between closest ranks (the common "type 7" quantile). */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) throw new RangeError('no samples');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const sorted = [...samples].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

export function p90(samples: readonly number[]): number {
  return quantile(samples, 0.9);
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) throw new RangeError('no samples');
  return samples.reduce((sum, x) => sum + x, 0) / samples.length;
}

/**
 * A transfer's rate from its first chunk to its last: whatever came before
 * the first byte (a handshake, a boot) is not transfer, and the first chunk
 * itself arrived at the start, so it is not counted.
 */
export class TransferClock {
  received = 0;
  #first = 0;
  #firstLength = 0;
  #last = 0;

  chunk(length: number): void {
    this.#last = performance.now();
    if (this.received === 0) {
      this.#first = this.#last;
      this.#firstLength = length;
    }
    this.received += length;
  }

  /** Bytes/s; fails naming `what` when everything came in one read. */
  bytesPerSecond(what: string): number {
    if (this.#last === this.#first) throw new Error(`${what}: ${this.received} bytes came in one read, too few to time`);
    return ((this.received - this.#firstLength) * 1000) / (this.#last - this.#first);
  }
}

const BYTE_UNITS = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];

export function formatBytesPerSecond(bytesPerSecond: number): string {
  let value = bytesPerSecond;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

export function formatMs(ms: number): string {
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

/** How many times `a` is `b`, e.g. tether's time over OpenSSH's: `1.23×`. */
export function ratio(a: number, b: number): string {
  if (!(b > 0)) throw new RangeError(`cannot take a ratio to ${b}`);
  return `${(a / b).toFixed(2)}×`;
}
