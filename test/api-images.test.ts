import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmbiguousImage, decompressionOption, HOST_IMAGE, type ImageRecord, normalizeTag, planRemoval, resolveImage } from '../appliance/images.ts';
import { api, docker, dockerMissing, notRoot, startWorld, type World } from './support/world.ts';

// Images as local root file systems: the pure parts directly, then the real
// docker CLI importing, listing, inspecting and removing them.

const record = (Id: string, RepoTags: string[]): { record: ImageRecord } => ({
  record: { Id, RepoTags, Created: 0, Size: 0, Comment: '', Config: {} },
});

t.test('a reference without a tag means :latest, in the short form Docker shows', async (t) => {
  t.equal(normalizeTag('busybox'), 'busybox:latest');
  t.equal(normalizeTag('busybox:1.36'), 'busybox:1.36');
  t.equal(normalizeTag('docker.io/library/busybox'), 'busybox:latest');
  t.equal(normalizeTag('registry.local:5000/team/app', 'v2'), 'registry.local:5000/team/app:v2');
  t.equal(normalizeTag('Busybox'), undefined, 'upper case is no repository name');
  t.equal(normalizeTag('busybox:1', '2'), undefined, 'two tags at once');
});

t.test('a reference names an image by tag first, then by a unique ID prefix', async (t) => {
  const images = [record('sha256:abc123', ['web:latest']), record('sha256:abd456', ['db:v1']), record('sha256:ffff00', [])];
  t.equal(resolveImage(images, 'web'), images[0]);
  t.equal(resolveImage(images, 'db:v1'), images[1]);
  t.equal(resolveImage(images, 'db'), undefined, 'db means db:latest, which no image has');
  t.equal(resolveImage(images, 'ff'), images[2]);
  t.equal(resolveImage(images, 'sha256:abd'), images[1]);
  t.throws(() => resolveImage(images, 'ab'), { constructor: AmbiguousImage, message: /prefix ab is ambiguous/ }, 'a prefix of two IDs names neither');
});

t.test('removing by tag untags while other tags remain; by ID it needs force when several tags name it', async (t) => {
  const two = record('sha256:abc', ['a:latest', 'b:latest']).record;
  t.same(planRemoval(two, 'a', false), { kind: 'untag', tags: ['a:latest'] });
  t.same(planRemoval(two, 'abc', false), { kind: 'conflict', reason: 'conflict: unable to delete abc (must be forced) - image is referenced in multiple repositories' });
  t.same(planRemoval(two, 'abc', true), { kind: 'delete', untagged: ['a:latest', 'b:latest'] });
  t.same(planRemoval(record('sha256:abc', ['a:latest']).record, 'a', false), { kind: 'delete', untagged: ['a:latest'] });
});

t.test("an image a container uses is removed as moby removes it: refused in Docker's words, untagged when forced", async (t) => {
  const image = record(`sha256:${'4b2c'.repeat(16)}`, ['busybox:latest']).record;
  const created = { id: '3a1f'.repeat(16), running: false };
  const running = { id: '9e8d'.repeat(16), running: true };
  t.same(planRemoval(image, 'busybox', false, [created]), {
    kind: 'conflict',
    reason: 'conflict: unable to remove repository reference "busybox" (must force) - container 3a1f3a1f3a1f is using its referenced image 4b2c4b2c4b2c',
  });
  t.same(planRemoval(image, 'busybox', true, [created]), { kind: 'untag', tags: ['busybox:latest'] }, 'forced by tag: the tag goes, the image stays for its container');
  t.same(planRemoval(image, 'busybox', true, [running]), { kind: 'untag', tags: ['busybox:latest'] });
  t.same(planRemoval(image, '4b2c', true, [running]), {
    kind: 'conflict',
    reason: 'conflict: unable to delete 4b2c4b2c4b2c (cannot be forced) - image is being used by running container 9e8d9e8d9e8d',
  });
  t.same(planRemoval(image, '4b2c', false, [created]), {
    kind: 'conflict',
    reason: 'conflict: unable to delete 4b2c4b2c4b2c (must be forced) - image is being used by stopped container 3a1f3a1f3a1f',
  });
  t.same(planRemoval(image, 'sha256:4b2c', true, [created]), { kind: 'untag', tags: ['busybox:latest'] }, 'forced by ID: untagged, kept for its container');
  const tagged = record(image.Id, ['busybox:latest', 'mine:1']).record;
  t.same(planRemoval(tagged, 'busybox', false, [created]), { kind: 'untag', tags: ['busybox:latest'] }, 'another tag still names it: only the tag goes');
  t.same(planRemoval(tagged, '4b2c', false, [running]), {
    kind: 'conflict',
    reason: 'conflict: unable to delete 4b2c4b2c4b2c (cannot be forced) - image is being used by running container 9e8d9e8d9e8d',
  }, 'a running container comes first');
});

t.test('compression is told by the magic bytes', async (t) => {
  t.equal(decompressionOption(Buffer.from([0x1f, 0x8b, 8, 0])), '--gzip');
  t.equal(decompressionOption(Buffer.from('BZh91AY')), '--bzip2');
  t.equal(decompressionOption(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), '--xz');
  t.equal(decompressionOption(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), '--zstd');
  t.equal(decompressionOption(Buffer.from('etc/\0\0\0')), '', 'a plain tarball');
});

// ---------------------------------------------------------------- end to end

const skip = notRoot() || dockerMissing();
if (skip) t.comment(`skipping the docker image end-to-end tests: ${skip}`);

/** A tarball of a directory holding `etc/hello` with `text`; gzip-compressed when asked. */
function makeTarball(t: { teardown(fn: () => void): void }, text: string, gzip = false): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-rootfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'root', 'etc'), { recursive: true });
  writeFileSync(join(dir, 'root', 'etc', 'hello'), text);
  const file = join(dir, gzip ? 'rootfs.tar.gz' : 'rootfs.tar');
  execFileSync('tar', ['-c', ...(gzip ? ['-z'] : []), '-f', file, '-C', join(dir, 'root'), '.']);
  return file;
}

/** One raw POST with a body, for what the CLI would refuse to send. */
function post(world: World, path: string, body: Buffer): Promise<{ status: number; body: string }> {
  const url = new URL(path, world.appliance.api.replace(/^tcp:/, 'http:'));
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': 'application/x-tar' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The docker CLI with `file` as its stdin (the world's helper sends text; a tarball is bytes). */
function dockerReading(world: World, file: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('docker', ['-H', world.appliance.api, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createReadStream(file).pipe(child.stdin);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

const storeEntries = (world: World) => readdirSync(join(world.stateDir, 'images'));

t.test('docker import stores the root file system; docker images and docker image inspect show it', { skip }, async (t) => {
  const world = await startWorld(t);
  const imported = await docker(world, ['import', makeTarball(t, 'plain\n'), 'plainfs:v1']);
  t.equal(imported.code, 0, imported.stderr);
  const id = imported.stdout.trim();
  t.match(id, /^sha256:[0-9a-f]{64}$/, 'the CLI prints the image ID');

  const listed = await docker(world, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, `plainfs:v1 ${id.slice('sha256:'.length, 'sha256:'.length + 12)}`);

  const inspected = await docker(world, ['image', 'inspect', 'plainfs:v1']);
  t.equal(inspected.code, 0, inspected.stderr);
  const [details] = JSON.parse(inspected.stdout) as Array<{ Id: string; RepoTags: string[]; GraphDriver: { Data: { Dir: string } } }>;
  t.equal(details!.Id, id);
  t.same(details!.RepoTags, ['plainfs:v1']);
  const rootfs = join(world.stateDir, 'images', id.slice('sha256:'.length), 'rootfs');
  t.equal(details!.GraphDriver.Data.Dir, rootfs);
  t.equal(readFileSync(join(rootfs, 'etc', 'hello'), 'utf8'), 'plain\n', 'the files landed under the store');
});

t.test('docker import - reads a gzip-compressed tarball from stdin, named NAME:latest', { skip }, async (t) => {
  const world = await startWorld(t);
  const tarball = makeTarball(t, 'zipped\n', true);
  const imported = await dockerReading(world, tarball, ['import', '-', 'zipped']);
  t.equal(imported.code, 0, imported.stderr);
  const inspected = await docker(world, ['image', 'inspect', '--format', '{{.GraphDriver.Data.Dir}}', 'zipped:latest']);
  t.equal(inspected.code, 0, inspected.stderr);
  t.equal(readFileSync(join(inspected.stdout.trim(), 'etc', 'hello'), 'utf8'), 'zipped\n');
});

t.test('importing a new tarball under a taken name moves the name; the old image stays, untagged', { skip }, async (t) => {
  const world = await startWorld(t);
  const first = await docker(world, ['import', makeTarball(t, 'one\n'), 'moving']);
  const second = await docker(world, ['import', makeTarball(t, 'two\n'), 'moving']);
  t.equal(first.code, 0, first.stderr);
  t.equal(second.code, 0, second.stderr);
  t.not(first.stdout, second.stdout, 'different tarballs, different IDs');
  const inspected = await docker(world, ['image', 'inspect', '--format', '{{.Id}}', 'moving']);
  t.equal(inspected.stdout, second.stdout);
  t.match(await api(world, 'GET', `/images/${first.stdout.trim()}/json`), { status: 200, body: { RepoTags: [] } });
});

t.test('docker pull fails with exit code 1, saying there is no registry and what to do instead', { skip }, async (t) => {
  const world = await startWorld(t);
  const pulled = await docker(world, ['pull', 'alpine']);
  t.equal(pulled.code, 1);
  t.match(pulled.stderr, /never contacts a registry/);
  t.match(pulled.stderr, /cannot pull alpine:latest: .*docker import rootfs\.tar alpine:latest/);
});

t.test('docker rmi removes an image and its files; an unknown one is a 404', { skip }, async (t) => {
  const world = await startWorld(t);
  const imported = await docker(world, ['import', makeTarball(t, 'doomed\n'), 'doomed']);
  t.equal(imported.code, 0, imported.stderr);
  const removed = await docker(world, ['rmi', 'doomed']);
  t.equal(removed.code, 0, removed.stderr);
  t.match(removed.stdout, /Untagged: doomed:latest/);
  t.match(removed.stdout, `Deleted: ${imported.stdout.trim()}`);
  t.same(storeEntries(world), [], 'nothing of it is left in the store');
  const listed = await docker(world, ['images', '--format', '{{.Repository}}']);
  t.equal(listed.stdout, 'host\n');
  t.match(await api(world, 'DELETE', '/images/doomed'), { status: 404, body: { message: 'No such image: doomed' } });
});

t.test('host is always listed and cannot be removed', { skip }, async (t) => {
  const world = await startWorld(t);
  const listed = await docker(world, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  t.equal(listed.stdout, `host:latest ${HOST_IMAGE.record.Id.slice('sha256:'.length, 'sha256:'.length + 12)}\n`);
  const removed = await docker(world, ['rmi', 'host']);
  t.equal(removed.code, 1);
  t.match(removed.stderr, /unable to remove host: it is the host's own root file system/);
  t.match(await api(world, 'DELETE', '/images/host'), { status: 409 });
});

t.test('a body that is not a tarball is a 400 naming the problem, and leaves nothing behind', { skip }, async (t) => {
  const world = await startWorld(t);
  const garbage = await post(world, '/images/create?fromSrc=-&repo=broken', Buffer.from('this is not a tar archive\n'.repeat(100)));
  t.equal(garbage.status, 400);
  t.match(JSON.parse(garbage.body), { message: /^importing broken:latest: tar could not extract the request body: .*does not look like a tar archive/ });

  // Random text, so that the compressed tarball is long enough to cut short.
  const truncated = readFileSync(makeTarball(t, randomBytes(100_000).toString('base64'), true)).subarray(0, 2000);
  const cut = await post(world, '/images/create?fromSrc=-&repo=broken', truncated);
  t.equal(cut.status, 400);
  t.match(JSON.parse(cut.body), { message: /gzip-compressed\): .*(unexpected end|Unexpected EOF)/i });

  const empty = await post(world, '/images/create?fromSrc=-&repo=broken', Buffer.alloc(0));
  t.equal(empty.status, 400);
  t.match(JSON.parse(empty.body), { message: /the request body is empty/ });

  t.same(storeEntries(world), [], 'no temporary directory and no image remain');
  t.notOk(existsSync(join(world.stateDir, 'images', 'broken')));
});

const BUSYBOX = '/bin/busybox';
const busyboxSkip = skip || (existsSync(BUSYBOX) ? false : `needs a static ${BUSYBOX} (Debian package busybox-static)`);
const APPLETS = ['sh', 'echo', 'cat', 'ls', 'sleep'];

/** A tarball of a root file system holding a static busybox (with APPLETS) and an /etc/os-release naming it mini. */
function miniTarball(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-mini-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  execFileSync('cp', [BUSYBOX, join(root, 'bin', 'busybox')]);
  for (const applet of APPLETS) execFileSync('ln', ['-s', 'busybox', join(root, 'bin', applet)]);
  writeFileSync(join(root, 'etc', 'os-release'), 'NAME="mini"\n');
  const tarball = join(dir, 'mini.tar');
  execFileSync('tar', ['-c', '-f', tarball, '-C', root, '.']);
  return tarball;
}

t.test('docker run --rm of an imported busybox root file system prints hi, returns 0, and sees the image\'s files, not the host\'s', { skip: busyboxSkip }, async (t) => {
  const world = await startWorld(t);
  const imported = await docker(world, ['import', miniTarball(t), 'mini']);
  t.equal(imported.code, 0, imported.stderr);
  const hi = await docker(world, ['run', '--rm', 'mini', 'echo', 'hi']);
  t.same([hi.code, hi.stdout, hi.stderr], [0, 'hi\n', '']);
  const release = await docker(world, ['run', '--rm', 'mini', 'cat', '/etc/os-release']);
  t.equal(release.stdout, 'NAME="mini"\n', "the image's /etc, not the host's");
  const bin = await docker(world, ['run', '--rm', 'mini', 'ls', '/bin']);
  t.same(bin.stdout.split('\n').filter(Boolean).sort(), ['busybox', ...APPLETS].sort(), 'only what the image holds');
});

t.test("docker rmi of an image a container uses is a 409 in Docker's words; rmi -f untags it, and by ID refuses while the container runs", { skip: busyboxSkip }, async (t) => {
  const world = await startWorld(t);
  const imported = await docker(world, ['import', miniTarball(t), 'mini']);
  t.equal(imported.code, 0, imported.stderr);
  const image = imported.stdout.trim().replace('sha256:', '').slice(0, 12);
  const created = await docker(world, ['create', '--name', 'user', 'mini', 'sleep', '1000']);
  t.equal(created.code, 0, created.stderr);
  const container = created.stdout.trim().slice(0, 12);

  const refused = await docker(world, ['rmi', 'mini']);
  t.equal(refused.code, 1);
  t.equal(refused.stderr.trim(), `Error response from daemon: conflict: unable to remove repository reference "mini" (must force) - container ${container} is using its referenced image ${image}`);
  const byId = await docker(world, ['rmi', image]);
  t.equal(byId.stderr.trim(), `Error response from daemon: conflict: unable to delete ${image} (must be forced) - image is being used by stopped container ${container}`);

  const started = await docker(world, ['start', 'user']);
  t.equal(started.code, 0, started.stderr);
  const forcedById = await docker(world, ['rmi', '-f', image]);
  t.equal(forcedById.stderr.trim(), `Error response from daemon: conflict: unable to delete ${image} (cannot be forced) - image is being used by running container ${container}`);

  const forced = await docker(world, ['rmi', '-f', 'mini']);
  t.equal(forced.code, 0, forced.stderr);
  t.equal(forced.stdout, 'Untagged: mini:latest\n', 'forced by tag: the tag goes');
  const listed = await docker(world, ['images', '--format', '{{.Repository}} {{.ID}}']);
  t.match(listed.stdout, `<none> ${image}`, 'the image stays, untagged, for its container');
  const exec = await docker(world, ['exec', 'user', 'cat', '/etc/os-release']);
  t.equal(exec.stdout, 'NAME="mini"\n', 'which still runs from it');
});
