import type { Test } from 'tap';
import t from 'tap';
import { createLocalRecordingStore, recordingsDir } from '../../apps/shared/src/adapters/local-recording-store.js';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import { EarshotError } from '../../apps/shared/src/errors.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';
import type { NewRecording } from '../../apps/shared/src/ports/recording-store.port.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { type ApiHarness, type ApiResponse, type Credentials, credentialHeaders, newCallSid, startTestApi } from './support/api-harness.js';

/** SPEC §6 recordings over HTTP: list and download by the owning tenant only, validated against /openapi.json. */
const LIST = '/mg-autotranscribe/v1/recordings';
const C1 = '11111111-1111-4111-8111-111111111111';
const C2 = '33333333-3333-4333-8333-333333333333';

type ErrorBody = { error: { requestId: string; code: string; message: string } };
interface ListBody {
  items: { recordingId: string; externalId: string; bytes: number; durationMs: number; audioPath: string; [k: string]: unknown }[];
}

const recording = (callSid: string, customerStreamId: string, over: Partial<NewRecording> = {}): NewRecording => ({
  callSid,
  customerStreamId,
  agentStreamId: '22222222-2222-4222-8222-222222222222',
  durationMs: 1500,
  mediaStartMs: 2000,
  complete: true,
  truncated: false,
  createdAtMs: Date.UTC(2025, 0, 2, 3, 4, 5),
  ...over,
});

/** A download, bytes kept as bytes (the harness reads bodies as text), validated against the document too. */
async function download(api: ApiHarness, path: string, as: Credentials = api.tenant): Promise<ApiResponse & { bytes: Buffer }> {
  const res = await fetch(`${api.url}${path}`, { headers: credentialHeaders(as) });
  const bytes = Buffer.from(await res.arrayBuffer());
  const headers = Object.fromEntries(res.headers);
  const text = bytes.toString(headers['content-type']?.startsWith('application/json') ? 'utf8' : 'latin1');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const response = { status: res.status, headers, body, text };
  api.check('GET', path, response);
  return { ...response, bytes };
}

async function withRecordings(t: Test, options: { wrap?: (runtime: Runtime) => Runtime } = {}) {
  const api = await startTestApi(t, options);
  const store = createLocalRecordingStore(recordingsDir(api.runtime.config));
  const callSid = newCallSid();
  const wav1 = Buffer.from([...'RIFF'].map((c) => c.charCodeAt(0)).concat([0, 1, 2, 255, 254, 128]));
  const wav2 = Buffer.alloc(5000, 7);
  await store.put(api.tenant.apiId, recording(callSid, C1), wav1);
  await store.put(api.tenant.apiId, recording(callSid, C2, { createdAtMs: Date.UTC(2025, 0, 2, 3, 9, 0), mediaStartMs: 9000 }), wav2);
  return { api, store, callSid, wav1, wav2 };
}

t.test('the owning tenant lists a call’s recordings, one per session, and downloads each as audio/wav', async (t) => {
  const { api, callSid, wav1, wav2 } = await withRecordings(t);
  const list = await api.call<ListBody>('GET', `${LIST}?externalId=${callSid}`);
  t.equal(list.status, 200);
  t.same(list.body.items, [
    {
      recordingId: `${callSid}_${C1}`,
      externalId: callSid,
      customerStreamId: C1,
      agentStreamId: '22222222-2222-4222-8222-222222222222',
      contentType: 'audio/wav',
      sampleRate: 8000,
      channels: ['customer', 'agent'],
      bytes: wav1.length,
      durationMs: 1500,
      startMs: 2000,
      complete: true,
      truncated: false,
      createdTimestamp: '2025-01-02T03:04:05.000Z',
      audioPath: `${LIST}/${callSid}_${C1}/audio`,
    },
    {
      recordingId: `${callSid}_${C2}`,
      externalId: callSid,
      customerStreamId: C2,
      agentStreamId: '22222222-2222-4222-8222-222222222222',
      contentType: 'audio/wav',
      sampleRate: 8000,
      channels: ['customer', 'agent'],
      bytes: wav2.length,
      durationMs: 1500,
      startMs: 9000,
      complete: true,
      truncated: false,
      createdTimestamp: '2025-01-02T03:09:00.000Z',
      audioPath: `${LIST}/${callSid}_${C2}/audio`,
    },
  ]);
  const [first, second] = list.body.items;
  const audio = await download(api, first?.audioPath ?? '', api.tenant);
  t.equal(audio.status, 200);
  t.equal(audio.headers['content-type'], 'audio/wav');
  t.equal(audio.headers['content-length'], String(wav1.length));
  t.equal(audio.headers['content-disposition'], `attachment; filename="${callSid}_${C1}.wav"`);
  t.equal(audio.headers['cache-control'], 'no-store');
  t.same(audio.bytes, wav1, 'byte for byte');
  t.same((await download(api, second?.audioPath ?? '')).bytes, wav2);
});

t.test('another tenant gets 404 for the listing and the download', async (t) => {
  const { api, callSid } = await withRecordings(t);
  const other = await api.newTenant();
  const list = await api.call<ErrorBody>('GET', `${LIST}?externalId=${callSid}`, { as: other });
  t.equal(list.status, 404);
  t.equal(list.body.error.message, `no recording of call ${callSid} for this app`);
  const audio = await download(api, `${LIST}/${callSid}_${C1}/audio`, other);
  t.equal(audio.status, 404);
  t.match(audio.body, { error: { code: '404-01', message: `recording ${callSid}_${C1} not found` } });
  const unknown = await api.call('GET', `${LIST}?externalId=${newCallSid()}`);
  t.equal(unknown.status, 404, 'a call without recordings: 404 as well');
  t.equal((await download(api, `${LIST}/${callSid}_${C2.replace('3', '4')}/audio`)).status, 404, 'unknown session');
  const none = await api.call('GET', `${LIST}?externalId=${callSid}`, { as: null });
  t.equal(none.status, 401, 'credentials required');
});

t.test('validation: a missing or malformed externalId or recordingId is 400 naming it', async (t) => {
  const { api, callSid } = await withRecordings(t);
  const cases: [string, string][] = [
    [LIST, 'invalid request: externalId is required'],
    [`${LIST}?externalId=CA123`, "invalid request: externalId must be a Twilio Call SID: 'CA' followed by 32 lowercase hex digits"],
    [`${LIST}?externalId=${callSid}&externalId=${callSid}`, 'invalid request: externalId must be one Twilio Call SID'],
    [`${LIST}/${callSid}/audio`, 'invalid request: recordingId must be a recordingId as listed: <Call SID>_<customer streamId>'],
    [`${LIST}/..%2F..%2Fetc_passwd/audio`, 'invalid request: recordingId must be a recordingId as listed: <Call SID>_<customer streamId>'],
  ];
  for (const [path, message] of cases) {
    const res = path.endsWith('/audio') ? await download(api, path) : await api.call<ErrorBody>('GET', path);
    t.equal(res.status, 400, path);
    t.equal((res.body as ErrorBody).error.message, message);
  }
  t.equal((await api.call('POST', `${LIST}?externalId=${callSid}`, { json: {} })).status, 404, 'GET only');
});

t.test('a download is audited (hashed call id); without an audit record no audio leaves', async (t) => {
  let failAudit = false;
  const { api, callSid } = await withRecordings(t, {
    wrap: (runtime) => {
      const log = runtime.eventLog;
      const eventLog: EventLog = {
        kind: log.kind,
        ensureTopics: (topics) => log.ensureTopics(topics),
        describeTopic: (name) => log.describeTopic(name),
        endOffsets: (topic) => log.endOffsets(topic),
        produce: async (topic, records) => {
          if (failAudit && topic.name === TOPICS.audit.name)
            throw new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', 'down', { retriable: true });
          return log.produce(topic, records);
        },
        createConsumer: (options) => log.createConsumer(options),
        close: () => log.close(),
      };
      return { ...runtime, eventLog };
    },
  });
  const path = `${LIST}/${callSid}_${C1}/audio`;
  const res = await fetch(`${api.url}${path}`, { headers: { ...credentialHeaders(api.tenant), 'x-request-id': 'req-dl' } });
  await res.arrayBuffer();
  t.equal(res.status, 200);
  const audit = (await readToEnd(api.runtime.eventLog, TOPICS.audit)).map((r) => r.value).filter((a) => a.appId === api.tenant.apiId);
  t.match(audit, [
    { action: 'app.created', callSidHash: null, clientAddressHash: null },
    {
      action: 'recording.downloaded',
      requestId: 'req-dl',
      callSidHash: auditHash(api.runtime.credentials.derive(AUDIT_HASH_KEY_LABEL), callSid),
      clientAddressHash: /^[0-9a-f]{64}$/,
    },
  ]);
  failAudit = true;
  const refused = await download(api, path);
  t.equal(refused.status, 503);
  t.equal(refused.headers['retry-after'], '1');
});

t.test('/openapi.json documents both routes with their parameters', async (t) => {
  const api = await startTestApi(t);
  const paths = api.openapi.document.paths as Record<
    string,
    Record<string, { parameters: { name?: string; in?: string; required?: boolean }[] }>
  >;
  const list = paths[LIST]?.get;
  const audio = paths[`${LIST}/{recordingId}/audio`]?.get;
  t.match(list?.parameters, [{}, { name: 'externalId', in: 'query', required: true }]);
  t.match(audio?.parameters, [{}, { name: 'recordingId', in: 'path', required: true }]);
  t.ok((audio as unknown as { responses: Record<string, { content?: Record<string, unknown> }> }).responses['200']?.content?.['audio/wav']);
});
