import t from 'tap';
import { AppAdmin } from '../../../apps/shared/src/tenants/app-admin.js';
import { CredentialBox } from '../../../apps/shared/src/tenants/credential-box.js';
import { hashSecret, verifySecret } from '../../../apps/shared/src/tenants/secret-hash.js';
import { StreamTokens } from '../../../apps/shared/src/tenants/stream-tokens.js';
import { createTestApp, testRuntime } from '../../support/runtime.js';

t.test('secrets are stored as salted scrypt hashes and verified', async (t) => {
  const a = await hashSecret('s3cret');
  const b = await hashSecret('s3cret');
  t.match(a, /^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
  t.not(a, b, 'salted: the same secret hashes differently');
  t.notMatch(a, /s3cret/);
  t.ok(await verifySecret('s3cret', a));
  t.notOk(await verifySecret('s3cret!', a));
  t.notOk(await verifySecret('s3cret', 'scrypt$1$1$1$x$y'), 'a malformed hash never matches');
  t.notOk(await verifySecret('s3cret', 'bcrypt$whatever'));
});

t.test('credentials are sealed with AES-GCM and refuse a wrong key or tampering', async (t) => {
  const box = new CredentialBox(Buffer.alloc(32, 1));
  const sealed = box.seal('twilio-auth-token');
  t.match(sealed, /^v1:/);
  t.notMatch(sealed, /twilio-auth-token/);
  t.equal(box.open(sealed), 'twilio-auth-token');
  t.throws(() => new CredentialBox(Buffer.alloc(32, 2)).open(sealed), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /not the key it was sealed with/,
  });
  const parts = sealed.split(':');
  parts[3] = Buffer.from('tampered').toString('base64url');
  t.throws(() => box.open(parts.join(':')), { code: 'EARSHOT_CONFIG_INVALID' });
  t.throws(() => box.open('garbage'), { message: /unknown format/ });
  t.throws(() => new CredentialBox(Buffer.alloc(16)), { message: /32 bytes/ });
});

t.test('stream tokens carry the tenant, expire, and rotate by key id', async (t) => {
  const oldKey = new Uint8Array(32).fill(1);
  const newKey = new Uint8Array(32).fill(2);
  const before = new StreamTokens([['old', oldKey]], 300);
  const during = new StreamTokens(
    [
      ['new', newKey],
      ['old', oldKey],
    ],
    300,
  );
  const after = new StreamTokens([['new', newKey]], 300);
  const now = 1_764_000_000_000;
  const { token, expiresAtMs } = await before.issue('app_a', now);
  t.equal(expiresAtMs, now + 300_000);
  t.equal((await during.verify(token, now)).apiId, 'app_a', 'old tokens still work while both keys are listed');
  const fresh = await during.issue('app_b', now);
  t.equal((await after.verify(fresh.token, now)).apiId, 'app_b', 'new tokens are signed with the first key');
  const reason = async (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (e: { fields?: { reason?: string } }) => e.fields?.reason,
    );
  t.equal(await reason(after.verify(token, now)), 'unknown_key', 'a dropped key no longer verifies');
  t.equal(await reason(before.verify(token, now + 300_000)), 'expired', 'expired at exactly its TTL');
  t.equal(await reason(before.verify(token, now + 299_000)), 'accepted', 'valid one second before');
  const forged = new StreamTokens([['old', new Uint8Array(32).fill(9)]], 300);
  t.equal(await reason(before.verify((await forged.issue('app_a', now)).token, now)), 'bad_signature', 'forged with another key');
  t.equal(await reason(before.verify('not.a.jwt', now)), 'malformed');
  t.equal(await reason(before.verify('', now)), 'malformed');
});

t.test('apps are created, rotated, disabled and seen by the directory (embedded log)', async (t) => {
  const runtime = await testRuntime();
  t.teardown(() => runtime.cleanup());
  const admin = new AppAdmin(runtime.eventLog, runtime.credentials);
  const { apiId, apiSecret } = await createTestApp(runtime, 'acme');
  t.ok(await runtime.apps.authenticate(apiId, apiSecret), 'the secret authenticates');
  t.ok(await runtime.apps.authenticate(apiId, apiSecret), 'again, from the cache');
  t.equal(await runtime.apps.authenticate(apiId, `${apiSecret}x`), null, 'a wrong secret does not');
  t.equal(await runtime.apps.authenticate('app_unknown', apiSecret), null, 'an unknown app does not');

  const rotated = await admin.rotateSecret(apiId);
  await waitUntil(
    () =>
      runtime.apps.get(apiId)?.secretHash !== undefined &&
      runtime.apps.get(apiId)?.updatedAtMs !== undefined &&
      runtime.apps.list().length === 1,
  );
  await waitUntil(async () => (await runtime.apps.authenticate(apiId, rotated.apiSecret)) !== null);
  t.equal(await runtime.apps.authenticate(apiId, apiSecret), null, 'the old secret stops working after rotation');

  await admin.disable(apiId);
  await waitUntil(() => runtime.apps.get(apiId)?.disabled === true);
  t.equal(await runtime.apps.authenticate(apiId, rotated.apiSecret), null, 'a disabled app is refused');
  const list = await admin.list();
  t.same(list, [{ apiId, name: 'acme', disabled: true, webhookUrl: null, twilioSignatureCheck: false }]);
  t.notMatch(JSON.stringify(list), /scrypt|secret/i, 'no secret material in the listing');
});

t.test('admin refuses bad input with precise messages', async (t) => {
  const runtime = await testRuntime();
  t.teardown(() => runtime.cleanup());
  const admin = new AppAdmin(runtime.eventLog, runtime.credentials);
  await t.rejects(admin.create({ name: '  ' }), { code: 'EARSHOT_USAGE', message: /--name must be 1 to 200 characters/ });
  await t.rejects(admin.create({ name: 'x', webhookUrl: 'ftp://x' }), { message: /must be http\(s\)/ });
  await t.rejects(admin.create({ name: 'x', webhookUrl: 'https://user:pw@x' }), { message: /must not carry credentials/ });
  await t.rejects(admin.rotateSecret('app_nope'), { code: 'EARSHOT_APP_NOT_FOUND', message: /no app with api id app_nope/ });
});

async function waitUntil(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 20));
  }
}
