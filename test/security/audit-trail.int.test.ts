import { createHash } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import { exportDay } from '../../apps/export/src/day-export.js';
import { createLocalFeedStorage, exportDir } from '../../apps/shared/src/adapters/local-feed-storage.js';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import type { AuditRecorded } from '../../apps/shared/src/events.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startStoreApp } from '../../apps/store/main.js';
import { newCallSid, startBody, startTestApi } from '../api/support/api-harness.js';
import { memorySource, stored } from '../export/support.js';
import { putTestRecording } from '../support/fixtures.js';
import { clickhouseTestStore } from '../support/store.js';
import { waitFor } from '../support/wait.js';

/**
 * SPEC §10: every control and data access leaves an audit entry — stream URL issued, start,
 * stop, messages read, recording and feed file downloaded, live page watched, and every app
 * change — with app id, action, time and request id, call ids and client addresses only
 * hashed; on Kafka (earshot.audit.v1) and, through the store app, in ClickHouse.
 */
t.test('each control and data access, and each app change, leaves its audit entry on Kafka and in ClickHouse', async (t) => {
  const api = await startTestApi(t, { kafka: true });
  const ch = clickhouseTestStore();
  t.teardown(() => ch.dispose());
  await ch.store.migrate();
  const storeApp = await startStoreApp(api.runtime, { store: ch.store });
  t.teardown(() => storeApp.stop());
  const { apiId } = api.tenant;
  const config = api.runtime.config;
  const headers = (id: string) => ({ 'x-request-id': id });

  // App changes, as `earshot apps ...` makes them.
  const admin = new AppAdmin(api.runtime.eventLog, api.runtime.credentials);
  const other = await admin.create({ name: 'audited tenant' });
  await admin.setWebhook(other.apiId, 'https://hooks.example.com/earshot');
  await admin.setTwilioAuthToken(other.apiId, 'twilio-token-for-audit');
  await admin.rotateSecret(other.apiId);
  await admin.disable(other.apiId);

  // Control and data accesses of the API tenant.
  const callSid = newCallSid();
  await api.call('GET', '/mg-autotranscribe/v1/twilio-media-stream-url', { headers: headers('req-url') });
  t.equal(
    (await api.call('POST', '/mg-autotranscribe/v1/start-streaming', { json: startBody(callSid), headers: headers('req-start') })).status,
    200,
  );
  t.equal(
    (
      await api.call('POST', '/mg-autotranscribe/v1/stop-streaming', {
        json: { namespace: 'twilio', guid: callSid },
        headers: headers('req-stop'),
      })
    ).status,
    200,
  );
  await waitFor('the messages API answers', async () => {
    const res = await api.call('GET', `/conversation/v1/conversation/messages?externalId=${callSid}`, { headers: headers('req-messages') });
    return res.status === 200;
  });
  const recording = await putTestRecording(config, apiId, callSid);
  t.equal(
    (await api.call('GET', `/mg-autotranscribe/v1/recordings/${recording.recordingId}/audio`, { headers: headers('req-recording') }))
      .status,
    200,
  );
  await exportDay({
    source: memorySource([stored({ tenantId: apiId, callSid, occurredAtMs: Date.parse('2026-11-25T09:00:00Z') })]),
    storage: createLocalFeedStorage(exportDir(config)),
    date: '2026-11-25',
    maxFileBytes: 1 << 20,
  });
  const link = await api.call<{ url: string }>('POST', '/fileexporter/v1/static/getfeedfile', {
    json: { feed: 'utterances', version: '1', format: 'jsonl', date: '2026-11-25', fileName: 'utterances-2026-11-25-09-0001.jsonl.gz' },
  });
  t.equal(link.status, 200);
  const download = await fetch(link.body.url, { headers: headers('req-feed') });
  await download.arrayBuffer();
  t.equal(download.status, 200);
  const login = await api.call('POST', '/live/session', { as: null, json: api.tenant });
  const cookie = (login.headers['set-cookie'] ?? '').split(';')[0] ?? '';
  const watch = new AbortController();
  const events = await fetch(`${api.url}/live/calls/${callSid}/events`, {
    headers: { cookie, 'x-request-id': 'req-live' },
    signal: watch.signal,
  });
  t.equal(events.status, 200);
  watch.abort();

  const expected: [appId: string, action: string, requestId: string | null, hashedCall: boolean][] = [
    [apiId, 'app.created', null, false],
    [other.apiId, 'app.created', null, false],
    [other.apiId, 'app.webhook_set', null, false],
    [other.apiId, 'app.twilio_auth_token_set', null, false],
    [other.apiId, 'app.secret_rotated', null, false],
    [other.apiId, 'app.disabled', null, false],
    [apiId, 'stream_url.issued', 'req-url', false],
    [apiId, 'transcription.start', 'req-start', true],
    [apiId, 'transcription.stop', 'req-stop', true],
    [apiId, 'messages.read', 'req-messages', true],
    [apiId, 'recording.downloaded', 'req-recording', true],
    [apiId, 'feed_file.downloaded', 'req-feed', false],
    [apiId, 'live.watched', 'req-live', true],
  ];
  const matches = (a: Pick<AuditRecorded, 'appId' | 'action' | 'requestId'>, e: (typeof expected)[number]) =>
    a.appId === e[0] && a.action === e[1] && (e[2] === null || a.requestId === e[2]);

  // On Kafka.
  let onKafka: AuditRecorded[] = [];
  await waitFor('every audit entry on Kafka', async () => {
    onKafka = (await readToEnd(api.runtime.eventLog, TOPICS.audit)).map((r) => r.value);
    return expected.every((e) => onKafka.some((a) => matches(a, e)));
  });
  for (const e of expected) {
    const entry = onKafka.find((a) => matches(a, e));
    t.ok(entry, `${e[1]} of ${e[0] === apiId ? 'the tenant' : 'the other app'} is on Kafka`);
    if (e[3])
      t.equal(entry?.callSidHash, auditHash(api.runtime.credentials.derive(AUDIT_HASH_KEY_LABEL), callSid), `${e[1]}: the call id, hashed`);
  }
  t.notOk(JSON.stringify(onKafka).includes(callSid), 'no Call SID in clear on the audit topic');
  const plainSha256 = createHash('sha256').update(callSid).digest('hex');
  t.notOk(
    onKafka.some((a) => a.callSidHash === plainSha256),
    'keyed: not a plain SHA-256, which anyone could compute (and reverse for an IPv4 address)',
  );

  // In ClickHouse, through the store app.
  const clickhouse = createClient({ url: config.EARSHOT_CLICKHOUSE_URL });
  t.teardown(() => clickhouse.close());
  const rows = async () =>
    (await (
      await clickhouse.query({
        query: `SELECT app_id AS appId, action, request_id AS requestId, call_sid_hash AS callSidHash FROM ${ch.location}.audit_events`,
        format: 'JSONEachRow',
      })
    ).json()) as { appId: string; action: string; requestId: string; callSidHash: string }[];
  let inClickHouse: Awaited<ReturnType<typeof rows>> = [];
  await waitFor('every audit entry in ClickHouse', async () => {
    inClickHouse = await rows();
    return expected.every((e) => inClickHouse.some((a) => matches(a, e)));
  });
  for (const e of expected)
    t.ok(
      inClickHouse.some((a) => matches(a, e)),
      `${e[1]} is in ClickHouse`,
    );
});
