import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateKeyPair, publicKeyBlob } from '../actors/ssh/keys.ts';
import { assignToGuest, identifyGuest, registerGuest, unregisterGuest } from '../appliance/trust.ts';

// The trust store: only a launcher writes it, and what it holds of one
// containerVM no other registration overwrites.

function store(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'tether-trust-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const key = () => generateKeyPair('test').publicKey;
const identify = (dir: string, publicKey: string) => identifyGuest(dir, publicKeyBlob(publicKey));

t.test('a registered containerVM is identified by its host key, with the IDs its launcher assigned it', async (t) => {
  const dir = store(t);
  const a = key();
  registerGuest(dir, 'vm-a', a, ['vm-a', 'side']);
  t.same(identify(dir, a), { vm: 'vm-a', assigned: ['side', 'vm-a'] });
  t.equal(identify(dir, key()), undefined, 'a stranger is nobody');
});

t.test('registering a containerVM already registered with another key is refused, and its entry stays', async (t) => {
  const dir = store(t);
  const real = key();
  registerGuest(dir, 'c1', real, ['c1']);
  const impostor = key();
  t.throws(() => registerGuest(dir, 'c1', impostor, ['c1']), {
    message: /^cannot register containerVM "c1": it is registered already, with another host key \(.*guests\/c1\.pub\); a containerVM's launcher removes its entry when the VM is gone$/,
  });
  t.same(identify(dir, real), { vm: 'c1', assigned: ['c1'] }, 'the real one is still trusted');
  t.equal(identify(dir, impostor), undefined, 'the other key is not');
});

t.test('registering a containerVM with an ID assigned to another is refused, and nothing of it is kept', async (t) => {
  const dir = store(t);
  registerGuest(dir, 'c1', key(), ['c1']);
  const impostor = key();
  t.throws(() => registerGuest(dir, 'imp', impostor, ['imp', 'mine', 'c1']), {
    message: 'cannot register containerVM "imp": container ID c1 is assigned to containerVM c1',
  });
  t.equal(identify(dir, impostor), undefined, 'its key is not trusted');
  // The IDs it claimed before the refusal are free again.
  const later = key();
  registerGuest(dir, 'other', later, ['other', 'mine']);
  t.same(identify(dir, later), { vm: 'other', assigned: ['mine', 'other'] });
});

t.test('registering the same containerVM again with its own key is not refused', async (t) => {
  const dir = store(t);
  const a = key();
  registerGuest(dir, 'vm-a', a, ['vm-a']);
  registerGuest(dir, 'vm-a', a, ['vm-a', 'more']);
  t.same(identify(dir, a), { vm: 'vm-a', assigned: ['more', 'vm-a'] });
});

t.test('an unregistered containerVM is trusted no more and its IDs are free', async (t) => {
  const dir = store(t);
  const a = key();
  registerGuest(dir, 'vm-a', a, ['vm-a', 'side']);
  assignToGuest(dir, 'vm-a', 'exec-1');
  unregisterGuest(dir, 'vm-a');
  t.equal(identify(dir, a), undefined);
  const b = key();
  registerGuest(dir, 'vm-b', b, ['vm-b', 'side', 'exec-1']);
  t.same(identify(dir, b), { vm: 'vm-b', assigned: ['exec-1', 'side', 'vm-b'] });
});

t.test('an exec session is assigned to its containerVM, never to one that holds another\'s ID', async (t) => {
  const dir = store(t);
  const a = key();
  registerGuest(dir, 'vm-a', a, ['vm-a']);
  registerGuest(dir, 'vm-b', key(), ['vm-b']);
  assignToGuest(dir, 'vm-a', 'exec-1');
  t.same(identify(dir, a), { vm: 'vm-a', assigned: ['exec-1', 'vm-a'] });
  t.throws(() => assignToGuest(dir, 'vm-b', 'exec-1'), { message: 'cannot assign session exec-1 to containerVM vm-b: container ID exec-1 is assigned to containerVM vm-a' });
  t.equal(readFileSync(join(dir, 'guests', 'assigned', 'exec-1'), 'utf8'), 'vm-a\n');
});

t.test('names that are not file names are refused', async (t) => {
  const dir = store(t);
  t.throws(() => registerGuest(dir, '..', key(), []), { message: /^cannot register containerVM "\.\.": the name must match/ });
  t.throws(() => registerGuest(dir, 'vm-a', key(), ['vm-a', '..']), { message: /^cannot register containerVM "vm-a": container ID "\.\." must match/ });
  t.throws(() => assignToGuest(dir, 'vm-a', 'a/b'), { message: /^cannot assign session "a\/b" to containerVM vm-a: the ID must match/ });
});
