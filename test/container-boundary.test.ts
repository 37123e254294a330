import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { sandboxUnsupported } from '../tools/sandbox.ts';
import { canary, snapshot } from './support/canary.ts';
import { docker, dockerMissing, eventually, startWorld, type World } from './support/world.ts';

// What a root process in a container can reach, tried as an attacker would,
// through the real docker CLI against containerVMs the appliance launches
// (issues 11 and 19): the host's files and secrets, the guest init and its
// serial link, the kernel's knobs and devices. Each attack has its control:
// what the container may do still works.

const skip = sandboxUnsupported() ?? dockerMissing();
if (skip) t.comment(`skipping the container boundary tests: ${skip}`);

/** `docker run --rm [options] host sh -c SCRIPT`, every error on stdout; the script's status is its last command's. */
async function rootShell(world: World, script: string, options: string[] = []) {
  const result = await docker(world, ['run', '--rm', ...options, 'host', 'sh', '-c', `exec 2>&1; ${script}`]);
  return result.stdout;
}

t.test('a host-image container deletes and overwrites host files in vain, and sees neither the appliance\'s state nor its API', { skip }, async (t) => {
  // A state directory in the host image's view, so only its hiding keeps it from the container.
  const world = await startWorld(t, { stateDir: '/var/lib' });
  const host = canary(t);
  const before = snapshot(host);
  const apiPort = new URL(world.appliance.api.replace(/^tcp:/, 'http:')).port;
  const output = await rootShell(world, [
    `cat ${host}/file`, `echo overwritten > ${host}/file`, `rm -rf ${host}/sub ${host}/file`, `ls -A ${host}`, 'echo ---',
    `ls -A ${world.stateDir} | wc -l`, `cat ${world.stateDir}/appliance_key`, 'echo ---',
    `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${apiPort}' && echo reached the API; true`,
  ].join('; '));
  const [writes, state, api] = output.split('---\n');
  t.equal(writes, 'the host\'s own\n', 'the container read the host\'s file, and its overwrite and removals succeeded inside');
  t.same(snapshot(host), before, 'the host\'s files are unchanged');
  t.match(state, /^0\n.*appliance_key: No such file or directory/s, 'the state directory is empty inside');
  t.notMatch(api, /reached the API/, 'the appliance\'s API is not on the container\'s loopback');
  t.match(api, /Connection refused/);
});

t.test('a root process in a container cannot open the serial link, nor the guest init\'s memory, descriptors or root', { skip }, async (t) => {
  const world = await startWorld(t);
  const output = await rootShell(world, [
    'ls /dev/ttyS0', 'head -c 1 /proc/1/mem', 'ls /proc/1/fd', 'ls /proc/1/root', 'grep -l "" /proc/1/fd/* 2>&1 | head -1',
    'id -u', 'ls /proc/self/fd >/dev/null && echo own fds readable',
  ].join('; '));
  t.match(output, /\/dev\/ttyS0.*No such file or directory/, 'no serial device in the container\'s /dev');
  t.match(output, /\/proc\/1\/mem.*Permission denied/);
  t.match(output, /\/proc\/1\/fd.*Permission denied/);
  t.match(output, /\/proc\/1\/root.*Permission denied/);
  t.match(output, /^0\nown fds readable\n$/m, 'as root, and its own /proc entries work');
});

t.test('a container cannot signal the guest init from its user namespace; with the guest\'s IDs, SIGUSR1 is reported and ignored: Node\'s inspector never listens', { skip }, async (t) => {
  const world = await startWorld(t);
  t.match(await rootShell(world, 'kill -USR1 1'), /Operation not permitted/, 'root in the user namespace holds no capability over the init');
  const run = await docker(world, ['run', '-d', '--userns=host', 'host', 'sh', '-c', 'kill -USR1 1; exec sleep 100000']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.teardown(() => docker(world, ['rm', '-f', id]));
  const console = join(world.stateDir, 'containers', id, 'console.log');
  await eventually(() => (readFileSync(console, 'utf8').includes('SIGUSR1 ignored') ? true : undefined), 'the guest to report the SIGUSR1');
  // The inspector would listen on 127.0.0.1:9229 (0x240D) in the containerVM's network namespace, which the container shares.
  const listening = await docker(world, ['exec', id, 'sh', '-c', 'cat /proc/net/tcp']);
  t.equal(listening.code, 0, listening.stderr);
  t.notMatch(listening.stdout, /:240D /, 'nothing listens on the inspector\'s port');
  t.notMatch(readFileSync(console, 'utf8'), /Debugger listening/);
});

t.test('the kernel\'s knobs are out of reach: cgroup mount and release_agent, core_pattern, drop_caches, /sys remount, masked files', { skip }, async (t) => {
  const world = await startWorld(t);
  const output = await rootShell(world, [
    'mkdir -p /mnt/cg', 'mount -t cgroup -o memory cgroup /mnt/cg && echo cgroup mounted', 'ls /sys/fs/cgroup/*/release_agent',
    'echo core > /proc/sys/kernel/core_pattern && echo core_pattern written', 'echo 3 > /proc/sys/vm/drop_caches && echo caches dropped',
    'mount -o remount,rw /sys && echo sys remounted', 'wc -c < /proc/keys', 'wc -c < /proc/timer_list', 'ls -A /sys/firmware | wc -l',
    'echo mine > /tmp/own && cat /tmp/own', 'grep ^Name /proc/$$/status',
  ].join('; '));
  t.notMatch(output, /cgroup mounted|core_pattern written|caches dropped|sys remounted/, output);
  t.match(output, /release_agent'?: No such file or directory/, 'no cgroup hierarchy in the container');
  t.match(output, /core_pattern: Read-only file system/);
  t.match(output, /drop_caches: Read-only file system/);
  t.match(output, /^0\n0\n0\n/m, '/proc/keys and /proc/timer_list read empty, /sys/firmware is empty');
  t.match(output, /^mine\nName:\ssh\n$/m, 'the container\'s own /tmp and /proc work');

  const privileged = await rootShell(world, 'grep -c -e " /proc/keys " -e " /proc/sys " /proc/self/mountinfo; true', ['--privileged']);
  t.equal(privileged, '0\n', '--privileged lifts the masks, as in Docker');
});

t.test('a device node cannot be made in the user namespace, and one made with the guest\'s IDs does not open; a --device one does', { skip }, async (t) => {
  const world = await startWorld(t);
  const script = 'mknod /tmp/kmsg c 1 11 && (exec 3</tmp/kmsg) && echo opened; mknod /dev/kmsg c 1 11 && (exec 3</dev/kmsg) && echo opened too; true';
  const inNamespace = await rootShell(world, script);
  t.notMatch(inNamespace, /opened/, inNamespace);
  t.match(inNamespace, /mknod: \/tmp\/kmsg: Operation not permitted/);
  const made = await rootShell(world, script, ['--userns=host']);
  t.notMatch(made, /opened/, made);
  t.match(made, /\/tmp\/kmsg: Permission denied/);
  t.match(made, /\/dev\/kmsg: Permission denied/);
  // Opened for writing: reading the kernel log also needs CAP_SYSLOG (dmesg_restrict), which Docker's default set lacks.
  for (const options of [[], ['--userns=host']]) {
    const given = await rootShell(world, 'ls -n /dev/kmsg; (exec 3>/dev/kmsg) && echo opened; true', ['--device', '/dev/kmsg', ...options]);
    t.match(given, /^c[-rw]{9} 1 0 0 .*\nopened\n$/, `the node --device gave is root's and opens (${options.join(' ') || 'user namespace'})`);
  }
});
