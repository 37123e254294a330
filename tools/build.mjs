// Builds the bundles: dist/guest.cjs (the guest init, PID 1 in a containerVM),
// dist/appliance.cjs (the appliance service), dist/monitor.cjs (each
// containerVM's monitor) and dist/tether.cjs (the CLI); and dist/confine,
// the static program each container process is started through (guest/confine.c).
// Native addons cannot be bundled; they are copied, with what they need at
// run time, into dist/node_modules so dist/ is self-contained (the guest image
// builder ships exactly this directory).
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const nativePackages = ['koffi', '@lydell/node-pty', '@serialport/bindings-cpp'];
// Optional native accelerators that ssh2 probes for inside try/catch.
const optionalNative = ['cpu-features', './crypto/build/Release/sshcrypto.node'];
const sourceDirs = ['machines', 'actors', 'shared', 'guest', 'appliance', 'tools'];

export const entries = {
  guest: 'guest/main.ts',
  appliance: 'appliance/service.ts',
  monitor: 'appliance/monitorMain.ts',
  tether: 'tools/cli.ts',
  // The model checker's worker threads (tools/check/search/owners.ts), beside the CLI's bundle.
  checkWorker: 'tools/check/search/worker.ts',
};

/** Newest modification time under the source folders and package.json. */
function newestSource() {
  let newest = statSync(join(root, 'package.json')).mtimeMs;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of sourceDirs) if (existsSync(join(root, dir))) walk(join(root, dir));
  return newest;
}

export function isStale() {
  const stamp = join(dist, '.built');
  return !existsSync(stamp) || statSync(stamp).mtimeMs < newestSource();
}

/** Copies a package and its run-time dependencies into dist/node_modules. */
function ship(name, seen = new Set()) {
  if (seen.has(name)) return;
  seen.add(name);
  const from = join(root, 'node_modules', name);
  if (!existsSync(from)) return;
  cpSync(from, join(dist, 'node_modules', name), { recursive: true, dereference: true });
  const manifest = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
  const deps = { ...manifest.dependencies, ...manifest.optionalDependencies };
  for (const dep of Object.keys(deps)) if (dep !== 'node-addon-api') ship(dep, seen);
}

export async function buildAll() {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  await Promise.all(
    Object.entries(entries).map(([name, entry]) =>
      build({
        entryPoints: [join(root, entry)],
        outfile: join(dist, `${name}.cjs`),
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        sourcemap: 'linked',
        external: [...nativePackages, ...optionalNative],
        logLevel: 'warning',
        // Sources are ES modules; the bundle is CommonJS so the native addons'
        // loaders (require-based) work unchanged.
        define: { 'import.meta.url': 'importMetaUrl' },
        banner: { js: 'const importMetaUrl = require("url").pathToFileURL(__filename).href;' },
      }),
    ),
  );
  const seen = new Set();
  for (const name of nativePackages) ship(name, seen);
  // ssh2's native crypto (AES-GCM without a cipher object per packet) is
  // required relative to the bundle; without it ssh2 falls back to slower JS paths.
  const sshcrypto = join(root, 'node_modules', 'ssh2', 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node');
  if (existsSync(sshcrypto)) cpSync(sshcrypto, join(dist, 'crypto', 'build', 'Release', 'sshcrypto.node'));
  buildConfine();
  writeFileSync(join(dist, '.built'), new Date().toISOString() + '\n');
}

/**
 * dist/confine, linked statically: it runs inside the container's root,
 * which may have no C library at all.
 */
function buildConfine() {
  const args = ['-static', '-O2', '-Wall', '-Wextra', '-o', join(dist, 'confine'), join(root, 'guest', 'confine.c')];
  try {
    execFileSync('cc', args, { stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (error) {
    const why = error.code === 'ENOENT' ? 'no C compiler (cc) on PATH' : String(error.stderr ?? error.message).trim();
    throw new Error(`cannot build dist/confine from guest/confine.c with cc ${args.join(' ')}: ${why}\n`
      + 'It needs a C compiler and the static C library: apt-get install gcc libc6-dev');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildAll();
}
