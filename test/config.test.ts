import t from 'tap';
import { ConfigError, DEFAULT_OUTPUT_LOG_BYTES, parseGuestConfig, type GuestConfig } from '../shared/config.ts';
import { parseSignal, signalName, signalNumber } from '../shared/signals.ts';

// A real ed25519 public key line (the blob starts with the encoded "ssh-ed25519").
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKW1xN7xCRnZOiyOuWOPU0crRbNQFUHXcvCNmE2aR6Ns appliance@host';
const HOST_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n';

function minimal(): Record<string, unknown> {
  return {
    id: 'c0ffee',
    name: 'web',
    hostname: 'web.example',
    sessions: { c0ffee: { cmd: ['/bin/sh', '-c', 'echo hi'] } },
    ssh: { hostKey: HOST_KEY, authorizedKeys: [PUBLIC_KEY] },
  };
}

function parse(doc: unknown): GuestConfig {
  return parseGuestConfig(JSON.stringify(doc), 'guest.json');
}

function configErrorOf(parseIt: () => unknown): ConfigError {
  try {
    parseIt();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function problemsOf(doc: unknown): string[] {
  return configErrorOf(() => parse(doc)).problems;
}

t.test('a minimal document gets every default', async (t) => {
  const config = parse(minimal());
  t.same(config.sessions.c0ffee, {
    cmd: ['/bin/sh', '-c', 'echo hi'],
    env: [],
    cwd: '/',
    tty: false,
    openStdin: false,
    runBlock: false,
    stopSignal: 'TERM',
    stopTimeout: 10,
    restart: { name: 'no' },
  });
  t.same(config.serial, { device: '/dev/ttyS0' });
  t.equal(config.rootfs, 'host');
  t.equal(config.logDir, '/var/log/tether');
  t.equal(config.outputLogBytes, DEFAULT_OUTPUT_LOG_BYTES);
  t.equal(config.outputLogBytes, 8 * 1024 * 1024);
});

t.test('a full document keeps every field it sets', async (t) => {
  const doc = {
    ...minimal(),
    sessions: {
      c0ffee: {
        cmd: ['nginx', '-g', 'daemon off;'],
        env: ['PATH=/usr/sbin:/usr/bin', 'EMPTY=', 'EQ=a=b'],
        cwd: '/srv',
        user: 'www-data:www-data',
        tty: true,
        openStdin: true,
        runBlock: true,
        stopSignal: 'SIGQUIT',
        stopTimeout: 3,
      },
      'exec-1.a_b': { cmd: ['sh'], user: '1000:1000', restart: 'on-failure:5' },
      always: { cmd: ['sh'], restart: 'always' },
    },
    serial: { device: 'tcp://127.0.0.1:2377' },
    outputLogBytes: 65536,
    rootfs: '/srv/rootfs',
    logDir: '/var/lib/tether/logs',
  };
  const config = parse(doc);
  t.same(config.sessions.c0ffee, { ...doc.sessions.c0ffee, stopSignal: 'QUIT', restart: { name: 'no' } });
  t.equal(config.sessions['exec-1.a_b']!.user, '1000:1000');
  t.same(config.sessions['exec-1.a_b']!.restart, { name: 'on-failure', maxRetries: 5 });
  t.same(config.sessions.always!.restart, { name: 'always' });
  t.equal(config.rootfs, '/srv/rootfs');
  t.equal(config.logDir, '/var/lib/tether/logs');
  t.equal(config.serial.device, 'tcp://127.0.0.1:2377');
  t.equal(config.outputLogBytes, 65536);
});

t.test('stopSignal is normalised to the name without SIG', async (t) => {
  for (const [given, expected] of [['TERM', 'TERM'], ['SIGTERM', 'TERM'], ['9', 'KILL'], ['sigint', 'INT'], ['SIGRTMIN+3', 'RTMIN+3'], ['IOT', 'ABRT']]) {
    const doc = minimal();
    (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.stopSignal = given;
    t.equal(parse(doc).sessions.c0ffee!.stopSignal, expected, given);
  }
});

t.test('a command too long for the info packet is refused, saying what to do', async (t) => {
  const doc = minimal();
  (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.cmd = ['sh', '-c', 'x'.repeat(20_000)];
  t.same(problemsOf(doc), ['sessions.c0ffee.cmd: at most 16384 bytes in all (it travels in one SSH packet with the session\'s info), got 20016; put a long script in a file']);
});

t.test('stop timeouts, restart policies and paths are checked', async (t) => {
  const doc = minimal();
  doc.sessions = {
    c0ffee: { cmd: ['sh'], restart: 'always' },
    e1: { cmd: ['sh'], stopTimeout: -1, restart: 'always:3' },
    e2: { cmd: ['sh'], stopTimeout: 1.5, restart: 'sometimes' },
  };
  (doc as Record<string, unknown>).rootfs = 'rootfs';
  t.same(problemsOf(doc), [
    'sessions.e1.stopTimeout: expected whole seconds from 0 to 86400, got -1',
    'sessions.e1.restart: expected "no", "always", "on-failure" or "on-failure:N", got "always:3"',
    'sessions.e2.stopTimeout: expected whole seconds from 0 to 86400, got 1.5',
    'sessions.e2.restart: expected "no", "always", "on-failure" or "on-failure:N", got "sometimes"',
    'rootfs: expected an absolute path, got "rootfs"',
  ]);
  doc.sessions = { c0ffee: { cmd: ['sh'], restart: 'always' } };
  delete (doc as Record<string, unknown>).rootfs;
  t.same(problemsOf(doc), ['sessions.c0ffee.restart: the primary session cannot have a restart policy (the container ends with it); expected "no"']);
});

t.test('an error names the field and the offending value', async (t) => {
  const doc = minimal();
  doc.sessions = { web: { cmd: [3] } };
  doc.id = 'web';
  t.same(problemsOf(doc), ['sessions.web.cmd[0]: expected a non-empty string, got 3']);
});

t.test('all problems are reported, not only the first', async (t) => {
  const problems = problemsOf({
    id: 'bad id!',
    name: '-web',
    hostname: 'a..b',
    sessions: { 'x y': { cmd: [], env: ['=v', 'novalue'], cwd: 'rel', user: 'a:b:c', tty: 'yes', stopSignal: 'NOPE' } },
    ssh: { hostKey: 'ssh-ed25519 AAAA', authorizedKeys: ['not a key'] },
    serial: { device: 'tcp://host:99999' },
    outputLogBytes: 100,
  });
  const expected = [
    /^id: expected a container ID/,
    /^name: expected a Docker-style name/,
    /^hostname: expected an RFC 1123 host name/,
    /^sessions\["x y"\]: invalid session ID/,
    /^sessions\["x y"\]\.cmd: expected a non-empty array/,
    /^sessions\["x y"\]\.env\[0\]: expected "KEY=VALUE" with a non-empty KEY, got "=v"/,
    /^sessions\["x y"\]\.env\[1\]: expected "KEY=VALUE"/,
    /^sessions\["x y"\]\.cwd: expected an absolute path, got "rel"/,
    /^sessions\["x y"\]\.user: expected a user/,
    /^sessions\["x y"\]\.tty: expected true or false, got "yes"/,
    /^sessions\["x y"\]\.stopSignal: expected a signal name or number/,
    /^ssh\.hostKey: expected a PEM or OpenSSH private key/,
    /^ssh\.authorizedKeys\[0\]: expected an OpenSSH public key line/,
    /^serial\.device: expected a device path/,
    /^outputLogBytes: expected an integer from 65536/,
  ];
  for (const re of expected) t.ok(problems.some((p) => re.test(p)), `reports ${re}`);
  t.equal(problems.length, expected.length, 'and nothing else');
});

t.test('the error message names the source file and lists each problem', async (t) => {
  const doc = minimal();
  doc.outputLogBytes = 1.5;
  doc.hostname = 7;
  const err = configErrorOf(() => parse(doc));
  t.match(err.message, /^invalid guest configuration in guest\.json:\n {2}- hostname: expected an RFC 1123 host name.*\n {2}- outputLogBytes: expected an integer/);
});

t.test('invalid JSON is a ConfigError naming the source', async (t) => {
  const err = configErrorOf(() => parseGuestConfig('{"id": ', '/etc/tether.json'));
  t.match(err.message, /in \/etc\/tether\.json:/);
  t.match(err.problems, [/^not valid JSON: /]);
});

t.test('the primary session must exist, and the error names it', async (t) => {
  const doc = minimal();
  doc.sessions = { other: { cmd: ['sh'] } };
  t.same(problemsOf(doc), ['sessions: the primary session "c0ffee" (the session whose ID equals id) is missing']);
});

t.test('a missing primary is reported even when another session is broken', async (t) => {
  const doc = minimal();
  doc.sessions = { other: { cmd: 'sh' } };
  t.equal(problemsOf(doc).length, 2);
});

t.test('sessions must not be empty', async (t) => {
  const doc = minimal();
  doc.sessions = {};
  t.ok(problemsOf(doc).includes('sessions: expected at least one session'));
});

t.test('unknown fields are errors at every level', async (t) => {
  const doc = minimal();
  doc.sesions = {};
  (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.stdinOnce = true;
  (doc.ssh as Record<string, unknown>).hostkey = 'x';
  doc.serial = { device: '/dev/ttyS1', baud: 9600 };
  const problems = problemsOf(doc);
  t.same(problems.map((p) => p.split(':')[0]), ['sesions', 'sessions.c0ffee.stdinOnce', 'ssh.hostkey', 'serial.baud']);
  t.match(problems[0], /unknown field \(expected one of: id, name, hostname, sessions/);
});

t.test('required fields are named when missing', async (t) => {
  t.same(problemsOf({}), ['id: required', 'name: required', 'hostname: required', 'sessions: required', 'ssh: required']);
  const doc = minimal();
  doc.sessions = { c0ffee: {} };
  doc.ssh = {};
  t.same(problemsOf(doc), ['sessions.c0ffee.cmd: required', 'ssh.hostKey: required', 'ssh.authorizedKeys: required']);
});

t.test('the document must be an object', async (t) => {
  t.same(problemsOf([1]), ['(document): expected an object, got an array']);
});

t.test('IDs allow 1 to 128 characters of [A-Za-z0-9_.-]', async (t) => {
  for (const id of ['a', 'A-b_c.9', 'x'.repeat(128)]) {
    const doc = minimal();
    doc.id = id;
    doc.sessions = { [id]: { cmd: ['sh'] } };
    t.equal(parse(doc).id, id);
  }
  for (const id of ['', 'x'.repeat(129), 'a/b', 'a b']) {
    const doc = minimal();
    doc.id = id;
    t.match(problemsOf(doc)[0], /^id: expected a container ID/, JSON.stringify(id));
  }
});

t.test('a session ID like __proto__ stays an ordinary key', async (t) => {
  // JSON.parse makes "__proto__" an own key; the validator must keep it one.
  const text = JSON.stringify(minimal()).replace('"sessions":{', '"sessions":{"__proto__":{"cmd":["x"]},');
  const config = parseGuestConfig(text, 'guest.json');
  t.ok(Object.hasOwn(config.sessions, '__proto__'));
  t.equal(Object.getPrototypeOf(config.sessions), Object.prototype);
});

t.test('host names follow RFC 1123', async (t) => {
  const ok = ['a', 'web-1', 'a.b.c', '1abc', `${'a'.repeat(63)}.b`, Array(4).fill('x'.repeat(62)).join('.')];
  const bad = ['', '-a', 'a-', 'a_b', `${'a'.repeat(64)}`, 'a..b', '.a', Array(5).fill('x'.repeat(62)).join('.')];
  for (const hostname of ok) t.equal(parse({ ...minimal(), hostname }).hostname, hostname, hostname);
  for (const hostname of bad) t.match(problemsOf({ ...minimal(), hostname })[0], /^hostname:/, hostname);
});

t.test('Docker-style names start with an alphanumeric', async (t) => {
  t.equal(parse({ ...minimal(), name: 'a.b_c-d' }).name, 'a.b_c-d');
  for (const name of ['_a', '.a', 'a b', '']) t.match(problemsOf({ ...minimal(), name })[0], /^name:/, name);
});

t.test('user specs take the four Docker shapes', async (t) => {
  for (const user of ['root', '1000', '1000:1000', 'www-data:staff']) {
    const doc = minimal();
    (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.user = user;
    t.equal(parse(doc).sessions.c0ffee!.user, user);
  }
  for (const user of ['', ':', 'a:', ':b', 'a b', 'a:b:c', 5]) {
    const doc = minimal();
    (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.user = user;
    t.match(problemsOf(doc)[0], /^sessions\.c0ffee\.user: expected a user/, String(user));
  }
});

t.test('strings that exec cannot carry (NUL bytes) are rejected', async (t) => {
  const doc = minimal();
  (doc.sessions as Record<string, Record<string, unknown>>).c0ffee!.cmd = ['sh', 'a\0b'];
  t.same(problemsOf(doc), ['sessions.c0ffee.cmd[1]: expected a non-empty string without NUL bytes, got "a\\u0000b"']);
});

t.test('serial devices are absolute paths or tcp://HOST:PORT', async (t) => {
  for (const device of ['/dev/ttyS1', 'tcp://localhost:2377', 'tcp://[::1]:1', 'tcp://10.0.0.1:65535']) {
    t.equal(parse({ ...minimal(), serial: { device } }).serial.device, device);
  }
  t.equal(parse({ ...minimal(), serial: {} }).serial.device, '/dev/ttyS0');
  for (const device of ['ttyS0', 'tcp://host', 'tcp://host:0', 'tcp://host:65536', 'udp://host:1']) {
    t.match(problemsOf({ ...minimal(), serial: { device } })[0], /^serial\.device:/, device);
  }
});

t.test('outputLogBytes is an integer from 64 KiB to 1 GiB', async (t) => {
  t.equal(parse({ ...minimal(), outputLogBytes: 1024 ** 3 }).outputLogBytes, 1024 ** 3);
  for (const outputLogBytes of [65535, 1024 ** 3 + 1, 100000.5, '1000000']) {
    t.match(problemsOf({ ...minimal(), outputLogBytes })[0], /^outputLogBytes:/, String(outputLogBytes));
  }
});

t.test('authorized keys need a key type and a base64 blob of that type', async (t) => {
  const [type, blob] = PUBLIC_KEY.split(' ');
  t.equal(parse({ ...minimal(), ssh: { hostKey: HOST_KEY, authorizedKeys: [`${type} ${blob}`] } }).ssh.authorizedKeys.length, 1);
  for (const line of [`${type}`, `ssh-rsa ${blob} mislabelled`, `${type} !!!notbase64`, `${type} AAAAA`, `${type} AAAA`, 'AAAA ssh-ed25519']) {
    const problems = problemsOf({ ...minimal(), ssh: { hostKey: HOST_KEY, authorizedKeys: [line] } });
    t.match(problems[0], /^ssh\.authorizedKeys\[0\]: expected an OpenSSH public key line/, line);
  }
  t.same(problemsOf({ ...minimal(), ssh: { hostKey: HOST_KEY, authorizedKeys: [] } }), ['ssh.authorizedKeys: expected a non-empty array']);
});

t.test('a bad host key is reported without echoing the key material', async (t) => {
  const secret = 'AAAAsecretmaterial';
  const problems = problemsOf({ ...minimal(), ssh: { hostKey: secret, authorizedKeys: [PUBLIC_KEY] } });
  t.equal(problems.length, 1);
  t.notMatch(problems[0], secret);
  t.match(problems[0], /^ssh\.hostKey:/);
});

t.test('signal table: Linux x86-64 numbers both ways, RT signals as Docker names them', async (t) => {
  t.equal(signalNumber('TERM'), 15);
  t.equal(signalNumber('KILL'), 9);
  t.equal(signalNumber('USR1'), 10);
  t.equal(signalNumber('SYS'), 31);
  t.equal(signalNumber('RTMIN'), 34);
  t.equal(signalNumber('RTMIN+15'), 49);
  t.equal(signalNumber('RTMAX-14'), 50);
  t.equal(signalNumber('RTMAX'), 64);
  t.equal(signalNumber('RTMIN-1'), undefined);
  t.equal(signalNumber('SIGTERM'), undefined, 'signalNumber takes canonical names only');
  t.equal(signalName(50), 'RTMAX-14');
  t.equal(signalName(32), undefined, 'glibc-reserved signals have no name');
  for (let n = 1; n <= 64; n++) {
    const name = signalName(n);
    if (name !== undefined) t.equal(signalNumber(name), n, `${name} round-trips`);
  }
  t.equal(parseSignal('SIGRTMIN+20'), 'RTMAX-10');
  t.equal(parseSignal(' hup '), 'HUP');
  t.equal(parseSignal('0'), undefined);
  t.equal(parseSignal('65'), undefined);
  t.equal(parseSignal('SIG'), undefined);
});
