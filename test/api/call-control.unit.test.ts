import t from 'tap';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import type { CallEvent, StreamStarted } from '../../apps/shared/src/events.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startRequest } from '../support/fixtures.js';
import { waitFor } from '../support/wait.js';
import { type ApiHarness, newCallSid, startBody, startTestApi } from './support/api-harness.js';
import { STAND_IN_SUMMARY } from './support/asr-stand-in.js';

/** Start and stop over real HTTP on the embedded log (SPEC §3.2, §3.3), and the call state behind 404/409. */
const START = '/mg-autotranscribe/v1/start-streaming';
const STOP = '/mg-autotranscribe/v1/stop-streaming';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface StreamingBody {
  isOk: true;
  autotranscribeResponse: Record<'customer' | 'agent', { streamId: string; status: { code: number; description: string } }>;
}

async function callEvents(api: ApiHarness, callSid: string): Promise<CallEvent[]> {
  const records = await readToEnd(api.runtime.eventLog, TOPICS.callEvents);
  return records.filter((r) => r.key === callSid).map((r) => r.value);
}

/** What ingest writes when Twilio opens a stream with `tenantId`'s token (ingest is another app). */
async function streamOpened(api: ApiHarness, callSid: string, tenantId: string): Promise<void> {
  const data: StreamStarted = {
    streamSid: `MZ${callSid.slice(2)}`,
    accountSid: `AC${callSid.slice(2)}`,
    tracks: ['inbound', 'outbound'],
    customParameters: {},
    encoding: 'audio/x-mulaw',
    sampleRate: 8000,
    channels: 1,
    ingestNode: 'test',
  };
  await api.runtime.eventLog.produce(TOPICS.callEvents, [
    { key: callSid, value: { eventId: `stream-${callSid}`, callSid, tenantId, occurredAtMs: Date.now(), type: 'StreamStarted', data } },
  ]);
}

t.test('start-streaming answers per-role stream ids and publishes TranscriptionStartRequested with the defaults', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  const res = await api.call<StreamingBody>('POST', START, { json: startBody(callSid), headers: { 'x-request-id': 'req-start-1' } });
  t.equal(res.status, 200);
  t.equal(res.body.isOk, true);
  const { customer, agent } = res.body.autotranscribeResponse;
  t.match(customer.streamId, UUID);
  t.match(agent.streamId, UUID);
  t.not(customer.streamId, agent.streamId);
  t.same(customer.status, { code: 1000, description: 'OK' });
  t.same(agent.status, { code: 1000, description: 'OK' });

  const [event, ...rest] = await callEvents(api, callSid);
  t.equal(rest.length, 0, 'exactly one record');
  t.match(event, {
    callSid,
    tenantId: api.tenant.apiId,
    type: 'TranscriptionStartRequested',
    // Every field: the fixture holds the SPEC §3.2 defaults.
    data: startRequest({
      requestId: 'req-start-1',
      customerId: 'customer-42',
      agentId: 'agent-7',
      customerStreamId: customer.streamId,
      agentStreamId: agent.streamId,
    }),
  });
});

t.test('start-streaming takes every option and the trackMap', async (t) => {
  const api = await startTestApi(t);
  const cases = [
    { trackMap: { inbound: 'agent', outbound: 'customer' }, expect: ['agent', 'customer'] },
    { trackMap: { inbound: 'agent' }, expect: ['agent', 'customer'] },
    { trackMap: { outbound: 'customer' }, expect: ['agent', 'customer'] },
    { trackMap: {}, expect: ['customer', 'agent'] },
  ];
  for (const c of cases) {
    const callSid = newCallSid();
    const body = startBody(callSid, {
      autotranscribeParams: { language: 'en-US', detailedToken: true, audioRecordingAllowed: true, redactionOutput: 'unredacted' },
      twilioParams: { trackMap: c.trackMap },
      somethingAsappSends: 'ignored',
    });
    const res = await api.call('POST', START, { json: body });
    t.equal(res.status, 200, JSON.stringify(c.trackMap));
    const [event] = await callEvents(api, callSid);
    t.match(event?.data, {
      detailedToken: true,
      audioRecordingAllowed: true,
      redactionOutput: 'unredacted',
      inboundRole: c.expect[0],
      outboundRole: c.expect[1],
    });
  }
});

t.test('stop-streaming publishes TranscriptionStopRequested and answers with the stream ids and summaries that end', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  const started = await api.call<StreamingBody>('POST', START, { json: startBody(callSid) });
  const stopped = await api.call<StreamingBody>('POST', STOP, { json: { namespace: 'twilio', guid: callSid } });
  t.equal(stopped.status, 200);
  const roles = stopped.body.autotranscribeResponse;
  t.equal(roles.customer.streamId, started.body.autotranscribeResponse.customer.streamId, 'the stream ids of the session that ended');
  t.equal(roles.agent.streamId, started.body.autotranscribeResponse.agent.streamId);
  t.same((roles.customer as unknown as { summary: unknown }).summary, STAND_IN_SUMMARY, 'the asr consumer’s summary, per role');
  t.equal((roles.agent as unknown as { summary: { transcripts: number } }).summary.transcripts, 1);
  const events = await callEvents(api, callSid);
  t.same(
    events.map((e) => e.type),
    ['TranscriptionStartRequested', 'TranscriptionStopRequested'],
  );
  t.equal(events[1]?.data && 'requestId' in events[1].data && events[1].data.requestId, stopped.headers['x-request-id']);

  const again = await api.call<StreamingBody>('POST', START, { json: startBody(callSid) });
  t.equal(again.status, 200, 'start after stop resumes');
  t.not(again.body.autotranscribeResponse.customer.streamId, started.body.autotranscribeResponse.customer.streamId, 'with new stream ids');
});

t.test('stop-streaming answers 503 when transcription does not confirm the stop in time', async (t) => {
  const api = await startTestApi(t, { asrStandIn: false, env: { EARSHOT_STOP_TIMEOUT_MS: '300' } });
  const callSid = newCallSid();
  await api.call('POST', START, { json: startBody(callSid) });
  const stopped = await api.call<{ error: { code: string; message: string } }>('POST', STOP, {
    json: { namespace: 'twilio', guid: callSid },
  });
  t.equal(stopped.status, 503);
  t.equal(stopped.body.error.code, '503-01');
  t.match(stopped.body.error.message, /did not confirm the stop within 300 ms; the stop is recorded/);
  t.same(
    (await callEvents(api, callSid)).map((e) => e.type),
    ['TranscriptionStartRequested', 'TranscriptionStopRequested'],
    'the stop command was published anyway',
  );
});

t.test('start twice is 409, even before the log hands the first start back', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  const [first, second] = await Promise.all([
    api.call('POST', START, { json: startBody(callSid) }),
    api.call('POST', START, { json: startBody(callSid) }),
  ]);
  t.same([first.status, second.status].sort(), [200, 409], 'concurrent starts on one node: one wins');
  const third = await api.call<{ error: { message: string } }>('POST', START, { json: startBody(callSid) });
  t.equal(third.status, 409);
  t.match(third.body.error.message, `call ${callSid} is already started`);
  t.equal((await callEvents(api, callSid)).length, 1, 'one command published');
});

t.test('stop on a call that is known but not started is 409', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  await streamOpened(api, callSid, api.tenant.apiId);
  await waitFor('the stream to reach the call state', async () => {
    const res = await api.call('POST', STOP, { json: { namespace: 'twilio', guid: callSid } });
    return res.status === 409;
  });
  const res = await api.call<{ error: { message: string } }>('POST', STOP, { json: { namespace: 'twilio', guid: callSid } });
  t.equal(res.status, 409);
  t.match(res.body.error.message, 'is not started');

  await api.call('POST', START, { json: startBody(callSid) });
  t.equal((await api.call('POST', STOP, { json: { namespace: 'twilio', guid: callSid } })).status, 200);
  t.equal((await api.call('POST', STOP, { json: { namespace: 'twilio', guid: callSid } })).status, 409, 'stopped twice');
});

t.test('stop on an unknown call is 404', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  const res = await api.call<{ error: { message: string } }>('POST', STOP, { json: { namespace: 'twilio', guid: callSid } });
  t.equal(res.status, 404);
  t.equal(res.body.error.message, `call ${callSid} not found`);
  t.same(await callEvents(api, callSid), [], 'nothing published');
});

t.test("another tenant's call is 404 for start and stop, and answers exactly like an unknown call", async (t) => {
  const api = await startTestApi(t);
  const other = await api.newTenant('tenant b');

  // A call tenant A started.
  const started = newCallSid();
  t.equal((await api.call('POST', START, { json: startBody(started) })).status, 200);
  // A call whose stream was opened with tenant A's token, never started.
  const streamed = newCallSid();
  await streamOpened(api, streamed, api.tenant.apiId);
  await waitFor('the stream to reach the call state', async () => {
    const res = await api.call('POST', STOP, { json: { namespace: 'twilio', guid: streamed } });
    return res.status === 409;
  });

  for (const callSid of [started, streamed]) {
    const start = await api.call<{ error: { message: string } }>('POST', START, { json: startBody(callSid), as: other });
    const stop = await api.call<{ error: { message: string } }>('POST', STOP, { json: { namespace: 'twilio', guid: callSid }, as: other });
    t.equal(start.status, 404, 'start by tenant b');
    t.equal(stop.status, 404, 'stop by tenant b');
    t.equal(start.body.error.message, `call ${callSid} not found`);
    t.equal(stop.body.error.message, `call ${callSid} not found`);
  }
  t.equal((await api.call('POST', START, { json: startBody(streamed) })).status, 200, 'tenant a still controls its call');
  const published = [...(await callEvents(api, started)), ...(await callEvents(api, streamed))];
  t.notOk(
    published.some((e) => e.tenantId === other.apiId),
    'nothing published for tenant b',
  );
});

t.test('every stream URL, start and stop is audited with hashed call and client ids', async (t) => {
  const api = await startTestApi(t);
  const callSid = newCallSid();
  const url = await api.call('GET', '/mg-autotranscribe/v1/twilio-media-stream-url', { headers: { 'x-request-id': 'req-url' } });
  const start = await api.call('POST', START, { json: startBody(callSid), headers: { 'x-request-id': 'req-start' } });
  const stop = await api.call('POST', STOP, { json: { namespace: 'twilio', guid: callSid }, headers: { 'x-request-id': 'req-stop' } });
  t.same([url.status, start.status, stop.status], [200, 200, 200]);
  const key = api.runtime.credentials.derive(AUDIT_HASH_KEY_LABEL);
  const sha = (s: string) => auditHash(key, s); // keyed (HMAC-SHA-256), see audit-trail.ts
  const audit = (await readToEnd(api.runtime.eventLog, TOPICS.audit)).map((r) => r.value).filter((a) => a.appId === api.tenant.apiId);
  t.match(audit, [
    { action: 'app.created', callSidHash: null, clientAddressHash: null }, // the tenant's creation (earshot apps create)
    { action: 'stream_url.issued', requestId: 'req-url', callSidHash: null, clientAddressHash: /^[0-9a-f]{64}$/ },
    { action: 'transcription.start', requestId: 'req-start', callSidHash: sha(callSid) },
    { action: 'transcription.stop', requestId: 'req-stop', callSidHash: sha(callSid) },
  ]);
  t.equal(audit[1]?.clientAddressHash, sha('127.0.0.1'), 'the client address, hashed');
  t.notOk(JSON.stringify(audit).includes(callSid), 'the Call SID itself is not in the audit');
});
