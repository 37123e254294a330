import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where a built file of dist/ is: beside the running bundle when tether
 * runs from dist/, or in the repository's dist/ when it runs from source
 * (tests, tsx).
 */
export function bundlePath(name: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === 'dist' ? join(here, name) : join(here, '..', 'dist', name);
}
