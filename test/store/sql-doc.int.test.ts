import { readFileSync } from 'node:fs';
import t from 'tap';
import type { SessionEvent } from '../../apps/shared/src/events.js';
import { auditEvent, batchOf, clickhouseSql, clickhouseTestStore, delivery, sessionOpened, utterance } from '../support/store.js';

/**
 * docs/sql.md's example queries, taken from the document as written and run on real
 * ClickHouse over data written through the store (with duplicates, another tenant and another
 * day mixed in); each result is checked.
 */
const DOC = readFileSync(new URL('../../docs/sql.md', import.meta.url), 'utf8');
const examples = new Map([...DOC.matchAll(/```sql\n-- example: ([a-z-]+)\n([\s\S]*?)```/g)].map((m) => [m[1] as string, m[2] as string]));

const AT = (iso: string) => Date.parse(iso);

t.test('every example query of docs/sql.md runs and answers what the data says', async (t) => {
  t.same([...examples.keys()].sort(), [
    'audit-actions',
    'calls-with-phrase',
    'delivery-outcomes',
    'session-audio',
    'talk-time-per-agent',
    'utterances-per-hour',
  ]);
  const ch = clickhouseTestStore();
  t.teardown(() => ch.dispose());
  await ch.store.migrate();

  const doc1 = [
    utterance({
      callSid: 'CAdoc1',
      role: 'agent',
      senderExternalId: 'agent-1',
      startMs: 0,
      endMs: 900,
      text: 'hello',
      occurredAtMs: AT('2026-11-20T10:00:01Z'),
    }),
    utterance({
      callSid: 'CAdoc1',
      role: 'customer',
      startMs: 2000,
      endMs: 3000,
      text: 'I want a REFUND',
      occurredAtMs: AT('2026-11-20T10:00:03Z'),
    }),
    utterance({
      callSid: 'CAdoc1',
      role: 'agent',
      senderExternalId: 'agent-1',
      startMs: 4000,
      endMs: 4900,
      text: 'refund approved',
      occurredAtMs: AT('2026-11-20T10:00:05Z'),
    }),
  ];
  const doc2 = [
    utterance({
      callSid: 'CAdoc2',
      role: 'agent',
      senderExternalId: 'agent-2',
      startMs: 0,
      endMs: 2000,
      text: 'good morning',
      occurredAtMs: AT('2026-11-20T11:30:00Z'),
    }),
    utterance({
      callSid: 'CAdoc2',
      role: 'customer',
      startMs: 3000,
      endMs: 3500,
      text: 'thanks',
      occurredAtMs: AT('2026-11-20T11:30:05Z'),
    }),
  ];
  const previousDay = utterance({
    callSid: 'CAdoc3',
    role: 'agent',
    senderExternalId: 'agent-1',
    startMs: 0,
    endMs: 900,
    text: 'late call',
    occurredAtMs: AT('2026-11-19T23:59:00Z'),
  });
  const otherTenant = utterance({
    callSid: 'CAdocB',
    tenantId: 'tenant-b',
    role: 'agent',
    senderExternalId: 'agent-9',
    text: 'refund for b',
    occurredAtMs: AT('2026-11-20T10:10:00Z'),
  });
  const closed: SessionEvent = {
    eventId: 'close-CAdoc1',
    callSid: 'CAdoc1',
    tenantId: 'tenant-a',
    occurredAtMs: AT('2026-11-20T10:01:00Z'),
    type: 'TranscriptionSessionClosed',
    data: {
      requestId: null,
      reason: 'stream_ended',
      summaries: [
        {
          role: 'customer',
          streamId: 'customer-stream',
          totalAudioBytes: 1,
          audioDurationMs: 61_000,
          streamingSeconds: 61,
          transcripts: 1,
        },
        { role: 'agent', streamId: 'agent-stream', totalAudioBytes: 1, audioDurationMs: 58_500, streamingSeconds: 59, transcripts: 2 },
      ],
      commandPartition: 0,
      commandOffset: 3,
    },
  };
  const slow = { ...delivery(doc2[0] as (typeof doc2)[0], 'timeout'), latencyMs: 5000 };
  const batch = batchOf({
    utterances: [...doc1, ...doc2, previousDay, otherTenant],
    sessions: [sessionOpened('CAdoc1', 'tenant-a', AT('2026-11-20T10:00:00Z')), closed],
    deliveries: [delivery(doc1[0] as (typeof doc1)[0]), delivery(doc1[1] as (typeof doc1)[0]), slow, delivery(otherTenant)],
    audit: [
      auditEvent('messages.read', 1),
      auditEvent('messages.read', 2),
      auditEvent('stream_url.issued', 3),
      auditEvent('messages.read', 4, 'tenant-b'),
    ],
  });
  await ch.store.writeBatch(batch);
  await ch.store.writeBatch(batch); // a replay: the examples must not count it twice

  const sql = clickhouseSql(ch.location);
  t.teardown(() => sql.close());
  const run = async (name: string) =>
    (await sql.query({ query: examples.get(name) as string, format: 'JSONEachRow' })).json<Record<string, unknown>>();

  t.same(await run('utterances-per-hour'), [
    { hour: '2026-11-20 10:00:00', utterances: 3 },
    { hour: '2026-11-20 11:00:00', utterances: 2 },
  ]);
  t.same(await run('talk-time-per-agent'), [
    { agent: 'agent-1', talk_seconds: 2.7, calls: 2 },
    { agent: 'agent-2', talk_seconds: 2, calls: 1 },
  ]);
  t.same(await run('calls-with-phrase'), [
    { call_sid: 'CAdoc1', mentions: 2, first_at_ms: AT('2026-11-20T10:00:03Z'), first_said_by: 'customer' },
  ]);
  t.same(await run('session-audio'), [
    { call_sid: 'CAdoc1', reason: 'stream_ended', customer_audio_ms: 61_000, agent_audio_ms: 58_500, transcripts: 3 },
  ]);
  t.same(await run('delivery-outcomes'), [
    { tenant_id: 'tenant-a', day: '2026-11-20', outcome: 'delivered', deliveries: 2, avg_latency_ms: 12, max_latency_ms: 12 },
    { tenant_id: 'tenant-a', day: '2026-11-20', outcome: 'timeout', deliveries: 1, avg_latency_ms: 5000, max_latency_ms: 5000 },
    { tenant_id: 'tenant-b', day: '2026-11-20', outcome: 'delivered', deliveries: 1, avg_latency_ms: 12, max_latency_ms: 12 },
  ]);
  t.same(await run('audit-actions'), [
    { app_id: 'tenant-a', action: 'messages.read', times: 2, calls: 1 },
    { app_id: 'tenant-a', action: 'stream_url.issued', times: 1, calls: 1 },
    { app_id: 'tenant-b', action: 'messages.read', times: 1, calls: 1 },
  ]);
});
