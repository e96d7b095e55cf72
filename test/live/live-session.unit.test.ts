import { randomBytes } from 'node:crypto';
import t from 'tap';
import { LiveSessions, readCookie, sessionCookie } from '../../apps/api/src/http/live/live-session.js';
import type { AppState } from '../../apps/shared/src/events.js';
import { AppDirectory } from '../../apps/shared/src/tenants/app-directory.js';

/** The live page's session cookie on its own: every way a value can be refused, with a controlled clock. */
function appState(fields: Partial<AppState> = {}): AppState {
  return {
    apiId: 'app_one',
    name: 'one',
    disabled: false,
    secretHash: 'scrypt$aaaa',
    webhookUrl: null,
    encryptedWebhookAuth: null,
    encryptedTwilioAuthToken: null,
    occurredAtMs: 1,
    ...fields,
  } as AppState;
}

t.test('a session is accepted until it expires, and only as issued', async (t) => {
  let now = 1_000_000;
  const directory = new AppDirectory();
  directory.apply(appState());
  const key = randomBytes(32);
  const sessions = new LiveSessions(key, directory, 60, () => now);
  const app = directory.get('app_one');
  if (!app) throw new Error('no app');
  const { value, expiresAtMs } = sessions.issue(app);
  t.equal(expiresAtMs, now + 60_000);
  t.match(sessions.check(value), { ok: true, app: { apiId: 'app_one' }, expiresAtMs });

  const [payload, mac] = value.split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), a: 'app_two' })).toString(
    'base64url',
  );
  t.same(sessions.check(`${forged}.${mac}`), { ok: false, reason: 'bad_signature' }, 'a changed payload');
  t.same(sessions.check(`${payload}.${mac.slice(0, -2)}`), { ok: false, reason: 'bad_signature' }, 'a cut signature');
  t.same(sessions.check(undefined), { ok: false, reason: 'missing' });
  t.same(sessions.check('abc'), { ok: false, reason: 'malformed' });
  t.same(sessions.check(`${payload}.${mac}.x`), { ok: false, reason: 'malformed' });
  t.same(sessions.check('x'.repeat(5000)), { ok: false, reason: 'malformed' }, 'oversized');
  t.same(new LiveSessions(randomBytes(32), directory, 60, () => now).check(value), { ok: false, reason: 'bad_signature' }, 'another key');

  now += 60_000;
  t.same(sessions.check(value), { ok: false, reason: 'expired' });
});

t.test('rotation, disabling and unknown apps end a session', async (t) => {
  const directory = new AppDirectory();
  directory.apply(appState());
  const sessions = new LiveSessions(randomBytes(32), directory, 60);
  const app = directory.get('app_one');
  if (!app) throw new Error('no app');
  const { value } = sessions.issue(app);
  directory.apply(appState({ secretHash: 'scrypt$bbbb', occurredAtMs: 2 }));
  t.same(sessions.check(value), { ok: false, reason: 'secret_rotated' });
  directory.apply(appState({ occurredAtMs: 3 }));
  t.equal(sessions.check(value).ok, true, 'the same secret hash again: valid');
  directory.apply(appState({ disabled: true, occurredAtMs: 4 }));
  t.same(sessions.check(value), { ok: false, reason: 'app_disabled' });
  const other = new LiveSessions(randomBytes(32), new AppDirectory(), 60);
  t.same(other.check(other.issue(app).value), { ok: false, reason: 'app_unknown' });
});

t.test('cookie header parsing and the Set-Cookie attributes', async (t) => {
  t.equal(readCookie('a=1; earshot_live=abc.def; b=2', 'earshot_live'), 'abc.def');
  t.equal(readCookie('earshot_livex=1', 'earshot_live'), undefined);
  t.equal(readCookie(undefined, 'earshot_live'), undefined);
  t.equal(sessionCookie('v', 30, true), 'earshot_live=v; Path=/live; Max-Age=30; HttpOnly; SameSite=Strict; Secure');
  t.equal(sessionCookie('v', 30, false), 'earshot_live=v; Path=/live; Max-Age=30; HttpOnly; SameSite=Strict');
});
