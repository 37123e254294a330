import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CAPABILITIES, capabilityMask, DEFAULT_CAPABILITIES, type Capability } from '../shared/capabilities.ts';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { docker, dockerMissing, startWorld, type World } from './support/world.ts';

// What a container's processes may do, read from inside containers that the
// real docker CLI ran through the appliance: their capability sets,
// no_new_privs and seccomp, as Docker's flags set them.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping confinement tests: ${skip}`);

const STATUS_FIELDS = ['CapPrm', 'CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp'];

/** The fields of /proc/self/status of a process that `docker run` (or exec) starts with `flags`. */
async function status(world: World, flags: string[], exec?: string): Promise<Record<string, string>> {
  const command = ['grep', '-E', `^(${STATUS_FIELDS.join('|')}):`, '/proc/self/status'];
  const result = await docker(world, exec === undefined ? ['run', '--rm', ...flags, 'host', ...command] : ['exec', ...flags, exec, ...command]);
  if (result.code !== 0) throw new Error(`docker ${flags.join(' ')}: exit ${result.code}: ${result.stderr}`);
  return Object.fromEntries(result.stdout.trim().split('\n').map((line) => line.split(/:\s+/) as [string, string]));
}

/**
 * A capability set as /proc/PID/status prints it (16 hex digits): only
 * those this test holds, as the guest init it starts holds the same, and a
 * container gets no capability its init lacks.
 */
function hex(caps: readonly Capability[]): string {
  const held = BigInt(`0x${/^CapPrm:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
  return (capabilityMask(caps) & held).toString(16).padStart(16, '0');
}

const none = hex([]);
const defaults = hex(DEFAULT_CAPABILITIES);

t.test("a container's processes have Docker's capability sets, no_new_privs and seccomp filter for each flag", { skip }, async (t) => {
  const world = await startWorld(t);
  t.same(await status(world, []), { CapPrm: defaults, CapEff: defaults, CapBnd: defaults, NoNewPrivs: '0', Seccomp: '2' }, 'the default: 14 capabilities, filtered');
  t.same(await status(world, ['--cap-drop', 'ALL']), { CapPrm: none, CapEff: none, CapBnd: none, NoNewPrivs: '0', Seccomp: '2' }, '--cap-drop ALL');
  const withNetAdmin = hex([...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN']);
  t.same(await status(world, ['--cap-add', 'NET_ADMIN']), { CapPrm: withNetAdmin, CapEff: withNetAdmin, CapBnd: withNetAdmin, NoNewPrivs: '0', Seccomp: '2' }, '--cap-add NET_ADMIN');
  const all = hex(CAPABILITIES);
  t.same(await status(world, ['--privileged']), { CapPrm: all, CapEff: all, CapBnd: all, NoNewPrivs: '0', Seccomp: '0' }, '--privileged: everything, no filter');
  t.same(await status(world, ['-u', '1000']), { CapPrm: none, CapEff: none, CapBnd: defaults, NoNewPrivs: '0', Seccomp: '2' }, '-u 1000: only the bounding set');
  t.same(await status(world, ['--security-opt', 'no-new-privileges']), { CapPrm: defaults, CapEff: defaults, CapBnd: defaults, NoNewPrivs: '1', Seccomp: '2' }, 'no-new-privileges');
  t.same(await status(world, ['--security-opt', 'seccomp=unconfined']), { CapPrm: defaults, CapEff: defaults, CapBnd: defaults, NoNewPrivs: '0', Seccomp: '0' }, 'seccomp=unconfined');
});

t.test('docker exec --privileged gets every capability and keeps the container filter, as in Docker; a plain exec the defaults', { skip }, async (t) => {
  const world = await startWorld(t);
  const run = await docker(world, ['run', '-d', 'host', 'sleep', '1000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const all = hex(CAPABILITIES);
  t.same(await status(world, ['--privileged'], id), { CapPrm: all, CapEff: all, CapBnd: all, NoNewPrivs: '0', Seccomp: '2' });
  t.same(await status(world, [], id), { CapPrm: defaults, CapEff: defaults, CapBnd: defaults, NoNewPrivs: '0', Seccomp: '2' });
  const inspect = await docker(world, ['inspect', '-f', '{{json .HostConfig.Privileged}}', id]);
  t.equal(inspect.stdout, 'false\n');
});

t.test('unshare --user is refused with EPERM by the default filter, and runs with seccomp=unconfined; --cap-add SYS_ADMIN or SYS_PTRACE alone is refused, saying why', { skip }, async (t) => {
  const world = await startWorld(t);
  const refused = await docker(world, ['run', '--rm', 'host', 'unshare', '--user', 'true']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /unshare failed: Operation not permitted/);
  const unconfined = await docker(world, ['run', '--rm', '--security-opt', 'seccomp=unconfined', 'host', 'unshare', '--user', 'true']);
  t.equal(unconfined.code, 0, unconfined.stderr);
  const admin = await docker(world, ['run', '--rm', '--cap-add', 'SYS_ADMIN', 'host', 'unshare', '--user', 'true']);
  t.not(admin.code, 0);
  t.match(admin.stderr, /CAP_SYS_ADMIN is refused without privileged \(docker --privileged\): a container could mount a file system without nodev/);
  const ptrace = await docker(world, ['run', '--rm', '--cap-add', 'ALL', 'host', 'true']);
  t.not(ptrace.code, 0);
  t.match(ptrace.stderr, /CAP_SYS_PTRACE is refused without privileged \(docker --privileged\): the guest init shares the container's PID namespace/);
});

t.test('a seccomp profile file given with --security-opt is the filter the container runs under', { skip }, async (t) => {
  const world = await startWorld(t);
  const dir = mkdtempSync(join(tmpdir(), 'tether-seccomp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const profile = join(dir, 'profile.json');
  writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }] }));
  const result = await docker(world, ['run', '--rm', '--security-opt', `seccomp=${profile}`, 'host', 'mkdir', '/tmp/tether-never']);
  t.equal(result.code, 1);
  t.match(result.stderr, /No space left on device/);
});

const C_OPEN_BY_HANDLE = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* /dev: a tmpfs, whose files have handles (the container's overlay root has none). */
int main(void) {
  struct file_handle *handle = malloc(sizeof *handle + MAX_HANDLE_SZ);
  handle->handle_bytes = MAX_HANDLE_SZ;
  int mount_id, dir = open("/dev", O_RDONLY | O_DIRECTORY);
  if (name_to_handle_at(dir, "", handle, &mount_id, AT_EMPTY_PATH) != 0) { printf("name_to_handle_at: %s\\n", strerror(errno)); return 2; }
  int fd = open_by_handle_at(dir, handle, O_RDONLY);
  if (fd < 0) { printf("open_by_handle_at: %s\\n", strerror(errno)); return 1; }
  printf("opened\\n");
  return 0;
}
`;

const noCompiler = spawnSync('cc', ['--version']).status !== 0 && 'needs a C compiler to build the test program (apt-get install gcc libc6-dev)';

t.test('open_by_handle_at (the shocker escape) is refused with EPERM, even with --cap-add DAC_READ_SEARCH inside the user namespace; --userns=host with it lets it through', { skip: skip || noCompiler }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tether-obh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const program = join(dir, 'obh');
  writeFileSync(`${program}.c`, C_OPEN_BY_HANDLE);
  execFileSync('cc', ['-static', '-O2', '-o', program, `${program}.c`], { stdio: 'pipe' });
  const world = await startWorld(t);
  // The program reaches the container through stdin (base64: the input is text), into the container's own /tmp, whatever the host image shows of the host's.
  const script = 'f=$(mktemp) && base64 -d > "$f" && chmod +x "$f" && "$f"; s=$?; rm -f "$f"; exit $s';
  const run = (flags: string[]) => docker(world, ['run', '--rm', '-i', ...flags, 'host', 'sh', '-c', script], readFileSync(program).toString('base64'));
  const refused = await run([]);
  t.equal(refused.stdout, 'open_by_handle_at: Operation not permitted\n', refused.stderr);
  t.equal(refused.code, 1);
  // The capability is the user namespace's, and open_by_handle_at asks for the host's.
  const inNamespace = await run(['--cap-add', 'DAC_READ_SEARCH']);
  t.equal(inNamespace.stdout, 'open_by_handle_at: Operation not permitted\n', inNamespace.stderr);
  const allowed = await run(['--userns=host', '--cap-add', 'DAC_READ_SEARCH']);
  t.equal(allowed.stdout, 'opened\n', allowed.stderr);
});

/** A user the host image's /etc/group lists as a member of some group. */
const member = readFileSync('/etc/group', 'utf8').split('\n').flatMap((line) => line.split(':')[3]?.split(',') ?? []).find((name) => name !== '');

t.test("a -u user's pipe session has the user's supplementary groups from /etc/group", { skip: skip || (member === undefined && "no user in this host's /etc/group is a member of a group") }, async (t) => {
  const world = await startWorld(t);
  const result = await docker(world, ['run', '--rm', '-u', member!, 'host', 'id', '-G']);
  t.equal(result.stdout, execFileSync('id', ['-G', member!], { encoding: 'utf8' }), result.stderr);
});

t.test('security flags show in inspect as given; an unknown capability, option or device, or a device for reading or writing only, is a 400 naming it', { skip }, async (t) => {
  const world = await startWorld(t);
  const created = await docker(world, ['create', '--cap-add', 'net_admin', '--cap-drop', 'MKNOD', '--security-opt', 'no-new-privileges', '--device', '/dev/null:/dev/mynull:rw', 'host', 'true']);
  t.equal(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const inspect = await docker(world, ['inspect', '-f', '{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .HostConfig.SecurityOpt}} {{json .HostConfig.Devices}} {{.HostConfig.Privileged}}', id]);
  t.equal(inspect.stdout, '["CAP_NET_ADMIN"] ["CAP_MKNOD"] ["no-new-privileges"] [{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}] false\n');

  const unknownCap = await docker(world, ['create', '--cap-add', 'BOGUS', 'host', 'true']);
  t.not(unknownCap.code, 0);
  t.match(unknownCap.stderr, /unknown capability: "CAP_BOGUS"/);
  const apparmor = await docker(world, ['create', '--security-opt', 'apparmor=unconfined', 'host', 'true']);
  t.not(apparmor.code, 0);
  t.match(apparmor.stderr, /--security-opt "apparmor" is not supported by tether/);
  const device = await docker(world, ['create', '--device', '/dev/tether-no-such-device', 'host', 'true']);
  t.not(device.code, 0);
  t.match(device.stderr, /error gathering device information while adding custom device "\/dev\/tether-no-such-device": no such file or directory/);
  const readOnly = await docker(world, ['create', '--device', '/dev/null:/dev/mynull:r', 'host', 'true']);
  t.not(readOnly.code, 0, 'a device for reading only is refused, since it cannot be enforced');
  t.match(readOnly.stderr, /security\.devices\[0\]\.permissions: expected "rw" or "rwm" \(tether cannot limit a device to reading or writing only\), got "r"/);
  const groupAdd = await docker(world, ['create', '--group-add', '10', 'host', 'true']);
  t.not(groupAdd.code, 0);
  t.match(groupAdd.stderr, /HostConfig.GroupAdd is not supported by tether \(got \["10"\]\)/);
});
