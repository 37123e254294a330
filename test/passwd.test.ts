import t from 'tap';
import { parseGroup, parsePasswd, resolveUser } from '../shared/passwd.ts';

const PASSWD = `root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin

broken line without colons
bad:x:notanumber:1::/:/bin/sh
+::::::
nohome:x:1001:1001:::/bin/sh
1234:x:5000:5000:numeric name:/home/n:/bin/sh
`;

const GROUP = `root:x:0:
staff:x:50:alice,bob,www-data
www-data:x:33:
web:x:60:www-data,carol
again:x:60:www-data
bad:x:nan:
`;

const passwd = parsePasswd(PASSWD);
const groups = parseGroup(GROUP);

t.test('passwd parsing keeps well-formed entries and skips the rest', async (t) => {
  t.same(passwd.map((p) => p.name), ['root', 'daemon', 'www-data', 'nohome', '1234']);
  t.same(passwd[2], { name: 'www-data', uid: 33, gid: 33, home: '/var/www', shell: '/usr/sbin/nologin' });
});

t.test('group parsing reads members and skips malformed lines', async (t) => {
  t.same(groups, [
    { name: 'root', gid: 0, members: [] },
    { name: 'staff', gid: 50, members: ['alice', 'bob', 'www-data'] },
    { name: 'www-data', gid: 33, members: [] },
    { name: 'web', gid: 60, members: ['www-data', 'carol'] },
    { name: 'again', gid: 60, members: ['www-data'] },
  ]);
});

t.test('a user name takes uid, gid and home from passwd, and its supplementary groups from group, each once', async (t) => {
  t.same(resolveUser('www-data', passwd, groups), { uid: 33, gid: 33, home: '/var/www', groups: [50, 60] });
});

t.test('a numeric uid found in passwd takes its gid and home', async (t) => {
  t.same(resolveUser('1', passwd, groups), { uid: 1, gid: 1, home: '/usr/sbin', groups: [] });
});

t.test('a numeric uid not in passwd runs with gid 0 and HOME=/ (as runc does)', async (t) => {
  t.same(resolveUser('4242', passwd, groups), { uid: 4242, gid: 0, home: '/', groups: [] });
});

t.test('uid:gid uses both numbers as given', async (t) => {
  t.same(resolveUser('4242:99', passwd, groups), { uid: 4242, gid: 99, home: '/', groups: [] });
  t.same(resolveUser('33:0', passwd, groups), { uid: 33, gid: 0, home: '/var/www', groups: [50, 60] });
});

t.test('name:group resolves the group by name', async (t) => {
  t.same(resolveUser('www-data:staff', passwd, groups), { uid: 33, gid: 50, home: '/var/www', groups: [60] }, 'the primary group is not repeated as a supplementary one');
  t.same(resolveUser('4242:staff', passwd, groups), { uid: 4242, gid: 50, home: '/', groups: [] });
});

t.test('an entry without a home directory gets HOME=/', async (t) => {
  t.same(resolveUser('nohome', passwd, groups), { uid: 1001, gid: 1001, home: '/', groups: [] });
});

t.test('an all-digit spec is a uid, even when a user has that name', async (t) => {
  t.same(resolveUser('1234', passwd, groups), { uid: 1234, gid: 0, home: '/', groups: [] });
});

t.test('unknown names fail with a message naming them', async (t) => {
  t.throws(() => resolveUser('nobody-here', passwd, groups), { message: 'unable to find user "nobody-here": no matching entry in passwd' });
  t.throws(() => resolveUser('root:wheel', passwd, groups), { message: 'unable to find group "wheel": no matching entry in group' });
});

t.test('malformed specs and out-of-range IDs are refused', async (t) => {
  t.throws(() => resolveUser(':0', passwd, groups), { message: /invalid user ":0"/ });
  t.throws(() => resolveUser('root:', passwd, groups), { message: /invalid user "root:"/ });
  t.throws(() => resolveUser('4294967295', passwd, groups), { message: /uid 4294967295 is out of range/ });
  t.throws(() => resolveUser('0:4294967295', passwd, groups), { message: /gid 4294967295 is out of range/ });
  t.same(resolveUser('4294967294', passwd, groups).uid, 4294967294);
});

t.test('empty files resolve numbers only', async (t) => {
  t.same(resolveUser('0', [], []), { uid: 0, gid: 0, home: '/', groups: [] });
  t.throws(() => resolveUser('root', [], []), { message: /unable to find user "root"/ });
});
