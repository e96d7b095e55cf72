import t from 'tap';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { waitFor } from '../support/wait.js';
import { credentialHeaders, newCallSid, startBody, startTestApi } from './support/api-harness.js';

/** SPEC §2 credentials, §3.6 rate limits and routing errors; every response checked against /openapi.json by the harness. */
const STREAM_URL = '/mg-autotranscribe/v1/twilio-media-stream-url';
const START = '/mg-autotranscribe/v1/start-streaming';

type ErrorBody = { error: { requestId: string; code: string; message: string } };

t.test('missing credentials are 401, naming the missing header', async (t) => {
  const api = await startTestApi(t);
  const none = await api.call<ErrorBody>('GET', STREAM_URL, { as: null });
  t.equal(none.status, 401);
  t.equal(none.body.error.message, 'missing credentials: the asapp-api-id and asapp-api-secret headers are required');
  const noSecret = await api.call<ErrorBody>('GET', STREAM_URL, { as: null, headers: { 'asapp-api-id': api.tenant.apiId } });
  t.equal(noSecret.status, 401);
  t.equal(noSecret.body.error.message, 'missing credentials: the asapp-api-secret header is required');
  const noId = await api.call<ErrorBody>('POST', START, {
    as: null,
    headers: { 'asapp-api-secret': api.tenant.apiSecret },
    json: startBody(newCallSid()),
  });
  t.equal(noId.status, 401);
  t.equal(noId.body.error.message, 'missing credentials: the asapp-api-id header is required');
});

t.test('wrong credentials are 401 and say nothing about which part was wrong', async (t) => {
  const api = await startTestApi(t);
  const other = await api.newTenant();
  const attempts = [
    { apiId: api.tenant.apiId, apiSecret: `${api.tenant.apiSecret}x` },
    { apiId: 'app_doesnotexist', apiSecret: api.tenant.apiSecret },
    { apiId: api.tenant.apiId, apiSecret: other.apiSecret },
    { apiId: api.tenant.apiId, apiSecret: 's'.repeat(5000) },
  ];
  for (const as of attempts) {
    const res = await api.call<ErrorBody>('GET', STREAM_URL, { as });
    t.equal(res.status, 401);
    t.equal(res.body.error.message, 'invalid credentials: asapp-api-id and asapp-api-secret do not match an enabled app');
  }
  t.equal((await api.call('GET', STREAM_URL, { as: other })).status, 200, 'each app with its own secret');
});

t.test('a disabled app is 401', async (t) => {
  const api = await startTestApi(t);
  t.equal((await api.call('GET', STREAM_URL)).status, 200, 'enabled first');
  await new AppAdmin(api.runtime.eventLog, api.runtime.credentials).disable(api.tenant.apiId, 'test');
  await waitFor('the directory to see the app disabled', () => api.runtime.apps.get(api.tenant.apiId)?.disabled === true);
  const res = await api.call<ErrorBody>('GET', STREAM_URL);
  t.equal(res.status, 401);
  t.match(res.body.error.message, 'do not match an enabled app');
  t.equal((await api.call('POST', START, { json: startBody(newCallSid()) })).status, 401, 'no call control either');
});

t.test('the per-app rate limit answers 429 with Retry-After and leaves other apps alone', async (t) => {
  const api = await startTestApi(t, { env: { EARSHOT_API_RATE_LIMIT_PER_MINUTE: '3' } });
  for (let i = 0; i < 3; i++) t.equal((await api.call('GET', STREAM_URL)).status, 200, `request ${i + 1} of 3`);
  const limited = await api.call<ErrorBody>('GET', STREAM_URL);
  t.equal(limited.status, 429);
  t.equal(limited.headers['retry-after'], '20', 'a token every 20 s at 3 per minute');
  t.match(limited.body.error.message, 'rate limit of 3 requests per minute exceeded for this app; retry in 20 s');
  t.equal((await api.call('POST', START, { json: startBody(newCallSid()) })).status, 429, 'every route of the app counts');
  const other = await api.newTenant();
  t.equal((await api.call('GET', STREAM_URL, { as: other })).status, 200, 'another app has its own bucket');
  t.equal((await api.call('GET', '/healthz', { as: null })).status, 200, 'operations endpoints are not limited');
});

t.test('failed authentications are limited per client address, so secrets cannot be guessed', async (t) => {
  const api = await startTestApi(t, { env: { EARSHOT_API_AUTH_FAILURES_PER_MINUTE: '3' } });
  t.equal((await api.call('GET', STREAM_URL)).status, 200, 'successes do not count');
  for (let i = 0; i < 3; i++) {
    t.equal(
      (await api.call('GET', STREAM_URL, { as: { apiId: api.tenant.apiId, apiSecret: `guess-${i}` } })).status,
      401,
      `guess ${i + 1}`,
    );
  }
  const blocked = await api.call<ErrorBody>('GET', STREAM_URL, { as: { apiId: api.tenant.apiId, apiSecret: 'guess-4' } });
  t.equal(blocked.status, 429);
  t.match(blocked.headers['retry-after'], /^\d+$/);
  t.match(blocked.body.error.message, 'too many failed authentications from this address');
  const right = await api.call('GET', STREAM_URL);
  t.equal(right.status, 429, 'even the right secret is not checked now: a guess cannot be confirmed');
  t.equal((await api.call('GET', STREAM_URL, { as: null })).status, 429, 'requests without credentials count too');

  const fromElsewhere = await api.raw('GET', STREAM_URL, { headers: credentialHeaders(api.tenant), localAddress: '127.0.0.2' });
  t.equal(fromElsewhere.status, 200, 'another client address is not affected');
});

t.test('an unknown route is 404 in the error shape; a wrong method is 404 with Allow', async (t) => {
  const api = await startTestApi(t);
  const unknown = await api.call<ErrorBody>('GET', '/nope', { as: null });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.message, 'no route GET /nope');
  const guarded = await api.call<ErrorBody>('GET', '/mg-autotranscribe/v1/nope', { as: null });
  t.equal(guarded.status, 401, 'under the API prefix, credentials come first: no route probing without them');
  const known = await api.call<ErrorBody>('GET', '/mg-autotranscribe/v1/nope');
  t.equal(known.status, 404);
  const wrongMethod = await api.call<ErrorBody>('GET', START);
  t.equal(wrongMethod.status, 404);
  t.equal(wrongMethod.headers.allow, 'POST');
  t.equal(wrongMethod.body.error.message, `GET is not supported on ${START}; use POST`);
  const conversation = await api.call('GET', '/conversation/v1/conversation/messages?externalId=x', { as: null });
  t.equal(conversation.status, 401, '/conversation routes need credentials too');
});

t.test('every response has a request id: a sane incoming one is kept, anything else replaced by a UUID', async (t) => {
  const api = await startTestApi(t);
  const kept = await api.call<ErrorBody>('GET', '/nope', { headers: { 'x-request-id': 'trace-123:abc.DEF_9' } });
  t.equal(kept.headers['x-request-id'], 'trace-123:abc.DEF_9');
  t.equal(kept.body.error.requestId, 'trace-123:abc.DEF_9', 'the error names it too');
  for (const insane of ['has space', 'x'.repeat(129), 'semi;colon', '<script>']) {
    const res = await api.call('GET', '/healthz', { headers: { 'x-request-id': insane } });
    t.match(
      res.headers['x-request-id'],
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      JSON.stringify(insane.slice(0, 20)),
    );
  }
  const responses = await Promise.all([
    api.call('GET', '/healthz'),
    api.call('GET', '/readyz'),
    api.call('GET', '/metrics'),
    api.call('GET', STREAM_URL),
    api.call('GET', STREAM_URL, { as: null }),
    api.call('POST', START, { json: startBody(newCallSid()) }),
    api.call('POST', START, { json: {} }),
  ]);
  const ids = responses.map((r) => r.headers['x-request-id']);
  t.equal(new Set(ids).size, ids.length, 'distinct ids on every response, success or error');

  const { connect } = await import('node:net');
  const url = new URL(api.url);
  const rawReply = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write('NOT-HTTP at all\r\n\r\n'));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('utf8');
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  const [head = '', body = ''] = rawReply.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 400 Bad Request/);
  const requestId = /x-request-id: (\S+)/i.exec(head)?.[1];
  t.ok(requestId, 'even a request Node cannot parse gets a request id');
  api.check('GET', '/unparseable', {
    status: 400,
    headers: { 'x-request-id': requestId ?? '', 'content-type': 'application/json' },
    body,
    text: body,
  });
});
