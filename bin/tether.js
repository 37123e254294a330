#!/usr/bin/env node
// The `tether` command. It runs the bundled CLI, rebuilding the bundles first
// when the sources are newer (a fresh clone after `npm ci`, or a developer's edit).
import { createRequire } from 'node:module';
import { buildAll, isStale } from '../tools/build.mjs';

if (isStale()) await buildAll();
createRequire(import.meta.url)('../dist/tether.cjs');
