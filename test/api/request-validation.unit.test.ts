import t, { type Test } from 'tap';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { type ApiHarness, newCallSid, startBody, startTestApi } from './support/api-harness.js';

/** Every rejection of a request body (SPEC §3.2, §3.6): status, code and a message naming the field. */
const START = '/mg-autotranscribe/v1/start-streaming';
const STOP = '/mg-autotranscribe/v1/stop-streaming';

type ErrorBody = { error: { requestId: string; code: string; message: string } };

async function expectError(
  t: Test,
  api: ApiHarness,
  path: string,
  init: Parameters<ApiHarness['call']>[2],
  status: number,
  message: RegExp | string,
): Promise<void> {
  const res = await api.call<ErrorBody>('POST', path, init);
  t.equal(res.status, status, `status ${status}`);
  t.equal(res.body.error?.code, `${status}-01`);
  t.match(res.body.error?.message, message);
}

async function nothingPublished(t: Test, api: ApiHarness): Promise<void> {
  const commands = (await readToEnd(api.runtime.eventLog, TOPICS.callEvents)).filter((r) => r.value.tenantId === api.tenant.apiId);
  t.same(commands, [], 'nothing was published');
}

t.test('malformed JSON is 400', async (t) => {
  const api = await startTestApi(t);
  const headers = { 'content-type': 'application/json' };
  await expectError(t, api, START, { raw: '{"namespace": "twilio",', headers }, 400, /^request body is not valid JSON/);
  await expectError(t, api, START, { raw: '"just a string"', headers }, 400, 'request body must be a JSON object');
  await expectError(t, api, START, { raw: '[1, 2]', headers }, 400, 'invalid request: body must be an object, not an array');
  await expectError(t, api, START, { raw: '{"__proto__": {"x": 1}}', headers }, 400, /__proto__/);
  await expectError(t, api, STOP, { raw: '', headers }, 400, 'invalid request: namespace is required; guid is required');
  await nothingPublished(t, api);
});

t.test('a wrong or missing content type is 400', async (t) => {
  const api = await startTestApi(t);
  const json = JSON.stringify(startBody(newCallSid()));
  await expectError(
    t,
    api,
    START,
    { raw: json, headers: { 'content-type': 'text/plain' } },
    400,
    'Content-Type must be application/json, not text/plain',
  );
  await expectError(
    t,
    api,
    START,
    { raw: 'namespace=twilio', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    400,
    'Content-Type must be application/json, not application/x-www-form-urlencoded',
  );
  const bare = await api.raw<ErrorBody>('POST', START, {
    headers: {
      'asapp-api-id': api.tenant.apiId,
      'asapp-api-secret': api.tenant.apiSecret,
      'content-length': String(Buffer.byteLength(json)),
    },
    chunks: [Buffer.from(json)],
  });
  t.equal(bare.status, 400);
  t.match(bare.body.error.message, 'Content-Type header is missing');
  const charset = await api.call('POST', START, { raw: json, headers: { 'content-type': 'application/json; charset=utf-8' } });
  t.equal(charset.status, 200, 'a charset parameter is fine');
});

t.test('fields of the wrong type, missing or empty are 400 naming the field', async (t) => {
  const api = await startTestApi(t);
  const sid = newCallSid();
  await expectError(t, api, START, { json: startBody(sid, { guid: 42 }) }, 400, 'guid must be a string: the Twilio Call SID');
  await expectError(t, api, START, { json: startBody(sid, { customerId: undefined }) }, 400, 'invalid request: customerId is required');
  await expectError(t, api, START, { json: startBody(sid, { agentId: '' }) }, 400, 'agentId must not be empty');
  await expectError(t, api, START, { json: startBody(sid, { agentId: 'x'.repeat(257) }) }, 400, 'agentId must be at most 256 characters');
  await expectError(
    t,
    api,
    START,
    { json: startBody(sid, { autotranscribeParams: { detailedToken: 'yes' } }) },
    400,
    'autotranscribeParams.detailedToken must be a boolean, not a string',
  );
  await expectError(
    t,
    api,
    START,
    { json: startBody(sid, { autotranscribeParams: { redactionOutput: 'partly' } }) },
    400,
    'autotranscribeParams.redactionOutput must be one of "redacted", "unredacted", "redacted_and_unredacted"',
  );
  await expectError(
    t,
    api,
    START,
    { json: startBody(sid, { twilioParams: { trackMap: { inbound: 'caller' } } }) },
    400,
    'twilioParams.trackMap.inbound must be one of "customer", "agent"',
  );
  await expectError(
    t,
    api,
    START,
    { json: startBody(sid, { autotranscribeParams: null }) },
    400,
    'autotranscribeParams must be an object, not null',
  );
  await expectError(t, api, STOP, { json: { guid: sid } }, 400, 'namespace is required');
  await nothingPublished(t, api);
});

t.test('an unknown namespace is 400', async (t) => {
  const api = await startTestApi(t);
  const sid = newCallSid();
  await expectError(t, api, START, { json: startBody(sid, { namespace: 'genesys' }) }, 400, 'namespace must be "twilio"');
  await expectError(t, api, STOP, { json: { namespace: 'TWILIO', guid: sid } }, 400, 'namespace must be "twilio"');
  await nothingPublished(t, api);
});

t.test('a guid that is not a Twilio Call SID is 400', async (t) => {
  const api = await startTestApi(t);
  const good = newCallSid();
  for (const guid of [good.toUpperCase(), good.slice(0, -1), `CB${good.slice(2)}`, `${good}0`, 'call-123', '']) {
    await expectError(
      t,
      api,
      START,
      { json: startBody(good, { guid }) },
      400,
      "guid must be a Twilio Call SID: 'CA' followed by 32 lowercase hex digits",
    );
  }
  await expectError(t, api, STOP, { json: { namespace: 'twilio', guid: 'nope' } }, 400, 'guid must be a Twilio Call SID');
  await nothingPublished(t, api);
});

t.test('an unsupported language is 422 naming the supported ones', async (t) => {
  const api = await startTestApi(t);
  await expectError(
    t,
    api,
    START,
    { json: startBody(newCallSid(), { autotranscribeParams: { language: 'fr-FR' } }) },
    422,
    "autotranscribeParams.language 'fr-FR' is not supported; supported languages: en-US",
  );
  await nothingPublished(t, api);
});

t.test('detailedToken with a redacted output is 422', async (t) => {
  const api = await startTestApi(t);
  for (const redactionOutput of ['redacted', 'redacted_and_unredacted', undefined]) {
    await expectError(
      t,
      api,
      START,
      { json: startBody(newCallSid(), { autotranscribeParams: { detailedToken: true, redactionOutput } }) },
      422,
      `detailedToken true cannot be combined with redactionOutput '${redactionOutput ?? 'redacted'}'`,
    );
  }
  await nothingPublished(t, api);
});

t.test('a trackMap giving both tracks one role is 422', async (t) => {
  const api = await startTestApi(t);
  await expectError(
    t,
    api,
    START,
    { json: startBody(newCallSid(), { twilioParams: { trackMap: { inbound: 'agent', outbound: 'agent' } } }) },
    422,
    "twilioParams.trackMap maps both tracks to 'agent'",
  );
});

t.test('a body over 64 KiB is 413: by Content-Length before it is read, and by the bytes streamed', async (t) => {
  const api = await startTestApi(t);
  const credentials = { 'asapp-api-id': api.tenant.apiId, 'asapp-api-secret': api.tenant.apiSecret, 'content-type': 'application/json' };
  const big = startBody(newCallSid(), { padding: 'x'.repeat(64 * 1024) });
  await expectError(t, api, START, { json: big }, 413, 'exceeds the limit of 65536 bytes (64 KiB)');

  const early = await api.raw<ErrorBody>('POST', START, {
    headers: { ...credentials, 'content-length': String(10 * 1024 * 1024) },
    chunks: [Buffer.from('{"namespace":')],
    leaveOpen: true,
  });
  t.equal(early.status, 413, 'answered from the Content-Length alone, before the body arrived');
  t.match(early.body.error.message, 'request body of 10485760 bytes exceeds the limit');

  const chunk = Buffer.from(`{"padding":"${'y'.repeat(16 * 1024)}`);
  const streamed = await api.raw<ErrorBody>('POST', START, {
    headers: credentials,
    chunks: [chunk, chunk, chunk, chunk, chunk, Buffer.from('"}')],
  });
  t.equal(streamed.status, 413, 'a chunked body is cut off at the limit');
  t.match(streamed.body.error.message, 'request body exceeds the limit of 65536 bytes');

  const justUnder = startBody(newCallSid(), { padding: 'z'.repeat(60 * 1024) });
  t.equal((await api.call('POST', START, { json: justUnder })).status, 200, 'just under the limit is fine');
});
