import t from 'tap';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { type ApiHarness, type Credentials, newCallSid, startBody, startTestApi } from '../api/support/api-harness.js';
import { waitFor } from '../support/wait.js';
import { openSse, publishUtterances, utterance } from './support.js';

/**
 * The live transcript page's HTTP side on the embedded log: login by form, cookie sessions,
 * tenant isolation of the call list and the event stream, backlog and reconnects, limits.
 * Every JSON response is checked against the served /openapi.json by the harness. The browser
 * side is in live-page.e2e.test.ts.
 */
interface LiveCall {
  externalId: string;
  live: boolean;
  transcribing: boolean;
  utterances: number;
}

async function login(api: ApiHarness, who: Credentials): Promise<string> {
  const res = await api.call<{ apiId: string }>('POST', '/live/session', {
    as: null,
    json: { apiId: who.apiId, apiSecret: who.apiSecret },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.text}`);
  const cookie = /^(earshot_live=[^;]+)/.exec(res.headers['set-cookie'] ?? '')?.[1];
  if (!cookie) throw new Error('no session cookie');
  return cookie;
}

async function startCall(api: ApiHarness, who: Credentials): Promise<string> {
  const callSid = newCallSid();
  const res = await api.call('POST', '/mg-autotranscribe/v1/start-streaming', { as: who, json: startBody(callSid) });
  if (res.status !== 200) throw new Error(`start failed: ${res.status} ${res.text}`);
  return callSid;
}

t.test('the page is static and holds no credential; its assets load under a strict CSP', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false });
  const page = await api.call('GET', '/live', { as: null });
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
  t.notMatch(page.text, new RegExp(api.tenant.apiId), 'no api id in the page');
  t.notMatch(page.text, /<script>|on(click|load)=/i, 'no inline script');
  t.match(page.text, /<label for="api-secret">Secret<\/label>/, 'labelled inputs');
  const script = await api.call('GET', '/live/assets/live.js', { as: null });
  t.equal(script.status, 200);
  t.match(script.headers['content-type'], /^text\/javascript/);
  t.notMatch(script.text, /innerHTML/, 'text is never inserted as HTML');
  const style = await api.call('GET', '/live/assets/live.css', { as: null });
  t.match(style.headers['content-type'], /^text\/css/);
  t.equal((await api.call('GET', '/live/assets/other.js', { as: null })).status, 404, 'only the known files');
});

t.test('login: right credentials give an HttpOnly SameSite=Strict cookie; wrong ones 401; bad bodies 400', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false });
  const ok = await api.call<{ apiId: string; name: string; expiresAt: string }>('POST', '/live/session', {
    as: null,
    json: { apiId: api.tenant.apiId, apiSecret: api.tenant.apiSecret },
  });
  t.equal(ok.status, 200);
  t.equal(ok.body.apiId, api.tenant.apiId);
  t.equal(ok.body.name, 'tenant a');
  const cookie = ok.headers['set-cookie'] ?? '';
  t.match(cookie, /^earshot_live=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/live; Max-Age=3600; HttpOnly; SameSite=Strict$/);
  t.notMatch(cookie, new RegExp(api.tenant.apiSecret.replace(/[+/=]/g, '.')), 'the secret is not in the cookie');
  t.notMatch(ok.text, /apiSecret/, 'nor in the answer');

  const wrong = await api.call<{ error: { code: string; message: string } }>('POST', '/live/session', {
    as: null,
    json: { apiId: api.tenant.apiId, apiSecret: `${api.tenant.apiSecret}x` },
  });
  t.equal(wrong.status, 401);
  t.equal(wrong.body.error.code, '401-01');
  t.notOk(wrong.headers['set-cookie'], 'no cookie for a wrong secret');
  const unknown = await api.call('POST', '/live/session', { as: null, json: { apiId: 'app_nobody', apiSecret: 'x' } });
  t.equal(unknown.status, 401);
  const missing = await api.call<{ error: { message: string } }>('POST', '/live/session', { as: null, json: { apiId: api.tenant.apiId } });
  t.equal(missing.status, 400);
  t.match(missing.body.error.message, /apiSecret is required/);
  const form = await api.call('POST', '/live/session', {
    as: null,
    raw: 'apiId=a&apiSecret=b',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(form.status, 400, 'JSON only: a cross-site form post cannot log in');

  const who = await api.call<{ apiId: string }>('GET', '/live/session', {
    as: null,
    headers: { cookie: /^[^;]+/.exec(cookie)?.[0] ?? '' },
  });
  t.equal(who.status, 200);
  t.equal(who.body.apiId, api.tenant.apiId);
  t.equal((await api.call('GET', '/live/session', { as: null })).status, 401, 'no cookie: 401');
  const out = await api.call('POST', '/live/session/end', { as: null });
  t.match(out.headers['set-cookie'], /^earshot_live=; Path=\/live; Max-Age=0; HttpOnly; SameSite=Strict$/);
});

t.test('failed logins count towards the address limit: then 429 even for the right secret', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false, env: { EARSHOT_API_AUTH_FAILURES_PER_MINUTE: '3' } });
  for (let i = 0; i < 3; i++) {
    t.equal((await api.call('POST', '/live/session', { as: null, json: { apiId: api.tenant.apiId, apiSecret: 'wrong' } })).status, 401);
  }
  const limited = await api.call('POST', '/live/session', { as: null, json: { apiId: api.tenant.apiId, apiSecret: api.tenant.apiSecret } });
  t.equal(limited.status, 429);
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After');
  const metrics = await api.call('GET', '/metrics', { as: null });
  t.match(metrics.text, /earshot_api_live_logins_total\{outcome="refused"[^}]*\} 3/);
  t.match(metrics.text, /earshot_api_live_logins_total\{outcome="limited"[^}]*\} 1/);
});

t.test('tenant isolation: each app lists and streams only its own calls', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false });
  const a = api.tenant;
  const b = await api.newTenant('tenant b');
  const cookieA = await login(api, a);
  const cookieB = await login(api, b);
  const callA = await startCall(api, a);
  const callB = await startCall(api, b);

  const listOf = async (cookie: string) =>
    (await api.call<{ items: LiveCall[] }>('GET', '/live/calls', { as: null, headers: { cookie } })).body.items.map((c) => c.externalId);
  await waitFor('A sees its call', async () => (await listOf(cookieA)).includes(callA));
  t.same(await listOf(cookieA), [callA], 'A lists only its call');
  t.same(await listOf(cookieB), [callB], 'B lists only its call');
  t.equal((await api.call('GET', '/live/calls', { as: null })).status, 401, 'no cookie: 401');
  t.equal((await api.call('GET', '/live/calls', { as: null, headers: { cookie: `${cookieA}x` } })).status, 401, 'tampered cookie: 401');
  const asappHeaders = await api.call('GET', '/live/calls', { as: a });
  t.equal(asappHeaders.status, 401, 'the asapp-* headers are not a live session');

  const stolen = await openSse(`${api.url}/live/calls/${callA}/events`, { cookie: cookieB });
  t.equal(stolen.status, 404, "B cannot stream A's call");
  stolen.close();
  const unknown = await openSse(`${api.url}/live/calls/${newCallSid()}/events`, { cookie: cookieA });
  t.equal(unknown.status, 404, 'unknown call: the same 404');
  unknown.close();
  const badId = await openSse(`${api.url}/live/calls/not-a-call/events`, { cookie: cookieA });
  t.equal(badId.status, 400);
  badId.close();

  const watchA = await openSse(`${api.url}/live/calls/${callA}/events`, { cookie: cookieA });
  t.teardown(() => watchA.close());
  t.equal(watchA.status, 200);
  t.match(watchA.headers['content-type'], /^text\/event-stream/);
  await publishUtterances(api.runtime, [
    utterance({ callSid: callA, tenantId: a.apiId, text: 'for A', startMs: 1000 }),
    // Same Call SID under another tenant (a forged or misrouted event): never shown to A.
    utterance({ callSid: callA, tenantId: b.apiId, text: 'for B', startMs: 2000 }),
    utterance({ callSid: callB, tenantId: b.apiId, text: 'B call', startMs: 1000 }),
    utterance({
      callSid: callA,
      tenantId: a.apiId,
      text: 'A again',
      role: 'agent',
      startMs: 3000,
      occurredAtMs: 5_000_900,
      speechEndedAtMs: 5_000_000,
    }),
  ]);
  await waitFor('two utterances for A', () => watchA.events.length >= 2);
  const got = watchA.events.map((e) => JSON.parse(e.data) as { text: string; role: string; latencyMs: number; externalId: string });
  t.same(
    got.map((u) => [u.role, u.text]),
    [
      ['customer', 'for A'],
      ['agent', 'A again'],
    ],
  );
  t.equal(got[1]?.latencyMs, 900, 'latency = occurredAtMs - speechEndedAtMs');
  t.ok(
    watchA.events.every((e) => e.event === 'utterance' && e.id?.startsWith(callA)),
    'event type and id',
  );
  const list = await api.call<{ items: LiveCall[] }>('GET', '/live/calls', { as: null, headers: { cookie: cookieA } });
  t.match(list.body.items[0], { externalId: callA, live: true, transcribing: true, utterances: 2 });
});

t.test('a late or reconnecting watcher gets the backlog, after Last-Event-ID when given; duplicates shown once', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false });
  const cookie = await login(api, api.tenant);
  const callSid = await startCall(api, api.tenant);
  const first = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.teardown(() => first.close());
  const said = [1000, 3000, 5000].map((startMs) => utterance({ callSid, tenantId: api.tenant.apiId, startMs, text: `at ${startMs}` }));
  await publishUtterances(api.runtime, [...said, said[1] as (typeof said)[number]]); // a replay repeats one
  await waitFor('three utterances', () => first.events.length >= 3);

  const late = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.teardown(() => late.close());
  await waitFor('the backlog', () => late.events.length >= 3);
  t.same(
    late.events.map((e) => JSON.parse(e.data).text),
    ['at 1000', 'at 3000', 'at 5000'],
  );
  const resumed = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie, 'last-event-id': said[0]?.utteranceId ?? '' });
  t.teardown(() => resumed.close());
  await waitFor('the rest of the backlog', () => resumed.events.length >= 2);
  t.same(
    resumed.events.map((e) => JSON.parse(e.data).text),
    ['at 3000', 'at 5000'],
  );
  await new Promise((r) => setTimeout(r, 200));
  t.equal(first.events.length, 3, 'the replayed duplicate was not sent again');
});

t.test('rotating the secret or disabling the app ends its sessions, open streams included', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false });
  const admin = new AppAdmin(api.runtime.eventLog, api.runtime.credentials);
  const cookie = await login(api, api.tenant);
  t.equal((await api.call('GET', '/live/calls', { as: null, headers: { cookie } })).status, 200);
  await admin.rotateSecret(api.tenant.apiId);
  await waitFor('rotation applied', async () => (await api.call('GET', '/live/calls', { as: null, headers: { cookie } })).status === 401);
  t.pass('the old session is refused after rotation');

  const other = await api.newTenant('to disable');
  const otherCookie = await login(api, other);
  const callSid = await startCall(api, other);
  const watching = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie: otherCookie });
  t.equal(watching.status, 200);
  await publishUtterances(api.runtime, [utterance({ callSid, tenantId: other.apiId, startMs: 1000, text: 'before' })]);
  await waitFor('the first utterance', () => watching.events.length === 1);
  await admin.disable(other.apiId);
  await waitFor(
    'disable applied',
    async () => (await api.call('GET', '/live/calls', { as: null, headers: { cookie: otherCookie } })).status === 401,
  );
  t.pass('a disabled app’s session is refused');
  await publishUtterances(api.runtime, [utterance({ callSid, tenantId: other.apiId, startMs: 5000, text: 'after' })]);
  await watching.closed;
  t.same(
    watching.events.map((e) => JSON.parse(e.data).text),
    ['before'],
    'the open stream ends without sending what came after',
  );
});

t.test('limits: streams per app → 429; a browser that stops reading is cut off without holding up others', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false, env: { EARSHOT_LIVE_MAX_STREAMS_PER_APP: '2' } });
  const cookie = await login(api, api.tenant);
  const callSid = await startCall(api, api.tenant);
  const reader = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.teardown(() => reader.close());
  const stalled = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.teardown(() => stalled.close());
  stalled.response.pause(); // reads nothing more: the socket and the server's buffers fill up
  const third = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.equal(third.status, 429, 'a third stream of the app is refused');
  third.close();

  // ~16 MB of utterances, a few at a time as calls produce them (the reading client shares this
  // event loop, so it reads between batches): far more than the socket buffers and the 256 KiB
  // a browser may leave unread.
  const big = 'x'.repeat(16_000);
  const count = 1000;
  for (let i = 0; i < count; i += 10) {
    await publishUtterances(
      api.runtime,
      Array.from({ length: 10 }, (_, k) => utterance({ callSid, tenantId: api.tenant.apiId, startMs: (i + k) * 1000, text: big })),
    );
    await waitFor(`${i + 10} utterances at the reading browser`, () => reader.events.length >= i + 10);
  }
  await waitFor('the stalled browser cut off', async () =>
    /earshot_api_live_slow_clients_total\S* 1/.test((await api.call('GET', '/metrics', { as: null })).text),
  );
  stalled.response.resume();
  await stalled.closed;
  t.ok(stalled.events.length < count, `the stalled browser got ${stalled.events.length} before being cut off`);
  const fourth = await openSse(`${api.url}/live/calls/${callSid}/events`, { cookie });
  t.equal(fourth.status, 200, 'its slot is free again');
  fourth.close();
});
