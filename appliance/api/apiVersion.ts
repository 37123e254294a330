/**
 * The Engine API versions tether speaks. Clients negotiate down to
 * API_VERSION from the `Api-Version` header of `/_ping`, then put it in the
 * path (`/v1.45/containers/json`).
 */
import { ApiError } from './errors.ts';

/** The newest Engine API whose routes and shapes we follow (Docker 26.1). */
export const API_VERSION = '1.45';
/** The oldest Docker accepts; older clients expect behaviours we never had. */
export const MIN_API_VERSION = '1.24';

/** Docker's versions.compare: dotted numbers, missing or non-numeric parts count as 0. */
function compareVersions(a: string, b: string): number {
  const left = a.split('.');
  const right = b.split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (Number(left[i]) || 0) - (Number(right[i]) || 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

/** Rejects a requested version the way Docker's version middleware does (400, same wording). */
export function checkRequestedVersion(requested: string): void {
  if (compareVersions(requested, MIN_API_VERSION) < 0) {
    throw new ApiError(
      400,
      `client version ${requested} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  if (compareVersions(requested, API_VERSION) > 0) {
    throw new ApiError(400, `client version ${requested} is too new. Maximum supported API version is ${API_VERSION}`);
  }
}
