/**
 * Maps `METHOD /path` to a handler, the way Docker's router does: every route
 * also answers under a `/vN.NN` prefix, a prefix outside the supported range
 * is a 400, and anything unmatched (a wrong method included) is Docker's 404
 * "page not found".
 */
import type { Readable } from 'node:stream';
import { checkRequestedVersion } from './apiVersion.ts';
import { ApiError } from './errors.ts';
import type { Reply } from './reply.ts';

export interface ApiRequest {
  /** Values of the `{name}` segments of the route's path, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The request body, for the routes that read one (`docker import`'s tarball). */
  readonly body?: Readable;
}

export type Handler = (request: ApiRequest) => Reply | Promise<Reply>;

export interface Route {
  readonly method: string;
  /** Segments in braces capture one path segment: `/containers/{id}/json`. */
  readonly path: string;
  readonly handler: Handler;
}

export interface Match {
  readonly handler: Handler;
  readonly request: ApiRequest;
}

const VERSION_PREFIX = /^\/v([0-9.]+)(?=\/)/;

export type Router = (method: string, url: string) => Match;

/** The returned function throws ApiError 400 (bad version, bad escape) or 404 (no route). */
export function createRouter(routes: readonly Route[]): Router {
  const compiled = routes.map((route) => ({ route, segments: route.path.split('/') }));
  return (method, url) => {
    const queryStart = url.indexOf('?');
    let path = queryStart === -1 ? url : url.slice(0, queryStart);
    const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));

    const version = VERSION_PREFIX.exec(path);
    if (version) {
      checkRequestedVersion(version[1]!);
      path = path.slice(version[0].length);
    }

    // Split before decoding, so an escaped slash (`%2Fname`) stays inside its segment.
    const segments = path.split('/').map(decodeSegment);
    for (const { route, segments: pattern } of compiled) {
      if (route.method !== method) continue;
      const params = matchSegments(pattern, segments);
      if (params) return { handler: route.handler, request: { params, query } };
    }
    throw new ApiError(404, 'page not found');
  };
}

function decodeSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, `malformed escape in URL path segment: ${raw}`);
  }
}

function matchSegments(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    const actual = segments[i]!;
    if (expected.startsWith('{') && expected.endsWith('}')) {
      if (actual === '') return undefined;
      params[expected.slice(1, -1)] = actual;
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}
