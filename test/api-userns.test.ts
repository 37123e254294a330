import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import t from 'tap';
import { USERNS_FIRST, USERNS_SIZE } from '../appliance/usernsRanges.ts';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, startWorld, type World } from './support/world.ts';

// The user namespace each container's processes run in (issue 11), seen
// through the real docker CLI from inside the containers and from the
// host: container root is an unprivileged host user of a range of its own,
// and still owns and writes its root file system as Docker's root does.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping the user namespace tests: ${skip}`);

/** The single line of a uid_map or gid_map: [inside, outside, count]. */
const mapOf = (text: string) => text.trim().split(/\s+/).map(Number);

async function run(world: World, args: string[]): Promise<string> {
  const result = await docker(world, args);
  if (result.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** The host's view of the process whose command line is exactly `cmdline` (arguments joined by spaces). */
function hostProcess(cmdline: string): { uid: number; gid: number; userns: string } {
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ') !== cmdline) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'latin1');
      const id = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)![1]);
      return { uid: id('Uid'), gid: id('Gid'), userns: readlinkSync(`/proc/${entry}/ns/user`) };
    } catch {
      // It exited while we looked.
    }
  }
  throw new Error(`no process on the host runs ${JSON.stringify(cmdline)}`);
}

t.test('container root is an unprivileged host user of a range of its own; exec joins the same namespace; a restart keeps the range', { skip }, async (t) => {
  const world = await startWorld(t);
  const sleep = `sleep ${USERNS_SIZE}.${process.pid}`;
  const id = (await run(world, ['run', '-d', 'host', ...sleep.split(' ')])).trim();
  t.teardown(() => docker(world, ['rm', '-f', id]));
  const [inside, outside, count] = mapOf(await run(world, ['exec', id, 'cat', '/proc/self/uid_map']));
  t.same([inside, count], [0, USERNS_SIZE], 'container IDs 0 to 65535 are mapped');
  t.ok(outside! >= USERNS_FIRST && (outside! - USERNS_FIRST) % USERNS_SIZE === 0, `to a range of its own (${outside})`);
  t.same(mapOf(await run(world, ['exec', id, 'cat', '/proc/self/gid_map'])), [0, outside, USERNS_SIZE], 'groups alike');

  const host = hostProcess(sleep);
  t.same([host.uid, host.gid], [outside, outside], 'the host sees its root as that unprivileged user');
  t.not(host.userns, readlinkSync('/proc/self/ns/user'), 'in a user namespace that is not the host\'s');
  t.equal((await run(world, ['exec', id, 'readlink', '/proc/self/ns/user'])).trim(), host.userns, 'an exec joins the container\'s namespace');

  await run(world, ['stop', '-t', '0', id]);
  await run(world, ['start', id]);
  t.same(mapOf(await run(world, ['exec', id, 'cat', '/proc/self/uid_map'])), [0, outside, USERNS_SIZE], 'started again, it has the same range');
});

t.test('the image keeps its owners inside, and container root writes, copies up, chowns and makes directories as Docker\'s root does; the host image is untouched', { skip }, async (t) => {
  const world = await startWorld(t);
  const before = statSync('/etc/passwd');
  const script = [
    'stat -c "%u:%g %n" / /etc/passwd /root /tmp /run /dev /dev/shm /dev/null /etc/hosts',
    'echo tether-userns >> /etc/passwd && tail -n 1 /etc/passwd',
    'echo 127.0.0.9 added >> /etc/hosts && tail -n 1 /etc/hosts',
    'mkdir /tether-made && chown 1000:1000 /tether-made && stat -c "%u:%g %n" /tether-made',
    'id -u',
  ].join(' && ');
  const output = await run(world, ['run', '--rm', 'host', 'sh', '-c', script]);
  t.equal(output, [
    '0:0 /', '0:0 /etc/passwd', '0:0 /root', '0:0 /tmp', '0:0 /run', '0:0 /dev', '0:0 /dev/shm', '0:0 /dev/null', '0:0 /etc/hosts',
    'tether-userns', '127.0.0.9 added', '1000:1000 /tether-made', '0', '',
  ].join('\n'));
  const after = statSync('/etc/passwd');
  t.same([after.size, after.mtimeMs], [before.size, before.mtimeMs], 'the host\'s /etc/passwd is as it was');
  t.notOk(readFileSync('/etc/passwd', 'utf8').includes('tether-userns'));
});

t.test('containers get distinct ranges; --userns=host and --privileged keep the guest\'s IDs, and inspect shows UsernsMode', { skip }, async (t) => {
  const world = await startWorld(t);
  const map = async (flags: string[]) => mapOf(await run(world, ['run', '--rm', ...flags, 'host', 'cat', '/proc/self/uid_map']));
  const first = (await run(world, ['run', '-d', 'host', 'sleep', '1000'])).trim();
  t.teardown(() => docker(world, ['rm', '-f', first]));
  const [, taken] = mapOf(await run(world, ['exec', first, 'cat', '/proc/self/uid_map']));
  const [, other] = await map([]);
  t.not(other, taken, 'a second container does not share the first one\'s IDs');
  t.same(await map(['--userns=host']), [0, 0, 2 ** 32 - 1], '--userns=host');
  t.same(await map(['--privileged']), [0, 0, 2 ** 32 - 1], '--privileged');
  t.equal(await run(world, ['inspect', '-f', '{{.HostConfig.UsernsMode}}', first]), '\n');
  const hostMode = (await run(world, ['create', '--userns=host', 'host', 'true'])).trim();
  t.teardown(() => docker(world, ['rm', '-f', hostMode]));
  t.equal(await run(world, ['inspect', '-f', '{{.HostConfig.UsernsMode}}', hostMode]), 'host\n');
});

t.test('container root binds a port below 1024 and opens an ICMP echo socket, as in Docker, though it holds no capability over the network', { skip }, async (t) => {
  const world = await startWorld(t);
  const perl = 'use IO::Socket::INET; use Socket; IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 80) or die "bind 80: $!\\n"; '
    + 'socket(my $s, PF_INET, SOCK_DGRAM, getprotobyname("icmp")) or die "icmp: $!\\n"; print "bound and opened\\n"';
  t.equal(await run(world, ['run', '--rm', 'host', 'perl', '-e', perl]), 'bound and opened\n');
  t.equal(await run(world, ['run', '--rm', '-u', 'nobody', 'host', 'perl', '-e', perl]), 'bound and opened\n', 'and so does any user');
});

t.test('a user whose IDs the namespace does not map is refused, naming the ID and the way out; with --userns=host it runs', { skip }, async (t) => {
  const world = await startWorld(t);
  const refused = await docker(world, ['run', '--rm', '-u', '70000:70000', 'host', 'id', '-u']);
  t.not(refused.code, 0);
  t.match(refused.stderr, /ID 70000 is outside the container's user namespace, which maps IDs 0 to 65535 \(docker run --userns=host keeps the host's IDs\)/);
  t.equal(await run(world, ['run', '--rm', '-u', '70000:70000', '--userns=host', 'host', 'id', '-u']), '70000\n');
});
