import { timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { callSid, webhookHarness } from './support/harness.js';
import { startOAuthServer } from './support/oauth-server.js';
import { createTestCa } from './support/pki.js';
import { type Receiver, startReceiver } from './support/receiver.js';

// Each auth mode of SPEC §8 against real HTTPS servers with certificates of the test's own
// CAs, and a real OAuth2 server (oidc-provider). Embedded event log; the same dispatcher runs
// on real Kafka in kafka.int.test.ts.
const dir = mkdtempSync(join(tmpdir(), 'earshot-webhook-pki-'));
const tenantCa = await createTestCa(dir, 'tenant');
const otherCa = await createTestCa(dir, 'other');
const serverCert = await tenantCa.issue('server', 'serverAuth');
const clientCert = await tenantCa.issue('tenant-client', 'clientAuth');
const strangerClient = await otherCa.issue('stranger-client', 'clientAuth');

const h = await webhookHarness();
const receivers: Receiver[] = [];
t.teardown(async () => {
  await h.cleanup();
  for (const r of receivers) await r.close();
  rmSync(dir, { recursive: true, force: true });
});
const receiver = async (...args: Parameters<typeof startReceiver>) => {
  const r = await startReceiver(...args);
  receivers.push(r);
  return r;
};
const same = (a: string | undefined, b: string) =>
  a !== undefined && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

t.test('custom CA: delivers the SPEC §8 transcript to a target signed by the tenant CA', async (t) => {
  const target = await receiver({ cert: serverCert.cert, key: serverCert.key });
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert });
  const call = callSid();
  const event = await h.utter(tenant, call, 1, { text: 'my card is ################', senderExternalId: 'cust-42' });
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'delivered');
  t.equal(outcome?.httpStatus, 200);
  t.equal(outcome?.attempt, 1);
  t.equal(outcome?.utteranceId, event.utteranceId);
  t.same(target.received[0]?.body, {
    type: 'transcript',
    externalConversationId: call,
    streamId: event.streamId,
    sender: { externalId: 'cust-42', role: 'customer' },
    autotranscribeResponse: { message: 'transcript', start: 1000, end: 1800, utterance: [{ text: 'my card is ################' }] },
  });
  t.equal(target.received[0]?.headers['content-type'], 'application/json');
  t.equal(target.received[0]?.headers['earshot-utterance-id'], event.utteranceId);
});

t.test('custom CA: a target whose certificate another CA signed is refused before anything is sent', async (t) => {
  const stranger = await otherCa.issue('server2', 'serverAuth');
  const target = await receiver({ cert: stranger.cert, key: stranger.key });
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert });
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'connection_error');
  t.match(outcome?.error, /certificate|self.signed|verify/i);
  t.equal(target.received.length, 0, 'the target received nothing');
});

t.test('without a custom CA the public roots are used: the test CA is not trusted', async (t) => {
  const target = await receiver({ cert: serverCert.cert, key: serverCert.key });
  const tenant = await h.tenant(target.url);
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'connection_error');
  t.equal(target.received.length, 0);
});

t.test('custom CA: the hostname is checked (a valid certificate for another name fails)', async (t) => {
  const elsewhere = await tenantCa.issue('server-elsewhere', 'serverAuth', 'DNS:hooks.example.com');
  const target = await receiver({ cert: elsewhere.cert, key: elsewhere.key });
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert });
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'connection_error');
  t.match(outcome?.error, /ALTNAME|does not match|not in the cert/i);
  t.equal(target.received.length, 0);
});

const mtlsServer = () => ({ cert: serverCert.cert, key: serverCert.key, ca: tenantCa.cert, requestCert: true, rejectUnauthorized: true });

t.test('mTLS: a target that requires a client certificate receives it', async (t) => {
  const target = await receiver(mtlsServer());
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert, clientCertPem: clientCert.cert, clientKeyPem: clientCert.key });
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'delivered');
  t.equal(target.received[0]?.clientCn, 'tenant-client', 'the receiver saw our client certificate');
});

t.test('mTLS: the target refuses a tenant without a client certificate', async (t) => {
  const target = await receiver(mtlsServer());
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert });
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'connection_error');
  t.ok(outcome?.error, 'with the TLS error');
  t.equal(target.received.length, 0);
});

t.test('mTLS: the target refuses a client certificate of a CA it does not trust', async (t) => {
  const target = await receiver(mtlsServer());
  const tenant = await h.tenant(target.url, { caPem: tenantCa.cert, clientCertPem: strangerClient.cert, clientKeyPem: strangerClient.key });
  await h.utter(tenant, callSid(), 1);
  const [outcome] = await h.finals(tenant, 1);
  t.equal(outcome?.outcome, 'connection_error');
  t.equal(target.received.length, 0);
});

t.test('secret token in a header: the right token is accepted, a wrong one refused with 401', async (t) => {
  const target = await receiver({ cert: serverCert.cert, key: serverCert.key }, (r) =>
    same(r.headers['x-hook-token'] as string | undefined, 'the-right-token') ? 200 : 401,
  );
  const good = await h.tenant(target.url, {
    caPem: tenantCa.cert,
    tokenName: 'X-Hook-Token',
    tokenValue: 'the-right-token',
    tokenIn: 'header',
  });
  const bad = await h.tenant(target.url, { caPem: tenantCa.cert, tokenName: 'X-Hook-Token', tokenValue: 'a-wrong-token' });
  await h.utter(good, callSid(), 1);
  await h.utter(bad, callSid(), 1);
  t.equal((await h.finals(good, 1))[0]?.outcome, 'delivered');
  const [refused] = await h.finals(bad, 1);
  t.equal(refused?.outcome, 'http_error');
  t.equal(refused?.httpStatus, 401);
  t.match(refused?.error, /target answered 401/);
  t.notMatch(JSON.stringify(h.deliveries), /right-token|wrong-token/, 'no token in any delivery event');
});

t.test('secret token in a query parameter: the right token is accepted, a wrong one refused', async (t) => {
  const target = await receiver({ cert: serverCert.cert, key: serverCert.key }, (r) =>
    same(new URL(r.url, 'https://x').searchParams.get('hook_token') ?? undefined, 'query-token-1') ? 200 : 403,
  );
  const good = await h.tenant(`${target.url}?site=7`, {
    caPem: tenantCa.cert,
    tokenName: 'hook_token',
    tokenValue: 'query-token-1',
    tokenIn: 'query',
  });
  const bad = await h.tenant(target.url, { caPem: tenantCa.cert, tokenName: 'hook_token', tokenValue: 'query-token-2', tokenIn: 'query' });
  await h.utter(good, callSid(), 1);
  await h.utter(bad, callSid(), 1);
  t.equal((await h.finals(good, 1))[0]?.outcome, 'delivered');
  t.match(
    target.received.find((r) => r.url.includes('query-token-1'))?.url,
    /^\/hook\?site=7&hook_token=query-token-1$/,
    'the url keeps its own query',
  );
  const [refused] = await h.finals(bad, 1);
  t.equal(refused?.outcome, 'http_error');
  t.equal(refused?.httpStatus, 403);
});

t.test('OAuth2 client_credentials', async (t) => {
  const client = { id: 'earshot-tenant', secret: 'client-secret-0123456789abcdef' };
  const oauth = await startOAuthServer(serverCert, client);
  t.teardown(() => oauth.close());
  let rejectNext = 0;
  const target = await receiver({ cert: serverCert.cert, key: serverCert.key }, async (r) => {
    const token = /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ''))?.[1];
    if (!token || !(await oauth.check(token))) return 401;
    if (rejectNext > 0) {
      rejectNext--;
      await oauth.revoke(token); // as if the provider had rotated it early
      return 401;
    }
    return 200;
  });
  const auth = { caPem: tenantCa.cert, oauthTokenUrl: oauth.tokenUrl, oauthClientId: client.id, oauthClientSecret: client.secret };

  await t.test('delivers with a bearer token; one token fetch for concurrent calls, then cached', async (t) => {
    const tenant = await h.tenant(target.url, auth);
    const calls = [callSid(), callSid(), callSid()];
    await Promise.all(calls.map((c) => h.utter(tenant, c, 1)));
    const first = await h.finals(tenant, 3);
    t.same(
      first.map((d) => d.outcome),
      ['delivered', 'delivered', 'delivered'],
    );
    t.equal(oauth.tokenRequests, 1, 'three concurrent deliveries shared one token fetch');
    for (const c of calls) await h.utter(tenant, c, 2);
    const all = await h.finals(tenant, 6);
    t.ok(all.every((d) => d.outcome === 'delivered'));
    t.equal(oauth.tokenRequests, 1, 'the cached token was reused');
    t.equal(h.app.dispatcher.target(tenant)?.oauth?.fetches, 1);
  });

  await t.test('a 401 from the target refreshes the token once and the message is delivered', async (t) => {
    const tenant = await h.tenant(target.url, auth);
    await h.utter(tenant, callSid(), 1);
    await h.finals(tenant, 1);
    const before = oauth.tokenRequests;
    rejectNext = 1;
    await h.utter(tenant, callSid(), 2);
    const [, second] = await h.finals(tenant, 2);
    t.equal(second?.outcome, 'delivered');
    t.equal(second?.attempt, 1, 'the refresh is part of the same try');
    t.equal(oauth.tokenRequests, before + 1, 'exactly one new token');
  });

  await t.test('a target that keeps answering 401 gets one refresh per message, not a loop', async (t) => {
    const always401 = await receiver({ cert: serverCert.cert, key: serverCert.key }, () => 401);
    const tenant = await h.tenant(always401.url, auth);
    const before = oauth.tokenRequests;
    await h.utter(tenant, callSid(), 1);
    const [outcome] = await h.finals(tenant, 1);
    t.equal(outcome?.outcome, 'http_error');
    t.equal(outcome?.httpStatus, 401);
    t.equal(always401.received.length, 2, 'sent, refreshed, sent once more');
    t.equal(oauth.tokenRequests, before + 2, 'the first token and one refresh');
  });

  await t.test('a token is fetched again before it expires, not after a 401', async (t) => {
    const shortLived = await startOAuthServer(serverCert, client, 2); // 2 s tokens: refreshed 0.2 s early
    t.teardown(() => shortLived.close());
    const strict = await receiver({ cert: serverCert.cert, key: serverCert.key }, async (r) => {
      const token = /^Bearer (.+)$/.exec(String(r.headers.authorization ?? ''))?.[1];
      return token && (await shortLived.check(token)) ? 200 : 401;
    });
    const tenant = await h.tenant(strict.url, { ...auth, oauthTokenUrl: shortLived.tokenUrl });
    const call = callSid();
    await h.utter(tenant, call, 1);
    await h.finals(tenant, 1);
    await new Promise((r) => setTimeout(r, 2000)); // the first token has expired by now
    await h.utter(tenant, call, 2);
    const all = await h.finals(tenant, 2);
    t.same(
      all.map((d) => d.outcome),
      ['delivered', 'delivered'],
    );
    t.equal(shortLived.tokenRequests, 2, 'a second token');
    t.equal(strict.received.length, 2, 'fetched ahead of expiry: the target never saw the expired token');
  });

  await t.test('a token endpoint that is down is reported as a connection error naming it', async (t) => {
    const tenant = await h.tenant(target.url, { ...auth, oauthTokenUrl: 'https://127.0.0.1:1/token' });
    await h.utter(tenant, callSid(), 1);
    const [outcome] = await h.finals(tenant, 1);
    t.equal(outcome?.outcome, 'connection_error');
    t.match(outcome?.error, /^oauth2 token endpoint https:\/\/127\.0\.0\.1:1\/token: .*ECONNREFUSED/);
  });

  await t.test('a wrong client secret is reported clearly and nothing reaches the target', async (t) => {
    const before = target.received.length;
    const tenant = await h.tenant(target.url, { ...auth, oauthClientSecret: 'not-the-secret' });
    await h.utter(tenant, callSid(), 1);
    const [outcome] = await h.finals(tenant, 1);
    t.equal(outcome?.outcome, 'http_error');
    t.equal(outcome?.httpStatus, null, 'the target was never contacted');
    t.match(outcome?.error, /oauth2 token endpoint .* answered 401 \(invalid_client/);
    t.equal(target.received.length, before);
    t.notMatch(JSON.stringify(h.deliveries), /not-the-secret|client-secret-0123/, 'no secret in any delivery event');
  });
});

t.test('webhook credentials are encrypted at rest in the apps topic', async (t) => {
  await h.tenant('https://127.0.0.1:9/hook', { tokenName: 'X-Key', tokenValue: 'plain-token-must-not-appear', retries: 2 });
  const records = await readToEnd(h.runtime.eventLog, TOPICS.apps);
  t.ok(records.length > 0);
  t.notMatch(JSON.stringify(records.map((r) => r.value)), /plain-token-must-not-appear|BEGIN PRIVATE KEY|client-secret/);
});
