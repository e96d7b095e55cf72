import type { Test } from 'tap';
import t from 'tap';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import type { TranscriptStore } from '../../apps/shared/src/ports/transcript-store.port.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { ClickHouseTranscriptStore } from '../../apps/shared/src/transcript-store/clickhouse/clickhouse-transcript-store.js';
import { DuckDbTranscriptStore } from '../../apps/shared/src/transcript-store/embedded/duckdb-transcript-store.js';
import { embeddedStoreFile } from '../../apps/shared/src/transcript-store/transcript-store.js';
import { testConfig, testLogger } from '../support/infra.js';
import { batchOf, utterance } from '../support/store.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { randomSuffix } from '../support/wait.js';
import { type ApiHarness, newCallSid, startTestApi } from './support/api-harness.js';

/**
 * SPEC §3.4 GET /conversation/v1/conversation/messages over HTTP, on both store backends:
 * the API opens the store from config (as in production); the test writes utterances into
 * the same database/file. Every response is validated against /openapi.json by the harness.
 */
const PATH = '/conversation/v1/conversation/messages';
type ErrorBody = { error: { requestId: string; code: string; message: string } };
interface Item {
  text: string;
  sender: { role: string; externalId: string };
  messageId: string;
  createdTimestamp: string;
  clientTimestamp: string;
}

async function withApi(t: Test, backend: 'clickhouse' | 'embedded', clickhouseUrl = testConfig.EARSHOT_CLICKHOUSE_URL) {
  const database = `earshot_test_${randomSuffix()}`;
  const api = await startTestApi(t, {
    env:
      backend === 'clickhouse'
        ? { EARSHOT_STORE_BACKEND: 'clickhouse', EARSHOT_CLICKHOUSE_DATABASE: database, EARSHOT_CLICKHOUSE_URL: clickhouseUrl }
        : { EARSHOT_STORE_BACKEND: 'embedded' },
  });
  const writer: TranscriptStore =
    backend === 'clickhouse'
      ? new ClickHouseTranscriptStore({ url: testConfig.EARSHOT_CLICKHOUSE_URL, database, logger: testLogger, nodeId: 'test' })
      : new DuckDbTranscriptStore(embeddedStoreFile(api.runtime.config), { logger: testLogger });
  await writer.migrate();
  t.teardown(async () => {
    if (backend === 'clickhouse') await (writer as ClickHouseTranscriptStore).dropDatabaseForTests();
    await writer.close();
  });
  return { api, writer };
}

const get = (api: ApiHarness, query: string, as?: Parameters<ApiHarness['call']>[2]) =>
  api.call<{ items: Item[] } & ErrorBody>('GET', `${PATH}${query}`, as);

for (const backend of ['clickhouse', 'embedded'] as const) {
  t.test(`${backend}: a call's messages in the exact shape of §3.4, in time order`, async (t) => {
    const { api, writer } = await withApi(t, backend);
    const callSid = newCallSid();
    const tenantId = api.tenant.apiId;
    const us = [
      utterance({ callSid, tenantId, role: 'agent', startMs: 4000, endMs: 5500, text: 'how can I help' }),
      utterance({ callSid, tenantId, role: 'customer', startMs: 800, endMs: 2000, text: "my card ends in ####, it's blocked" }),
      utterance({ callSid, tenantId, role: 'customer', startMs: 6000, endMs: 6400, text: 'yes' }),
    ];
    await writer.writeBatch(batchOf({ utterances: [...us, us[0] as (typeof us)[0]] })); // and a duplicate
    const res = await get(api, `?externalId=${callSid}`);
    t.equal(res.status, 200);
    t.same(
      res.body.items.map((m) => Object.keys(m).sort()),
      us.map(() => ['clientTimestamp', 'createdTimestamp', 'messageId', 'sender', 'text']),
    );
    const [first] = res.body.items;
    const u1 = us[1] as (typeof us)[1];
    t.same(first, {
      text: "my card ends in ####, it's blocked",
      sender: { role: 'customer', externalId: 'cust-1' },
      messageId: u1.eventId,
      createdTimestamp: new Date(u1.occurredAtMs).toISOString(),
      clientTimestamp: new Date(u1.speechEndedAtMs - 1200).toISOString(),
    });
    t.same(
      res.body.items.map((m) => m.text),
      ["my card ends in ####, it's blocked", 'how can I help', 'yes'],
    );
    t.match(first?.createdTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    // Audited: messages.read with the call hashed.
    const audit = await readToEnd(api.runtime.eventLog, TOPICS.audit);
    const read = audit.map((r) => r.value).filter((a) => a.action === 'messages.read');
    t.equal(read.length, 1);
    t.equal(read[0]?.appId, tenantId);
    t.equal(read[0]?.callSidHash, auditHash(api.runtime.credentials.derive(AUDIT_HASH_KEY_LABEL), callSid));
    t.equal(read[0]?.requestId, res.headers['x-request-id']);
  });

  t.test(`${backend}: at most 1000 items, the earliest; another tenant's call and an unknown call are empty`, async (t) => {
    const { api, writer } = await withApi(t, backend);
    const callSid = newCallSid();
    await writer.writeBatch(
      batchOf({
        utterances: Array.from({ length: 1003 }, (_, i) =>
          utterance({ callSid, tenantId: api.tenant.apiId, startMs: i * 10, text: `u${i}` }),
        ),
      }),
    );
    const res = await get(api, `?externalId=${callSid}`);
    t.equal(res.status, 200);
    t.equal(res.body.items.length, 1000);
    t.equal(res.body.items[0]?.text, 'u0');
    t.equal(res.body.items[999]?.text, 'u999');

    const other = await api.newTenant('tenant b');
    const foreign = await get(api, `?externalId=${callSid}`, { as: other });
    t.equal(foreign.status, 200);
    t.same(foreign.body, { items: [] }, "tenant b sees nothing of tenant a's call");
    const unknown = await get(api, `?externalId=${newCallSid()}`);
    t.same(unknown.body, { items: [] }, 'an unknown call answers the same way');
  });
}

t.test('bad requests: missing, empty, malformed or repeated externalId; no credentials', async (t) => {
  const { api } = await withApi(t, 'embedded');
  const cases: [string, RegExp][] = [
    ['', /externalId is required/],
    ['?externalId=', /externalId must be a Twilio Call SID/],
    ['?externalId=CA123', /externalId must be a Twilio Call SID/],
    [`?externalId=${newCallSid().toUpperCase()}`, /externalId must be a Twilio Call SID/],
    [`?externalId=${newCallSid()}'%20OR%201=1`, /externalId must be a Twilio Call SID/],
    [`?externalId=${newCallSid()}&externalId=${newCallSid()}`, /externalId must be one Twilio Call SID/],
  ];
  for (const [query, message] of cases) {
    const res = await get(api, query);
    t.equal(res.status, 400, query);
    t.equal(res.body.error.code, '400-01');
    t.match(res.body.error.message, message, query);
    t.equal(res.body.error.requestId, res.headers['x-request-id']);
  }
  const anonymous = await get(api, `?externalId=${newCallSid()}`, { as: null });
  t.equal(anonymous.status, 401);
  t.equal(anonymous.body.error.code, '401-01');
});

t.test('ClickHouse unreachable: 503 with retry-after, not a 500, and the API keeps serving', async (t) => {
  const target = new URL(testConfig.EARSHOT_CLICKHOUSE_URL);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  t.teardown(() => proxy.close());
  const { api, writer } = await withApi(t, 'clickhouse', proxy.url);
  const callSid = newCallSid();
  await writer.writeBatch(batchOf({ utterances: [utterance({ callSid, tenantId: api.tenant.apiId })] }));
  await proxy.cut();
  const down = await get(api, `?externalId=${callSid}`);
  t.equal(down.status, 503);
  t.equal(down.body.error.code, '503-01');
  t.equal(down.headers['retry-after'], '1');
  await proxy.restore();
  const up = await get(api, `?externalId=${callSid}`);
  t.equal(up.status, 200);
  t.equal(up.body.items.length, 1);
});
