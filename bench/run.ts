/**
 * Entry of `npm run bench -- NAME [args...]`: runs the default export of
 * bench/NAME.ts. A benchmark is any module here whose default export is a
 * function; helpers (stats, this file) have none, so listing finds them out.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Benchmark = (args: string[]) => Promise<void>;
interface BenchModule {
  default?: unknown;
  description?: unknown;
}

const here = dirname(fileURLToPath(import.meta.url));

function load(name: string): Promise<BenchModule> {
  return import(pathToFileURL(join(here, `${name}.ts`)).href) as Promise<BenchModule>;
}

async function names(): Promise<string[]> {
  return (await readdir(here))
    .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
    .map((file) => file.slice(0, -'.ts'.length))
    .sort();
}

async function list(): Promise<string> {
  const lines: string[] = [];
  for (const name of await names()) {
    const mod = await load(name);
    if (typeof mod.default !== 'function') continue;
    lines.push(typeof mod.description === 'string' ? `  ${name.padEnd(14)} ${mod.description}` : `  ${name}`);
  }
  return `usage: npm run bench -- NAME [args...]\nbenchmarks:\n${lines.join('\n')}`;
}

async function main([name, ...args]: string[]): Promise<number> {
  if (!name) {
    console.error(`no benchmark named\n${await list()}`);
    return 2;
  }
  // NAME is looked up among bench/'s own files, so it can never reach a path elsewhere.
  const mod = (await names()).includes(name) ? await load(name) : undefined;
  if (typeof mod?.default !== 'function') {
    console.error(`unknown benchmark "${name}"\n${await list()}`);
    return 2;
  }
  await (mod.default as Benchmark)(args);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
