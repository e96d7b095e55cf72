import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createEmbeddedEventLog } from '../../apps/shared/src/adapters/embedded-event-log.js';
import type { AppState } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { renamedTopic, TOPICS } from '../../apps/shared/src/topics.js';
import { eventLogContract } from '../contracts/event-log.js';
import { waitFor } from '../support/wait.js';

const logger = createLogger({ level: 'silent', name: 'test' });
const dataDir = mkdtempSync(join(tmpdir(), 'earshot-embedded-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

t.test('event log contract: embedded adapter', async (t) => {
  eventLogContract(t, {
    partitions: 4,
    create: async () => createEmbeddedEventLog({ dataDir, partitions: 4, logger, pollIntervalMs: 50 }),
  });
});

t.test('file-backed topics survive a restart and see records appended by another process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const topic = renamedTopic(TOPICS.apps, 'earshot.apps-restart');
  const state = (name: string): AppState => ({
    eventId: name,
    apiId: 'app1',
    occurredAtMs: 1,
    name,
    secretHash: 'h',
    disabled: false,
    webhookUrl: null,
    encryptedWebhookAuth: null,
    encryptedTwilioAuthToken: null,
    type: 'AppCreated',
    data: { name, secretHash: 'h' },
  });
  const gateway = createEmbeddedEventLog({ dataDir: dir, partitions: 2, logger, pollIntervalMs: 50 });
  await gateway.ensureTopics([topic]);
  const seen: string[] = [];
  const consumer = gateway.createConsumer({ groupId: 'gateway', topics: [topic] });
  await consumer.run(async (batch) => {
    for (const r of batch.records as LogRecord<AppState>[]) seen.push(r.value.name);
  });
  // A second log instance on the same directory stands for the `earshot apps` CLI process.
  const cli = createEmbeddedEventLog({ dataDir: dir, partitions: 2, logger });
  await cli.ensureTopics([topic]);
  await cli.produce(topic, [{ key: 'app1', value: state('v1') }]);
  await cli.produce(topic, [{ key: 'app1', value: state('v2') }]);
  await cli.close();
  await waitFor('the gateway sees the latest record from the other writer', () => seen.at(-1) === 'v2');
  t.ok(seen.length >= 1 && seen.length <= 2, 'v1 may already be compacted away, as on Kafka');
  await gateway.close();

  const restarted = createEmbeddedEventLog({ dataDir: dir, partitions: 2, logger });
  await restarted.ensureTopics([topic]);
  const replay: string[] = [];
  const again = restarted.createConsumer({ groupId: 'fresh', topics: [topic] });
  await again.run(async (batch) => {
    for (const r of batch.records as LogRecord<AppState>[]) replay.push(r.value.name);
  });
  await waitFor('replay', () => replay.length >= 1);
  await restarted.close();
  t.same(replay, ['v2'], 'compacted on load: only the latest state of the key');
});

t.test('committed offsets of file-backed topics survive a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-embedded-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const topic = renamedTopic(TOPICS.audit, 'earshot.audit-restart');
  const record = (n: number) => ({
    key: 'app1',
    value: {
      eventId: `e${n}`,
      appId: 'app1',
      action: 'x',
      requestId: String(n),
      callSidHash: null,
      clientAddressHash: null,
      occurredAtMs: n,
    },
  });
  const first = createEmbeddedEventLog({ dataDir: dir, partitions: 1, logger });
  await first.ensureTopics([topic]);
  await first.produce(topic, [record(1), record(2), record(3)]);
  const c1 = first.createConsumer({ groupId: 'g', topics: [topic] });
  let count = 0;
  await c1.run(async (batch) => {
    count += batch.records.length;
    await c1.commit([{ topic: batch.topic, partition: batch.partition, offset: 2 }]);
  });
  await waitFor('consumed', () => count >= 3);
  await first.close();

  const second = createEmbeddedEventLog({ dataDir: dir, partitions: 1, logger });
  await second.ensureTopics([topic]);
  const seen: string[] = [];
  const c2 = second.createConsumer({ groupId: 'g', topics: [topic] });
  await c2.run(async (batch) => {
    for (const r of batch.records) seen.push((r.value as { requestId: string }).requestId);
  });
  await waitFor('resumed', () => seen.length >= 1);
  await second.close();
  t.same(seen, ['3']);
});

t.test('a handler that throws gets the same batch again, and other partitions keep flowing', async (t) => {
  const log = createEmbeddedEventLog({ dataDir: null, partitions: 2, logger });
  const topic = renamedTopic(TOPICS.audit, 'earshot.audit-retry');
  await log.ensureTopics([topic]);
  let failures = 0;
  const seen: string[] = [];
  const consumer = log.createConsumer({ groupId: 'g', topics: [topic] });
  await consumer.run(async (batch) => {
    if (batch.records.some((r) => r.key === 'poison') && failures++ === 0) throw new Error('transient');
    for (const r of batch.records) seen.push(r.key);
  });
  // Find two keys that land in different partitions.
  await log.produce(
    topic,
    ['poison', 'a', 'b', 'c', 'd'].map((key, i) => ({
      key,
      value: { eventId: key, appId: key, action: 'x', requestId: String(i), callSidHash: null, clientAddressHash: null, occurredAtMs: i },
    })),
  );
  await waitFor('all five after one retry', () => seen.length >= 5);
  await log.close();
  t.equal(failures, 2, 'failed once, then retried');
  t.same([...seen].sort(), ['a', 'b', 'c', 'd', 'poison']);
});
