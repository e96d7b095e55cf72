import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { getExpectedTwilioSignature } from 'twilio/lib/webhooks/webhooks.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { StreamTokens } from '../../apps/shared/src/tenants/stream-tokens.js';
import { createTestApp } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { type Harness, startHarness, upgradeStatus } from './support.js';

/** Refused upgrades get an HTTP status before any session exists; nothing reaches the log. */
const TWILIO_AUTH_TOKEN = 'twilio-auth-token-0123456789abcdef';

async function noSessionWasCreated(t: Test, h: Harness, acceptedBefore: number) {
  t.equal(await h.metric('earshot_ingest_upgrades_accepted_total'), acceptedBefore, 'no upgrade was accepted');
  t.equal(await h.metric('earshot_ingest_sessions_open'), 0, 'no session is open');
  t.same(h.events, [], 'nothing was produced');
}

t.test('token checks', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const rejected = (reason: string) => h.metric('earshot_ingest_upgrades_rejected_total', { reason });

  t.test('missing token: 401', async (t) => {
    t.equal(await upgradeStatus(`${h.server.url}/twilio-media/`), 401);
    t.equal(await upgradeStatus(`${h.server.url}/twilio-media`), 401);
    t.equal(await rejected('token_missing'), 2);
    await noSessionWasCreated(t, h, 0);
  });

  t.test('forged token (right key id, wrong key): 401', async (t) => {
    const forger = new StreamTokens([['embedded', new Uint8Array(randomBytes(32))]], 300);
    const { token } = await forger.issue(h.apiId);
    t.equal(await upgradeStatus(h.mediaUrl(token)), 401);
    const [header, payload, signature] = h.token.split('.') as [string, string, string];
    const otherTenant = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'app_x' }));
    t.equal(await upgradeStatus(h.mediaUrl(`${header}.${otherTenant.toString('base64url')}.${signature}`)), 401, 'edited claims');
    t.equal(await upgradeStatus(h.mediaUrl('not-a-jwt')), 401, 'not a JWT');
    t.equal(await rejected('token_bad_signature'), 2);
    t.equal(await rejected('token_malformed'), 1);
    await noSessionWasCreated(t, h, 0);
  });

  t.test('token expired by one second: 401; one with a second left still opens', async (t) => {
    const ttlMs = h.runtime.config.EARSHOT_STREAM_TOKEN_TTL_S * 1000;
    const expired = await h.runtime.tokens.issue(h.apiId, Date.now() - ttlMs - 1000);
    t.ok(expired.expiresAtMs <= Date.now() - 1000 + 999, 'expired about a second ago');
    t.equal(await upgradeStatus(h.mediaUrl(expired.token)), 401);
    t.equal(await rejected('token_expired'), 1);
    await noSessionWasCreated(t, h, 0);
    const lastSecond = await h.runtime.tokens.issue(h.apiId, Date.now() - ttlMs + 2000);
    t.equal(await upgradeStatus(h.mediaUrl(lastSecond.token)), 101);
  });

  t.test('token of a disabled app: 403', async (t) => {
    const other = await createTestApp(h.runtime, 'soon disabled');
    const { token } = await h.runtime.tokens.issue(other.apiId);
    await new AppAdmin(h.runtime.eventLog, h.runtime.credentials).disable(other.apiId, 'test');
    await waitFor('the directory sees the app disabled', () => h.runtime.apps.get(other.apiId)?.disabled === true);
    const accepted = await h.metric('earshot_ingest_upgrades_accepted_total');
    t.equal(await upgradeStatus(h.mediaUrl(token)), 403);
    t.equal(await rejected('app_disabled'), 1);
    t.equal(await h.metric('earshot_ingest_upgrades_accepted_total'), accepted);
  });

  t.test('a refusal carries the SPEC error shape', async (t) => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const headers = {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
      };
      get(`${h.server.url.replace(/^ws/, 'http')}/twilio-media/not-a-jwt`, { headers }, (response) => {
        let body = '';
        response.on('data', (chunk) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      }).on('error', reject);
    });
    t.match(JSON.parse(res.body), { error: { code: '401-01', message: /malformed/, requestId: /^[0-9a-f-]{36}$/ } });
  });
});

t.test('X-Twilio-Signature', async (t) => {
  t.test('when the app has a Twilio auth token: missing or wrong signature 401, correct one opens', async (t) => {
    const h = await startHarness({ twilioAuthToken: TWILIO_AUTH_TOKEN });
    t.teardown(() => h.close());
    const url = h.mediaUrl();
    t.equal(await upgradeStatus(url), 401, 'missing');
    const wrong = getExpectedTwilioSignature('another-accounts-token', url, {});
    t.equal(await upgradeStatus(url, { 'x-twilio-signature': wrong }), 401, 'signed with another auth token');
    const otherPath = getExpectedTwilioSignature(TWILIO_AUTH_TOKEN, `${h.server.url}/twilio-media/other`, {});
    t.equal(await upgradeStatus(url, { 'x-twilio-signature': otherPath }), 401, 'signed for another URL');
    t.equal(await h.metric('earshot_ingest_upgrades_rejected_total', { reason: 'signature_missing' }), 1);
    t.equal(await h.metric('earshot_ingest_upgrades_rejected_total', { reason: 'signature_invalid' }), 2);
    await noSessionWasCreated(t, h, 0);
    const signature = getExpectedTwilioSignature(TWILIO_AUTH_TOKEN, url, {});
    t.equal(await upgradeStatus(url, { 'x-twilio-signature': signature }), 101);
  });

  t.test('the signature covers the public wss:// URL when EARSHOT_INGEST_PUBLIC_URL is set', async (t) => {
    const h = await startHarness({ twilioAuthToken: TWILIO_AUTH_TOKEN, env: { EARSHOT_INGEST_PUBLIC_URL: 'wss://ingest.example.com' } });
    t.teardown(() => h.close());
    const local = getExpectedTwilioSignature(TWILIO_AUTH_TOKEN, h.mediaUrl(), {});
    t.equal(await upgradeStatus(h.mediaUrl(), { 'x-twilio-signature': local }), 401, 'not over the local URL');
    const publicSignature = getExpectedTwilioSignature(TWILIO_AUTH_TOKEN, `wss://ingest.example.com/twilio-media/${h.token}`, {});
    t.equal(await upgradeStatus(h.mediaUrl(), { 'x-twilio-signature': publicSignature }), 101);
  });

  t.test("'required' refuses apps without a Twilio auth token; 'off' ignores signatures", async (t) => {
    const required = await startHarness({ env: { EARSHOT_TWILIO_SIGNATURE: 'required' } });
    t.teardown(() => required.close());
    t.equal(await upgradeStatus(required.mediaUrl()), 403);
    t.equal(await required.metric('earshot_ingest_upgrades_rejected_total', { reason: 'signature_not_configured' }), 1);
    const off = await startHarness({ twilioAuthToken: TWILIO_AUTH_TOKEN, env: { EARSHOT_TWILIO_SIGNATURE: 'off' } });
    t.teardown(() => off.close());
    t.equal(await upgradeStatus(off.mediaUrl()), 101);
  });
});

t.test('clients that disconnect in the middle of their upgrade leave no session behind', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const { port } = h.server;
  await Promise.all(
    Array.from(
      { length: 50 },
      () =>
        new Promise<void>((resolve) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.write(
              `GET /twilio-media/${h.token} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
                `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
            );
            socket.destroy(); // gone before the (async) token check answers
            resolve();
          });
          socket.on('error', () => resolve());
        }),
    ),
  );
  await waitFor('every upgrade settled', async () => {
    const settled = (await h.metric('earshot_ingest_upgrades_accepted_total')) + (await h.metric('earshot_ingest_upgrades_rejected_total'));
    return settled === 50;
  });
  t.ok((await h.metric('earshot_ingest_upgrades_rejected_total', { reason: 'aborted' })) > 0, 'answers to departed clients are skipped');
  await waitFor('no session left open', async () => (await h.metric('earshot_ingest_sessions_open')) === 0);
  t.equal((await fetch(`${h.server.url.replace(/^ws/, 'http')}/healthz`)).status, 200);
});
