import type { Test } from 'tap';
import type { StoredUtterance, TranscriptStore } from '../../apps/shared/src/ports/transcript-store.port.js';
import {
  auditEvent,
  batchOf,
  type DisposableStore,
  delivery,
  sessionClosed,
  sessionOpened,
  TEST_DAY_START_MS,
  utterance,
} from '../support/store.js';

/**
 * One behaviour suite for every TranscriptStore adapter (ClickHouse and the embedded DuckDB
 * file). Each run gets a database/file of its own.
 */
export function transcriptStoreContract(t: Test, create: () => DisposableStore<TranscriptStore>): void {
  let made: DisposableStore<TranscriptStore>;
  let store: TranscriptStore;
  t.before(async () => {
    made = create();
    store = made.store;
    await store.migrate();
  });
  t.teardown(async () => made.dispose());

  const collect = async (iterable: AsyncIterable<StoredUtterance>) => {
    const out: StoredUtterance[] = [];
    for await (const u of iterable) out.push(u);
    return out;
  };

  t.test('migrate is idempotent, also when two nodes run it at once', async (t) => {
    const a = made.reopen();
    const b = made.reopen();
    await Promise.all([a.migrate(), b.migrate()]);
    await store.migrate();
    await a.writeBatch(batchOf({ utterances: [utterance({ callSid: 'CAmigrate', startMs: 5 })] }));
    t.equal((await b.callMessages('tenant-a', 'CAmigrate', 10)).length, 1);
  });

  t.test('writes and reads back every field of an utterance', async (t) => {
    const u = utterance({ callSid: 'CAroundtrip', startMs: 1234, endMs: 2345, unredactedText: 'secret 4111', text: 'secret ####' });
    await store.writeBatch(batchOf({ utterances: [u] }));
    t.same(await store.callMessages('tenant-a', 'CAroundtrip', 1000), [
      {
        eventId: u.eventId,
        utteranceId: u.utteranceId,
        tenantId: 'tenant-a',
        callSid: 'CAroundtrip',
        streamId: 'customer-stream',
        role: 'customer',
        senderExternalId: 'cust-1',
        startMs: 1234,
        endMs: 2345,
        text: 'secret ####', // the redacted text when redaction was in force; the plain text is not stored
        language: 'en-US',
        speechEndedAtMs: u.speechEndedAtMs,
        occurredAtMs: u.occurredAtMs,
      },
    ]);
  });

  t.test('shows the plain text when the session asked for unredacted output only', async (t) => {
    await store.writeBatch(batchOf({ utterances: [utterance({ callSid: 'CAplain', text: null, unredactedText: 'card 4111 1111' })] }));
    t.same(
      (await store.callMessages('tenant-a', 'CAplain', 10)).map((m) => m.text),
      ['card 4111 1111'],
    );
  });

  t.test('duplicate utterance events collapse, within a batch and across batches', async (t) => {
    const us = [0, 1000, 2000].map((startMs) => utterance({ callSid: 'CAdup', startMs }));
    await store.writeBatch(batchOf({ utterances: [...us, us[0], us[0]] as typeof us }));
    await store.writeBatch(batchOf({ utterances: us }));
    // A replay: same ids, produced again later.
    await store.writeBatch(batchOf({ utterances: us.map((u) => ({ ...u, occurredAtMs: u.occurredAtMs + 5000 })) }));
    const read = await store.callMessages('tenant-a', 'CAdup', 1000);
    t.same(
      read.map((m) => m.utteranceId),
      us.map((u) => u.utteranceId),
    );
    const day = await collect(store.utterancesCreatedBetween(TEST_DAY_START_MS, TEST_DAY_START_MS + 86_400_000));
    t.equal(day.filter((m) => m.callSid === 'CAdup').length, 3, 'the export sees each utterance once too');
  });

  t.test('a call reads in time order (start, then stream), both sides interleaved', async (t) => {
    const writes = [
      utterance({ callSid: 'CAorder', role: 'agent', startMs: 3000 }),
      utterance({ callSid: 'CAorder', role: 'customer', startMs: 500 }),
      utterance({ callSid: 'CAorder', role: 'agent', startMs: 500 }),
      utterance({ callSid: 'CAorder', role: 'customer', startMs: 12_000 }),
    ];
    await store.writeBatch(batchOf({ utterances: writes.slice(0, 2) }));
    await store.writeBatch(batchOf({ utterances: writes.slice(2) }));
    const read = await store.callMessages('tenant-a', 'CAorder', 1000);
    t.same(
      read.map((m) => `${m.startMs}/${m.role}`),
      ['500/agent', '500/customer', '3000/agent', '12000/customer'],
    );
  });

  t.test('a reconnect (a second media stream, start ms from 0 again) reads after the first stream', async (t) => {
    const first = [0, 4000, 9000].map((startMs, i) =>
      utterance({ callSid: 'CAreconnect', role: i % 2 ? 'agent' : 'customer', startMs, mediaStream: 'MZfirst' }),
    );
    const second = [300, 2500].map((startMs, i) =>
      utterance({
        callSid: 'CAreconnect',
        role: i % 2 ? 'agent' : 'customer',
        startMs,
        mediaStream: 'MZsecond',
        occurredAtMs: (first[2]?.occurredAtMs ?? 0) + 5000 + startMs, // recognized after the first stream's
      }),
    );
    await store.writeBatch(batchOf({ utterances: [...second, ...first] }));
    t.same(
      (await store.callMessages('tenant-a', 'CAreconnect', 1000)).map((m) =>
        m.utteranceId.split(':').slice(1, 2).concat(String(m.startMs)).join('@'),
      ),
      ['MZfirst@0', 'MZfirst@4000', 'MZfirst@9000', 'MZsecond@300', 'MZsecond@2500'],
    );
  });

  t.test('returns at most the limit, the earliest first', async (t) => {
    const us = Array.from({ length: 1005 }, (_, i) => utterance({ callSid: 'CAlimit', startMs: (1005 - i) * 100 }));
    await store.writeBatch(batchOf({ utterances: us }));
    const read = await store.callMessages('tenant-a', 'CAlimit', 1000);
    t.equal(read.length, 1000);
    t.equal(read[0]?.startMs, 100);
    t.equal(read[999]?.startMs, 100_000);
  });

  t.test("a tenant never reads another tenant's call; an unknown call is empty", async (t) => {
    await store.writeBatch(batchOf({ utterances: [utterance({ callSid: 'CAtenant', tenantId: 'tenant-a' })] }));
    t.equal((await store.callMessages('tenant-a', 'CAtenant', 10)).length, 1);
    t.same(await store.callMessages('tenant-b', 'CAtenant', 10), []);
    t.same(await store.callMessages('tenant-a', 'CAnever', 10), []);
  });

  t.test('quotes, backslashes, NUL, control characters and unicode survive, in values and in filters', async (t) => {
    const nasty = "it's a \\ back\\\\slash, a NUL \u0000 here, tab\t, newline\n, 'quote' \"dq\" — naïve 日本語 🎧";
    const callSid = "CA'); DROP TABLE utterances; --\\";
    const tenantId = "tenant'\\\u0000";
    await store.writeBatch(batchOf({ utterances: [utterance({ callSid, tenantId, text: nasty, senderExternalId: "o'brien\\" })] }));
    const [read] = await store.callMessages(tenantId, callSid, 10);
    t.equal(read?.text, nasty);
    t.equal(read?.senderExternalId, "o'brien\\");
    t.equal(read?.callSid, callSid);
    t.same(await store.callMessages('tenant', callSid, 10), [], 'a prefix of the tenant id matches nothing');
    t.equal((await store.callMessages('tenant-a', 'CAroundtrip', 10)).length, 1, 'the table is still there');
  });

  t.test('utterancesCreatedBetween: [from, to), every tenant, ordered by tenant then time, across hours', async (t) => {
    const dayStart = Date.UTC(2026, 10, 23);
    const at = (h: number, m: number) => dayStart + h * 3_600_000 + m * 60_000;
    const rows = [
      utterance({ callSid: 'CAexp1', tenantId: 'tenant-b', startMs: 0, occurredAtMs: at(0, 0) }),
      utterance({ callSid: 'CAexp1', tenantId: 'tenant-b', startMs: 10, occurredAtMs: at(13, 30) }),
      utterance({ callSid: 'CAexp2', tenantId: 'tenant-a', startMs: 0, occurredAtMs: at(23, 59) }),
      utterance({ callSid: 'CAexp2', tenantId: 'tenant-a', startMs: 10, occurredAtMs: at(1, 0) }),
      utterance({ callSid: 'CAexp3', tenantId: 'tenant-a', startMs: 0, occurredAtMs: at(24, 0) }), // next day
      utterance({ callSid: 'CAexp3', tenantId: 'tenant-a', startMs: 10, occurredAtMs: dayStart - 1 }), // previous day
    ];
    await store.writeBatch(batchOf({ utterances: rows }));
    const day = await collect(store.utterancesCreatedBetween(dayStart, dayStart + 86_400_000));
    t.same(
      day.map((u) => `${u.tenantId} ${u.callSid} ${u.occurredAtMs - dayStart}`),
      [
        `tenant-a CAexp2 ${at(1, 0) - dayStart}`,
        `tenant-a CAexp2 ${at(23, 59) - dayStart}`,
        'tenant-b CAexp1 0',
        `tenant-b CAexp1 ${at(13, 30) - dayStart}`,
      ],
    );
  });

  t.test('accepts lifecycle events, delivery outcomes and audit records, idempotently', async (t) => {
    const u = utterance({ callSid: 'CAother' });
    const batch = batchOf({
      utterances: [u],
      sessions: [sessionOpened('CAother'), sessionClosed('CAother')],
      deliveries: [delivery(u), delivery(utterance({ callSid: 'CAother', startMs: 99 }), 'timeout')],
      audit: [auditEvent('messages.read', 1), auditEvent('stream-url.issued', 2)],
    });
    await store.writeBatch(batch);
    await store.writeBatch(batch);
    t.equal((await store.callMessages('tenant-a', 'CAother', 10)).length, 1);
  });

  t.test('what was written survives closing and reopening the store', async (t) => {
    const again = made.reopen();
    await again.migrate();
    t.equal((await again.callMessages('tenant-a', 'CAorder', 1000)).length, 4);
  });
}
