import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readlinkSync, writeSync } from 'node:fs';
import t from 'tap';
import { confinedCommand, openConfineNow } from '../actors/confine.ts';
import { compileSeccomp } from '../actors/seccomp.ts';
import { parseHostSecurity } from '../appliance/api/hostSecurity.ts';
import { freeUsernsRange, USERNS_FIRST, USERNS_SIZE } from '../appliance/usernsRanges.ts';
import { bundlePath } from '../shared/bundlePath.ts';
import { CAPABILITIES, capabilityMask, DEFAULT_CAPABILITIES, resolveCapabilities } from '../shared/capabilities.ts';
import { parseGuestConfig } from '../shared/config.ts';
import { applicableRules, checkSeccompProfile, defaultSeccompProfile, type SeccompProfile } from '../shared/seccompProfile.ts';
import { DEFAULT_SECURITY, processConfinement } from '../shared/security.ts';

// The container's capability set as Docker resolves it, the security
// section of the guest config, and seccomp profiles: which rules apply,
// and the compiled filter as the kernel enforces it through dist/confine.

t.test('capabilities resolve as Docker resolves --cap-add, --cap-drop and --privileged', async (t) => {
  t.same(resolveCapabilities([], [], false), [...DEFAULT_CAPABILITIES].sort((a, b) => CAPABILITIES.indexOf(a) - CAPABILITIES.indexOf(b)), 'the default set');
  t.equal(capabilityMask(resolveCapabilities([], [], false)), 0xa80425fbn, "Docker's CapEff for a root process");
  t.same(resolveCapabilities(['sys_admin'], ['ALL'], false), ['CAP_SYS_ADMIN'], 'drop ALL keeps only the added, in any case, without CAP_');
  t.same(resolveCapabilities(['ALL'], ['CAP_SYS_ADMIN', 'net_raw'], false), CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN' && c !== 'CAP_NET_RAW'), 'add ALL less the dropped');
  t.same(resolveCapabilities([], ['CHOWN', 'kill'], false).includes('CAP_CHOWN'), false, 'a dropped default is gone');
  t.same(resolveCapabilities(['NET_ADMIN', 'CAP_NET_ADMIN'], [], false).filter((c) => c === 'CAP_NET_ADMIN'), ['CAP_NET_ADMIN'], 'no repeats');
  t.same(resolveCapabilities([], ['ALL'], true), [...CAPABILITIES], 'privileged is everything, whatever is dropped');
  t.throws(() => resolveCapabilities(['bogus'], [], false), { message: 'unknown capability: "CAP_BOGUS"' });
});

const document = (security: unknown) => JSON.stringify({
  id: 'c1', name: 'c1', hostname: 'c1', sessions: { c1: { cmd: ['true'] } },
  ssh: { hostKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n', authorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a'] },
  ...(security === undefined ? {} : { security }),
});

t.test("a guest config without security gets Docker's defaults", async (t) => {
  const { security } = parseGuestConfig(document(undefined), 'test');
  t.same(security, { privileged: false, capabilities: DEFAULT_CAPABILITIES, seccomp: 'default', noNewPrivileges: false, devices: [] });
});

t.test('privileged means every capability and no seccomp filter', async (t) => {
  const { security } = parseGuestConfig(document({ privileged: true }), 'test');
  t.same(security.capabilities, CAPABILITIES);
  t.equal(security.seccomp, 'unconfined');
  t.equal(processConfinement(security, false).seccomp, undefined);
});

t.test('every problem in the security section is named by its field', async (t) => {
  const bad = {
    privileged: true, capabilities: ['CAP_CHOWN'], noNewPrivileges: 'yes', extra: 1,
    devices: [{ path: '/etc/passwd', type: 'x', major: 5000, minor: 1, permissions: 'rwx' }],
  };
  const error = t.throws(() => parseGuestConfig(document(bad), 'test')) as { problems?: string[] };
  t.same(error.problems, [
    'security.extra: unknown field (expected one of: privileged, capabilities, seccomp, noNewPrivileges, devices, userns)',
    'security.noNewPrivileges: expected true or false, got "yes"',
    "security.capabilities: not allowed with privileged: true, which gives every capability, no seccomp filter and the guest's own IDs",
    'security.devices[0].path: expected a path under /dev (without ".."), got "/etc/passwd"',
    'security.devices[0].type: expected "c" (character) or "b" (block), got "x"',
    'security.devices[0].major: expected a whole number from 0 to 4095, got 5000',
    'security.devices[0].permissions: expected "rw" or "rwm" (tether cannot limit a device to reading or writing only), got "rwx"',
  ]);
  const profile = { defaultAction: 'SCMP_ACT_NOTIFY', listenerPath: '/x', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] };
  const seccomp = t.throws(() => parseGuestConfig(document({ seccomp: profile }), 'test')) as { problems?: string[] };
  t.same(seccomp.problems, [
    'security.seccomp.listenerPath: not supported by tether (a seccomp notifier and filter flags are not applied); remove it',
    'security.seccomp.defaultAction: expected one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG (SCMP_ACT_NOTIFY needs a notifier, which tether has none of), got "SCMP_ACT_NOTIFY"',
    'security.seccomp.syscalls[0].args[0].index: expected a whole number from 0 to 5, got 6',
  ]);
});

t.test('a user namespace maps at least 65536 IDs, never to host root, within the 32-bit IDs, and not with privileged', async (t) => {
  t.same(parseGuestConfig(document({ userns: { hostId: 0x70000000, size: 65536 } }), 'test').security.userns, { hostId: 0x70000000, size: 65536 });
  const problems = (userns: unknown, privileged?: boolean) =>
    (t.throws(() => parseGuestConfig(document({ userns, ...(privileged ? { privileged } : {}) }), 'test')) as { problems?: string[] }).problems;
  t.same(problems({ hostId: 0, size: 65536 }), ["security.userns.hostId: must not be 0, which would map the container's root to the host's"]);
  t.same(problems({ hostId: 100000, size: 1000 }), ['security.userns.size: expected at least 65536, so that every 16-bit ID an image uses is mapped, got 1000']);
  t.same(problems({ hostId: 2 ** 32 - 65536, size: 65536 }), [`security.userns: the range from hostId ${2 ** 32 - 65536} for 65536 IDs goes past the last ID, ${2 ** 32 - 2}`]);
  t.same(problems({ hostId: 100000, size: 65536, extra: 1 }), ['security.userns.extra: unknown field (expected one of: hostId, size)']);
  t.same(problems({ hostId: 100000, size: 65536 }, true), ["security.userns: not allowed with privileged: true, which gives every capability, no seccomp filter and the guest's own IDs"]);
});

t.test('each container gets the lowest free range of 65536 host IDs from 0x70000000, and is told when none is left', async (t) => {
  t.same(freeUsernsRange([]), { hostId: USERNS_FIRST, size: USERNS_SIZE });
  t.same(freeUsernsRange([USERNS_FIRST, USERNS_FIRST + 2 * USERNS_SIZE]), { hostId: USERNS_FIRST + USERNS_SIZE, size: USERNS_SIZE });
  const all = Array.from({ length: 4094 }, (_, k) => USERNS_FIRST + k * USERNS_SIZE);
  t.equal(freeUsernsRange(all.slice(1)).hostId, USERNS_FIRST);
  t.throws(() => freeUsernsRange(all), { message: /^every one of the 4094 user namespace ranges is taken by a container: remove one, or run with --userns=host$/ });
});

t.test("Docker's default profile checks, and its rules for a capability apply only with that capability", async (t) => {
  const profile = defaultSeccompProfile();
  const target = { arch: 'amd64', kernel: { major: 6, minor: 1 } };
  const allowed = (caps: readonly string[], name: string) =>
    applicableRules(profile, { ...target, caps }).some((rule) => rule.action === 'SCMP_ACT_ALLOW' && rule.names.includes(name));
  t.notOk(allowed(DEFAULT_CAPABILITIES, 'unshare'), 'unshare: not with the defaults');
  t.ok(allowed([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'unshare'), 'unshare: with CAP_SYS_ADMIN');
  t.notOk(allowed(DEFAULT_CAPABILITIES, 'open_by_handle_at'), 'open_by_handle_at: not with the defaults');
  t.ok(allowed(['CAP_DAC_READ_SEARCH'], 'open_by_handle_at'), 'open_by_handle_at: with CAP_DAC_READ_SEARCH');
  t.ok(allowed([], 'arch_prctl'), 'an amd64 rule applies on amd64');
  t.notOk(applicableRules(profile, { caps: [], arch: 'arm64', kernel: target.kernel }).some((r) => r.names.includes('arch_prctl')), 'and not on arm64');
  // clone3 answers ENOSYS without CAP_SYS_ADMIN (an excludes rule), so libcs fall back to clone.
  t.ok(applicableRules(profile, { ...target, caps: [] }).some((r) => r.names.includes('clone3') && r.errnoRet === 38), 'clone3 ENOSYS without the cap');
  t.notOk(applicableRules(profile, { ...target, caps: ['CAP_SYS_ADMIN'] }).some((r) => r.names.includes('clone3') && r.errnoRet === 38), 'and not with it');
  const old = applicableRules(profile, { ...target, caps: [], kernel: { major: 4, minor: 7 } });
  t.notOk(old.some((r) => r.names.includes('ptrace')), 'ptrace needs kernel 4.8');
});

const confine = bundlePath('confine');
const noConfine = !existsSync(confine) && `${confine} is not built (node tools/build.mjs)`;

/** Runs `argv` through dist/confine with `profile` compiled for `caps`, with no_new_privs so no privilege is needed to install it. */
function underFilter(profile: SeccompProfile, caps: readonly string[], argv: string[]) {
  const bpf = compileSeccomp(profile, caps).toString('hex');
  return spawnSync(confine, ['-n', '-s', bpf, '--', execFileSync('sh', ['-c', `command -v ${argv[0]}`], { encoding: 'utf8' }).trim(), ...argv], { encoding: 'utf8' });
}

t.test('the compiled default profile refuses unshare(CLONE_NEWUSER) with EPERM, and allows it when compiled for CAP_SYS_ADMIN', { skip: noConfine }, async (t) => {
  const refused = underFilter(defaultSeccompProfile(), DEFAULT_CAPABILITIES, ['unshare', '--user', 'true']);
  t.equal(refused.status, 1);
  t.match(refused.stderr, /Operation not permitted/);
  const allowed = underFilter(defaultSeccompProfile(), [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], ['unshare', '--user', 'true']);
  t.equal(allowed.status, 0, allowed.stderr);
});

t.test("a profile's errnoRet, argument conditions and default action are what the kernel applies", { skip: noConfine }, async (t) => {
  const profile = checkSeccompProfile('p', {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 },
      // personality(0xffffffff) queries; anything else is refused.
      { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 4294967295, op: 'SCMP_CMP_NE' }] },
    ],
  });
  if ('problems' in profile) throw new Error(profile.problems.join('; '));
  const mkdir = underFilter(profile.profile, [], ['mkdir', '/tmp/tether-seccomp-never']);
  t.match(mkdir.stderr, /No space left on device/, 'errnoRet 28 is ENOSPC');
  t.equal(underFilter(profile.profile, [], ['setarch', '--list']).status, 0, 'an unconditioned call runs');
  t.match(underFilter(profile.profile, [], ['setarch', 'i686', 'true']).stderr, /Operation not permitted/, 'personality(PER_LINUX32) refused by its argument');
});

t.test('a profile libseccomp cannot compile is an error naming what it refused', async (t) => {
  const checked = checkSeccompProfile('p', { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_NOSUCH'], syscalls: [] });
  if ('problems' in checked) throw new Error(checked.problems.join('; '));
  t.throws(() => compileSeccomp(checked.profile, []), { message: 'seccomp profile: architecture SCMP_ARCH_NOSUCH is not known to libseccomp' });
});

t.test('a create whose seccomp profile libseccomp refuses, or with a security field tether lacks, is a 400 naming it', async (t) => {
  const profile = JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_NOSUCH'], syscalls: [] });
  t.throws(() => parseHostSecurity({ SecurityOpt: [`seccomp=${profile}`] }, 'container create'),
    { status: 400, message: 'container create: seccomp profile: architecture SCMP_ARCH_NOSUCH is not known to libseccomp' });
  t.throws(() => parseHostSecurity({ SecurityOpt: ['seccomp={not json'] }, 'container create'), { status: 400, message: /^Decoding seccomp profile failed: / });
  t.throws(() => parseHostSecurity({ UsernsMode: 'private' }, 'container create'),
    { status: 400, message: 'container create: invalid UsernsMode: "private" (expected "host", or nothing for a user namespace of the container\'s own)' });
  t.throws(() => parseHostSecurity({ SecurityOpt: ['systempaths=unconfined'] }, 'container create'), { status: 400, message: /^--security-opt "systempaths" is not supported by tether/ });
  t.throws(() => parseHostSecurity({ SecurityOpt: ['no-new-privileges:maybe'] }, 'container create'), { status: 400, message: /no-new-privileges takes true or false/ });
  t.same(parseHostSecurity({ SecurityOpt: ['no-new-privileges=false', 'seccomp=builtin'], UsernsMode: 'host', IpcMode: 'private' }, 'container create').security,
    { capabilities: resolveCapabilities([], [], false), seccomp: 'default' }, 'what asks for nothing new is accepted');
});

t.test('container processes start through a sealed in-memory copy of dist/confine, which not even root can change', { skip: noConfine }, async (t) => {
  openConfineNow();
  const { file, args } = confinedCommand('/bin/echo', ['echo', 'confined'], undefined, processConfinement(DEFAULT_SECURITY, false));
  t.match(readlinkSync(file), /^\/memfd:tether-confine/, 'a memory file, not the host\'s dist/confine');
  const writable = openSync(file, 'r+');
  t.throws(() => writeSync(writable, 'x'), { code: 'EPERM' }, 'sealed against writing');
  t.throws(() => ftruncateSync(writable, 0), { code: 'EPERM' }, 'and against shrinking');
  closeSync(writable);
  t.equal(spawnSync(file, args, { encoding: 'utf8' }).stdout, 'confined\n', 'and it runs');
});

t.test('a device at a path the guest fills itself is refused, naming the path and why', async (t) => {
  const at = (path: string) => ({ devices: [{ path, type: 'c', major: 1, minor: 3 }] });
  for (const [path, why] of [
    ['/dev/null', 'every container has that device already'],
    ['/dev/ptmx', 'the guest makes a link there'],
    ['/dev/fd/3', 'the guest makes a link there'],
    ['/dev/pts/0', 'the guest mounts a file system there'],
    ['/dev/shm/x', 'the guest mounts a file system there'],
  ]) {
    const error = t.throws(() => parseGuestConfig(document(at(path!)), 'test')) as { problems?: string[] };
    t.same(error.problems, [`security.devices[0].path: "${path}" cannot be given: ${why}`]);
  }
  t.doesNotThrow(() => parseGuestConfig(document(at('/dev/mynull')), 'test'), 'a path of its own is taken');
});
