/**
 * An error that carries the HTTP status it should be answered with. The
 * directory throws these (404 unknown container, 409 wrong state, 504 link
 * down past its deadline); the server turns any other thrown error into a 500.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The message of anything thrown, Error or not. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function noSuchContainer(ref: string, detail?: string): ApiError {
  return new ApiError(404, `No such container: ${ref}${detail ? ` (${detail})` : ''}`);
}
