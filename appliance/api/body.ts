import type { Readable } from 'node:stream';
import { ApiError } from './errors.ts';

/** Larger than any create, exec or start body the docker CLI sends. */
const MAX_JSON_BODY = 1024 * 1024;

/** A request's JSON body (none, or only white space: an empty object); Docker's 400 naming `what` otherwise. */
export async function readJsonBody(body: Readable | undefined, what: string): Promise<unknown> {
  if (!body) return {};
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BODY) throw new ApiError(400, `${what}: the body is over ${MAX_JSON_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `${what}: the body is not JSON: ${(err as Error).message}`);
  }
}
