/**
 * Docker's `filters` query parameter: JSON mapping a filter name to its
 * values, either `{"name": {"web": true}}` (current clients) or
 * `{"name": ["web"]}` (older ones). Values of one name are alternatives;
 * different names must all hold.
 */
import { ApiError } from './errors.ts';

export type Filters = ReadonlyMap<string, readonly string[]>;

export function parseFilters(raw: string | null, accepted: readonly string[]): Filters {
  const filters = new Map<string, string[]>();
  if (raw === null || raw === '') return filters;

  let document: unknown;
  try {
    document = JSON.parse(raw);
  } catch (error) {
    throw new ApiError(400, `invalid filters parameter ${JSON.stringify(raw)}: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw new ApiError(400, `invalid filters parameter ${JSON.stringify(raw)}: not a JSON object`);

  for (const [name, values] of Object.entries(document)) {
    if (!accepted.includes(name)) throw new ApiError(400, `invalid filter '${name}'`);
    filters.set(name, filterValues(name, values));
  }
  return filters;
}

function filterValues(name: string, values: unknown): string[] {
  if (Array.isArray(values) && values.every((value) => typeof value === 'string')) return values;
  if (isObject(values)) return Object.keys(values).filter((value) => values[value] === true);
  throw new ApiError(400, `invalid filter '${name}': values must be a list of strings or an object of booleans`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Docker's Args.Match: an exact value, or an unanchored regular expression
 * (so an ID prefix matches); a value that is not a valid expression only
 * matches exactly.
 */
export function matchesAny(values: readonly string[], subject: string): boolean {
  return values.some((value) => value === subject || safeRegExp(value)?.test(subject) === true);
}

function safeRegExp(source: string): RegExp | undefined {
  try {
    return new RegExp(source);
  } catch {
    return undefined;
  }
}
