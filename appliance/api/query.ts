/**
 * Query parameters read the way Docker's httputils does, with 400s that name
 * the parameter and the value that was sent.
 */
import { ApiError } from './errors.ts';

const FALSE_WORDS = new Set(['', '0', 'no', 'false', 'none']);

/** Docker's BoolValue: anything but empty, 0, no, false or none (any case) is true. */
export function boolParam(query: URLSearchParams, name: string): boolean {
  return !FALSE_WORDS.has((query.get(name) ?? '').trim().toLowerCase());
}

/** An integer parameter; absent or empty gives undefined. */
export function intParam(query: URLSearchParams, name: string, options: { min?: number; max?: number } = {}): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const value = /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
  const { min, max } = options;
  if (!Number.isSafeInteger(value) || (min !== undefined && value < min) || (max !== undefined && value > max)) {
    const expected =
      min !== undefined && max !== undefined ? `an integer from ${min} to ${max}` : min !== undefined ? `an integer >= ${min}` : 'an integer';
    throw new ApiError(400, `invalid value for parameter "${name}": ${JSON.stringify(raw)} is not ${expected}`);
  }
  return value;
}

export function requiredIntParam(query: URLSearchParams, name: string, options: { min?: number; max?: number } = {}): number {
  const value = intParam(query, name, options);
  if (value === undefined) throw new ApiError(400, `missing parameter "${name}"`);
  return value;
}
