import type { Test } from 'tap';
import { isEarshotError } from '../../apps/shared/src/errors.js';
import type { AppState, AuditRecorded } from '../../apps/shared/src/events.js';
import type { EventLog, EventLogConsumer, LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { renamedTopic, TOPICS } from '../../apps/shared/src/topics.js';
import { randomSuffix, sleep, waitFor } from '../support/wait.js';

/**
 * One behaviour suite for every EventLog adapter (embedded and Kafka). Each test uses fresh
 * topics and groups, so tests never see each other's records.
 */
export interface EventLogHarness {
  /** A log whose topics get `partitions` partitions. */
  create(): Promise<EventLog>;
  readonly partitions: number;
}

const audit = (appId: string, seq: number): AuditRecorded => ({
  eventId: `${appId}-${seq}`,
  appId,
  action: 'contract.test',
  requestId: String(seq),
  callSidHash: null,
  clientAddressHash: null,
  occurredAtMs: Date.now(),
});

const appState = (apiId: string, name: string): AppState => ({
  eventId: `${apiId}-${name}`,
  apiId,
  occurredAtMs: Date.now(),
  name,
  secretHash: 'scrypt$test',
  disabled: false,
  webhookUrl: null,
  encryptedWebhookAuth: null,
  encryptedTwilioAuthToken: null,
  type: 'AppCreated',
  data: { name, secretHash: 'scrypt$test' },
});

/** Runs a consumer that commits after every batch (unless told not to) and collects what it saw. */
async function collect(log: EventLog, groupId: string, topic: ReturnType<typeof freshAuditTopic>, options: { commit?: boolean } = {}) {
  const seen: LogRecord<AuditRecorded>[] = [];
  const consumer = log.createConsumer({ groupId, topics: [topic] });
  await consumer.run(async (batch) => {
    seen.push(...(batch.records as LogRecord<AuditRecorded>[]));
    if (options.commit !== false) {
      const last = batch.records[batch.records.length - 1] as LogRecord;
      await consumer.commit([{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1 }]);
    }
  });
  return { consumer, seen };
}

const freshAuditTopic = () => renamedTopic(TOPICS.audit, `earshot.test-${randomSuffix()}`);
const freshGroup = () => `test-group-${randomSuffix()}`;

export function eventLogContract(t: Test, harness: EventLogHarness): void {
  let log: EventLog;
  t.before(async () => {
    log = await harness.create();
  });
  t.teardown(async () => {
    await log.close();
  });

  t.test('creates topics with the requested partitions, retention and compaction', async (t) => {
    const calls = renamedTopic(TOPICS.callEvents, `earshot.test-${randomSuffix()}`);
    const apps = renamedTopic(TOPICS.apps, `earshot.test-${randomSuffix()}`);
    await log.ensureTopics([calls, apps]);
    await log.ensureTopics([calls]); // idempotent
    t.same(await log.describeTopic(calls.name), {
      name: calls.name,
      partitions: harness.partitions,
      compacted: false,
      retentionMs: 6 * 3_600_000,
    });
    const described = await log.describeTopic(apps.name);
    t.equal(described.compacted, true);
    t.equal(described.partitions, harness.partitions);
  });

  t.test('keeps the order of each key and puts each key in one partition', async (t) => {
    const topic = freshAuditTopic();
    await log.ensureTopics([topic]);
    const keys = Array.from({ length: 10 }, (_, i) => `CA${i}`);
    for (let round = 0; round < 20; round++) {
      await log.produce(
        topic,
        keys.map((key) => ({ key, value: audit(key, round) })),
      );
    }
    const { consumer, seen } = await collect(log, freshGroup(), topic);
    await waitFor('200 records', () => seen.length >= 200);
    await consumer.stop();
    t.equal(seen.length, 200, 'each record exactly once');
    for (const key of keys) {
      const mine = seen.filter((r) => r.key === key);
      t.same(
        mine.map((r) => Number(r.value.requestId)),
        Array.from({ length: 20 }, (_, i) => i),
        `${key} in produce order`,
      );
      t.equal(new Set(mine.map((r) => r.partition)).size, 1, `${key} in one partition`);
    }
    t.ok(new Set(seen.map((r) => r.partition)).size > 1, 'keys spread over several partitions');
  });

  t.test('a new consumer of the group resumes from the committed offset', async (t) => {
    const topic = freshAuditTopic();
    const group = freshGroup();
    await log.ensureTopics([topic]);
    await log.produce(
      topic,
      Array.from({ length: 10 }, (_, i) => ({ key: 'CAresume', value: audit('CAresume', i) })),
    );
    const first: LogRecord<AuditRecorded>[] = [];
    const a = log.createConsumer({ groupId: group, topics: [topic] });
    await a.run(async (batch) => {
      for (const record of batch.records as LogRecord<AuditRecorded>[]) {
        first.push(record);
        // Commit only the first five: the rest count as not processed.
        if (record.value.requestId === '4')
          await a.commit([{ topic: record.topic, partition: record.partition, offset: record.offset + 1 }]);
      }
    });
    await waitFor('10 records', () => first.length >= 10);
    const partition = (first[0] as LogRecord).partition;
    t.equal(await a.committed({ topic: topic.name, partition }), (first[4] as LogRecord).offset + 1, 'commit recorded');
    await a.stop();
    const { consumer: b, seen } = await collect(log, group, topic);
    await waitFor('5 records', () => seen.length >= 5);
    await sleep(300);
    await b.stop();
    t.same(
      seen.map((r) => r.value.requestId),
      ['5', '6', '7', '8', '9'],
    );
  });

  t.test('redelivers records that a consumer read but never committed', async (t) => {
    const topic = freshAuditTopic();
    const group = freshGroup();
    await log.ensureTopics([topic]);
    await log.produce(
      topic,
      Array.from({ length: 5 }, (_, i) => ({ key: `CA${i}`, value: audit(`CA${i}`, i) })),
    );
    const a = await collect(log, group, topic, { commit: false });
    await waitFor('5 records', () => a.seen.length >= 5);
    await a.consumer.stop(); // dies before committing anything
    const b = await collect(log, group, topic);
    await waitFor('5 redelivered records', () => b.seen.length >= 5);
    await b.consumer.stop();
    t.same(b.seen.map((r) => r.value.eventId).sort(), a.seen.map((r) => r.value.eventId).sort());
  });

  t.test('two consumers of a group split the partitions, and one takes over when the other leaves', async (t) => {
    const topic = freshAuditTopic();
    const group = freshGroup();
    await log.ensureTopics([topic]);
    const one = await collect(log, group, topic);
    const two = await collect(log, group, topic);
    const all = Array.from({ length: harness.partitions }, (_, i) => i);
    const parts = (c: EventLogConsumer) => c.assignment().map((tp) => tp.partition);
    await waitFor('both consumers assigned, disjoint, covering all partitions', () => {
      const a = parts(one.consumer);
      const b = parts(two.consumer);
      return a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === all.join();
    });
    const keys = Array.from({ length: 40 }, (_, i) => `CAsplit${i}`);
    await log.produce(
      topic,
      keys.map((key, i) => ({ key, value: audit(key, i) })),
    );
    await waitFor('40 records between them', () => one.seen.length + two.seen.length >= 40);
    t.ok(one.seen.length > 0 && two.seen.length > 0, `both consumed (${one.seen.length} + ${two.seen.length})`);

    await two.consumer.stop();
    await waitFor('the remaining consumer owns every partition', () => parts(one.consumer).sort().join() === all.join());
    const before = one.seen.length;
    await log.produce(
      topic,
      keys.map((key, i) => ({ key, value: audit(key, 100 + i) })),
    );
    await waitFor(
      'the remaining consumer gets all 40 new records',
      () => one.seen.filter((r) => Number(r.value.requestId) >= 100).length >= 40,
    );
    await one.consumer.stop();
    t.equal(one.seen.length - before, 40, 'nothing committed was delivered again');
  });

  t.test('replaying a compacted topic yields the latest state of each key', async (t) => {
    const topic = renamedTopic(TOPICS.apps, `earshot.test-${randomSuffix()}`);
    await log.ensureTopics([topic]);
    await log.produce(topic, [
      { key: 'app1', value: appState('app1', 'first') },
      { key: 'app2', value: appState('app2', 'other') },
    ]);
    await log.produce(topic, [{ key: 'app1', value: appState('app1', 'renamed') }]);
    const state = new Map<string, string>();
    const consumer = log.createConsumer({ groupId: freshGroup(), topics: [topic] });
    await consumer.run(async (batch) => {
      for (const record of batch.records as LogRecord<AppState>[]) state.set(record.key, record.value.name);
    });
    await waitFor('both keys replayed', () => state.get('app1') === 'renamed' && state.has('app2'));
    await consumer.stop();
    t.same(Object.fromEntries(state), { app1: 'renamed', app2: 'other' });
  });

  t.test('rejects a record that does not match its schema and writes nothing of that call', async (t) => {
    const topic = freshAuditTopic();
    await log.ensureTopics([topic]);
    const bad = { ...audit('CAbad', 1), occurredAtMs: 'yesterday' } as unknown as AuditRecorded;
    const error = await log
      .produce(topic, [
        { key: 'CAbad', value: audit('CAbad', 0) },
        { key: 'CAbad', value: bad },
      ])
      .then(
        () => null,
        (e: unknown) => e,
      );
    t.ok(isEarshotError(error, 'EARSHOT_SCHEMA_INVALID'), 'rejected with EARSHOT_SCHEMA_INVALID');
    t.match((error as Error).message, /occurredAtMs=string/, 'names the field and the kind of value');
    await log.produce(topic, [{ key: 'CAbad', value: audit('CAbad', 2) }]);
    const { consumer, seen } = await collect(log, freshGroup(), topic);
    await waitFor('the marker record', () => seen.length >= 1);
    await sleep(200);
    await consumer.stop();
    t.same(
      seen.map((r) => r.value.requestId),
      ['2'],
      'only the record produced after the rejected call',
    );
  });

  t.test('reports end offsets, and reads a topic to its end', async (t) => {
    const topic = freshAuditTopic();
    await log.ensureTopics([topic]);
    t.same(
      await log.endOffsets(topic.name),
      Array.from({ length: harness.partitions }, () => 0),
      'empty topic',
    );
    t.same(await readToEnd(log, topic), [], 'nothing to read');
    const keys = ['CAa', 'CAb', 'CAc', 'CAd', 'CAe'];
    await log.produce(
      topic,
      keys.map((key, i) => ({ key, value: audit(key, i) })),
    );
    const ends = await log.endOffsets(topic.name);
    t.equal(
      ends.reduce((a, b) => a + b, 0),
      5,
      'end offsets add up to the records written',
    );
    const records = await readToEnd(log, topic);
    t.same(records.map((r) => r.key).sort(), keys);
  });

  t.test('decodes to the same value it was given, bytes included', async (t) => {
    const topic = renamedTopic(TOPICS.callEvents, `earshot.test-${randomSuffix()}`);
    await log.ensureTopics([topic]);
    const payload = Buffer.from(Array.from({ length: 800 }, (_, i) => (i * 37) % 256));
    const value = {
      eventId: 'e1',
      callSid: 'CAbytes',
      tenantId: 'app1',
      occurredAtMs: 1_700_000_000_123,
      type: 'AudioChunkReceived' as const,
      data: { streamSid: 'MZ1', track: 'inbound' as const, firstChunk: 1, lastChunk: 5, timestampMs: 20, durationMs: 100, payload },
    };
    const timestampMs = Date.now() - 1000;
    await log.produce(topic, [{ key: 'CAbytes', value, timestampMs }]);
    const seen: LogRecord[] = [];
    const consumer = log.createConsumer({ groupId: freshGroup(), topics: [topic] });
    await consumer.run(async (batch) => {
      seen.push(...batch.records);
    });
    await waitFor('the record', () => seen.length >= 1);
    await consumer.stop();
    const record = seen[0] as LogRecord<typeof value>;
    t.same(record.value, value);
    t.ok(Buffer.isBuffer(record.value.data.payload) && record.value.data.payload.equals(payload), 'payload bytes intact');
    t.equal(record.timestampMs, timestampMs, 'record timestamp kept');
    t.equal(record.key, 'CAbytes');
  });
}
