import t from 'tap';
import { exportDay } from '../../apps/export/src/day-export.js';
import { createLocalFeedStorage, exportDir } from '../../apps/shared/src/adapters/local-feed-storage.js';
import { createTranscriptStore } from '../../apps/shared/src/transcript-store/transcript-store.js';
import { type ApiHarness, type ApiResponse, type Credentials, newCallSid, startBody, startTestApi } from '../api/support/api-harness.js';
import { memorySource, stored } from '../export/support.js';
import { putTestRecording } from '../support/fixtures.js';
import { testLogger } from '../support/infra.js';
import { utterance } from '../support/store.js';

/**
 * Issue 9's tenant-isolation matrix: tenant B, with valid credentials of its own, aims at
 * everything tenant A has — its call, transcript, recording, feed files and live page — on
 * every operation of /openapi.json. Every answer must refuse or come back empty, and no
 * answer may carry anything of A's (api id, call SID, text, file or recording names).
 *
 * The matrix is checked for completeness against the served document: a new operation that
 * is neither in the matrix nor declared tenant-neutral fails this test until someone decides.
 */
const DAY = '2026-11-25';
const SECRET_TEXT = 'the secret words of tenant a';

/** Operations that hold no tenant data (operations endpoints, the live page's static files and session plumbing). */
const TENANT_NEUTRAL = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /metrics',
  'GET /openapi.json',
  'GET /live',
  'GET /live/assets/live.js',
  'GET /live/assets/live.css',
  'POST /live/session',
  'GET /live/session',
  'POST /live/session/end',
  // A signed link is itself the credential (no headers); forged and other-tenant links: test/export/fileexporter.unit.test.ts.
  'GET /fileexporter/v1/download/{token}',
]);

interface Probe {
  readonly operation: string;
  /** B's attempt on A's resource; `allowed` are the statuses that count as refusal or emptiness. */
  readonly send: (as: Credentials, ctx: Fixture) => Promise<ApiResponse>;
  readonly allowed: readonly number[];
  /** For a 200: the body must show nothing (e.g. empty items). */
  readonly empty?: (body: unknown) => boolean;
  /** Fixture values B itself sends (an error may name what was asked for: that leaks nothing). */
  readonly sends?: readonly ('callSid' | 'recordingId' | 'fileName')[];
}

interface Fixture {
  readonly api: ApiHarness;
  readonly callSid: string;
  readonly recordingId: string;
  readonly fileName: string;
  readonly cookieOfB: string;
}

const FE = '/fileexporter/v1/static';
const feedBody = { feed: 'utterances', version: '1', format: 'jsonl' };

const PROBES: readonly Probe[] = [
  {
    // B gets a token of its own; the body must not be A's.
    operation: 'GET /mg-autotranscribe/v1/twilio-media-stream-url',
    send: (as, f) => f.api.call('GET', '/mg-autotranscribe/v1/twilio-media-stream-url', { as }),
    allowed: [200],
  },
  {
    operation: 'POST /mg-autotranscribe/v1/start-streaming',
    sends: ['callSid'],
    send: (as, f) => f.api.call('POST', '/mg-autotranscribe/v1/start-streaming', { as, json: startBody(f.callSid) }),
    allowed: [404, 409],
  },
  {
    operation: 'POST /mg-autotranscribe/v1/stop-streaming',
    sends: ['callSid'],
    send: (as, f) => f.api.call('POST', '/mg-autotranscribe/v1/stop-streaming', { as, json: { namespace: 'twilio', guid: f.callSid } }),
    allowed: [404, 409],
  },
  {
    operation: 'GET /conversation/v1/conversation/messages',
    sends: ['callSid'],
    send: (as, f) => f.api.call('GET', `/conversation/v1/conversation/messages?externalId=${f.callSid}`, { as }),
    allowed: [200, 404],
    empty: (body) => (body as { items: unknown[] }).items.length === 0,
  },
  {
    operation: 'GET /mg-autotranscribe/v1/recordings',
    sends: ['callSid'],
    send: (as, f) => f.api.call('GET', `/mg-autotranscribe/v1/recordings?externalId=${f.callSid}`, { as }),
    allowed: [200, 404],
    empty: (body) => (body as { recordings: unknown[] }).recordings.length === 0,
  },
  {
    operation: 'GET /mg-autotranscribe/v1/recordings/{recordingId}/audio',
    sends: ['recordingId', 'callSid'],
    send: (as, f) => f.api.call('GET', `/mg-autotranscribe/v1/recordings/${f.recordingId}/audio`, { as }),
    allowed: [404],
  },
  {
    operation: `POST ${FE}/listfeeds`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeeds`, { as, json: {} }),
    allowed: [200], // the feed names are the product's, not A's
  },
  {
    operation: `POST ${FE}/listfeedversions`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeedversions`, { as, json: { feed: 'utterances' } }),
    allowed: [200, 404],
  },
  {
    operation: `POST ${FE}/listfeedformats`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeedformats`, { as, json: { feed: 'utterances', version: '1' } }),
    allowed: [200, 404],
  },
  {
    operation: `POST ${FE}/listfeeddates`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeeddates`, { as, json: feedBody }),
    allowed: [200, 404],
    empty: (body) => (body as { dates: unknown[] }).dates.length === 0,
  },
  {
    operation: `POST ${FE}/listfeedintervals`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeedintervals`, { as, json: { ...feedBody, date: DAY } }),
    allowed: [200, 404],
    empty: (body) => (body as { intervals: unknown[] }).intervals.length === 0,
  },
  {
    operation: `POST ${FE}/listfeedfiles`,
    send: (as, f) => f.api.call('POST', `${FE}/listfeedfiles`, { as, json: { ...feedBody, date: DAY } }),
    allowed: [200, 404],
    empty: (body) => (body as { files: unknown[] }).files.length === 0,
  },
  {
    operation: `POST ${FE}/getfeedfile`,
    sends: ['fileName'],
    send: (as, f) => f.api.call('POST', `${FE}/getfeedfile`, { as, json: { ...feedBody, date: DAY, fileName: f.fileName } }),
    allowed: [404],
  },
  {
    operation: 'GET /live/calls',
    send: (_as, f) => f.api.call('GET', '/live/calls', { as: null, headers: { cookie: f.cookieOfB } }),
    allowed: [200],
    empty: (body) => (body as { items: unknown[] }).items.length === 0,
  },
  {
    operation: 'GET /live/calls/{externalId}/events',
    sends: ['callSid'],
    send: (_as, f) => f.api.call('GET', `/live/calls/${f.callSid}/events`, { as: null, headers: { cookie: f.cookieOfB } }),
    allowed: [403, 404],
  },
];

t.test("tenant B's credentials against every operation for tenant A's data: refused or empty, nothing leaked", async (t) => {
  const api = await startTestApi(t);
  const a = api.tenant;
  const b = await api.newTenant('tenant b');
  const config = api.runtime.config;

  // A's call, transcript, recording and feed files.
  const callSid = newCallSid();
  t.equal((await api.call('POST', '/mg-autotranscribe/v1/start-streaming', { json: startBody(callSid) })).status, 200, "A's call started");
  const transcripts = createTranscriptStore(config, testLogger);
  await transcripts.migrate();
  await transcripts.writeBatch({
    utterances: [utterance({ tenantId: a.apiId, callSid, startMs: 1000, text: SECRET_TEXT })],
    sessions: [],
    deliveries: [],
    audit: [],
  });
  await transcripts.close();
  const ownMessages = await api.call<{ items: { text: string }[] }>('GET', `/conversation/v1/conversation/messages?externalId=${callSid}`);
  t.equal(ownMessages.body.items[0]?.text, SECRET_TEXT, 'A reads its own transcript (the fixture is visible to its owner)');

  const recording = await putTestRecording(config, a.apiId, callSid);
  const ownAudio = await api.call('GET', `/mg-autotranscribe/v1/recordings/${recording.recordingId}/audio`);
  t.equal(ownAudio.status, 200, 'A downloads its own recording');

  const hour = Date.parse(`${DAY}T09:00:00Z`);
  await exportDay({
    source: memorySource([stored({ tenantId: a.apiId, callSid, occurredAtMs: hour, text: SECRET_TEXT })]),
    storage: createLocalFeedStorage(exportDir(config)),
    date: DAY,
    maxFileBytes: 1 << 20,
  });
  const ownFiles = await api.call<{ files: string[] }>('POST', `${FE}/listfeedfiles`, { json: { ...feedBody, date: DAY } });
  const fileName = ownFiles.body.files[0] ?? '';
  t.ok(fileName, 'A lists its own feed file');

  const login = await api.call('POST', '/live/session', { as: null, json: { apiId: b.apiId, apiSecret: b.apiSecret } });
  t.equal(login.status, 200, 'B logs in to the live page with its own credentials');
  const cookieOfB = (login.headers['set-cookie'] ?? '').split(';')[0] ?? '';
  const ownLive = await api.call<{ calls: { externalId: string }[] }>('GET', '/live/calls', {
    as: null,
    headers: { cookie: await liveCookie(api, a) },
  });
  t.ok(JSON.stringify(ownLive.body).includes(callSid), "A's live page lists its call");

  const fixture: Fixture = { api, callSid, recordingId: recording.recordingId, fileName, cookieOfB };
  const secrets = { callSid, recordingId: recording.recordingId, fileName };
  const always = [a.apiId, a.apiSecret, SECRET_TEXT];

  // Completeness: every operation of the served document is probed or declared tenant-neutral.
  const document = (await api.call<{ paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json')).body;
  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
  );
  const probed = new Set(PROBES.map((p) => p.operation));
  for (const operation of operations) {
    t.ok(probed.has(operation) || TENANT_NEUTRAL.has(operation), `${operation}: in the isolation matrix`);
  }

  for (const probe of PROBES) {
    const res = await probe.send(b, fixture);
    t.ok(probe.allowed.includes(res.status), `${probe.operation}: B gets ${res.status} (allowed ${probe.allowed.join('/')})`);
    if (res.status === 200 && probe.empty) t.ok(probe.empty(res.body), `${probe.operation}: B's answer is empty`);
    const unsent = Object.entries(secrets)
      .filter(([name]) => !probe.sends?.includes(name as keyof typeof secrets))
      .map(([, value]) => value);
    const leaked = [...always, ...unsent].filter((s) => s && res.text.includes(s));
    t.same(leaked, [], `${probe.operation}: nothing of A's in the answer`);
  }

  // And A's resources are untouched by B's attempts: A's call is still A's to stop.
  const stop = await api.call('POST', '/mg-autotranscribe/v1/stop-streaming', { json: { namespace: 'twilio', guid: callSid } });
  t.equal(stop.status, 200, 'A still stops its own call');
});

async function liveCookie(api: ApiHarness, who: Credentials): Promise<string> {
  const login = await api.call('POST', '/live/session', { as: null, json: { apiId: who.apiId, apiSecret: who.apiSecret } });
  return (login.headers['set-cookie'] ?? '').split(';')[0] ?? '';
}
