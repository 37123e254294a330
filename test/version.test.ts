import { readFileSync } from 'node:fs';
import t from 'tap';
import { VERSION } from '../appliance/version.ts';

t.test('the version docker version shows is the package version', async (t) => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, manifest.version);
});
