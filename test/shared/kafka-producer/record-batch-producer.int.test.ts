import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import kafkajs from 'kafkajs';
import t, { type Test } from 'tap';
import { RecordBatchProducer } from '../../../apps/shared/src/adapters/kafka-producer/record-batch-producer.js';
import { isEarshotError } from '../../../apps/shared/src/errors.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import { kafkaEventLog, testConfig } from '../../support/infra.js';
import { randomSuffix } from '../../support/wait.js';
import { kafkajsPartition } from './kafkajs-partition.js';

// Our producer against the real broker: kafkajs (an independent client) reads what it wrote.
const brokers = testConfig.EARSHOT_KAFKA_BROKERS.split(',');
const [brokerHost, brokerPort] = (brokers[0] as string).split(':') as [string, string];
const kafka = new kafkajs.Kafka({ clientId: 'earshot-test-reader', brokers, logLevel: kafkajs.logLevel.NOTHING });

async function createTopic(t: Test, partitions: number): Promise<string> {
  const topic = `test-producer-${randomSuffix()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] });
  t.teardown(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });
  return topic;
}

interface Read {
  readonly partition: number;
  readonly key: string;
  readonly value: Buffer;
  readonly timestampMs: number;
}

/** Everything in `topic` now: read until every partition's end offset. */
async function readAll(topic: string): Promise<Read[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(ends.filter((e) => Number(e.high) > 0).map((e) => [e.partition, Number(e.high)]));
  const consumer = kafka.consumer({ groupId: `reader-${randomSuffix()}`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const read: Read[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`read ${read.length} records, partitions not finished: ${[...remaining.keys()]}`)),
      30_000,
    );
    if (remaining.size === 0) resolve();
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        read.push({ partition, key: String(message.key), value: message.value ?? Buffer.alloc(0), timestampMs: Number(message.timestamp) });
        if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
        if (remaining.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return read;
}

/** Leaders all at the real broker (or at `address`). */
const layoutAt = (address: { host: string; port: number }, partitions: number) => async () => ({
  leaders: Array.from({ length: partitions }, () => address),
});

t.test('records land in the partition kafkajs would choose, with their bytes, timestamps and per-key order', async (t) => {
  const partitions = 6;
  const topic = await createTopic(t, partitions);
  const producer = new RecordBatchProducer({
    clientId: 'earshot-test',
    metadata: layoutAt({ host: brokerHost, port: Number(brokerPort) }, partitions),
  });
  t.teardown(() => producer.close());
  const keys = Array.from({ length: 40 }, () => `CA${randomBytes(16).toString('hex')}`);
  const sent: { key: string; value: Buffer; timestampMs: number }[] = [];
  const base = Date.now() - 60_000;
  for (let round = 0; round < 5; round++) {
    const batch = keys.map((key, i) => ({ key, value: randomBytes(800 + ((i * 37) % 300)), timestampMs: base + round * 100 + (i % 7) }));
    sent.push(...batch);
    await producer.send(topic, batch);
  }
  const read = await readAll(topic);
  t.equal(read.length, sent.length, 'every record once');
  let wrongPartition = 0;
  let wrongOrder = 0;
  for (const key of keys) {
    const expected = kafkajsPartition(key, partitions);
    const ofKey = read.filter((r) => r.key === key);
    if (ofKey.some((r) => r.partition !== expected)) wrongPartition++;
    const want = sent.filter((s) => s.key === key);
    if (
      ofKey.length !== want.length ||
      ofKey.some(
        (r, i) =>
          !r.value.equals((want[i] as { value: Buffer }).value) || r.timestampMs !== (want[i] as { timestampMs: number }).timestampMs,
      )
    )
      wrongOrder++;
  }
  t.equal(wrongPartition, 0, 'each key in the partition kafkajs (and the Java client) would choose');
  t.equal(wrongOrder, 0, 'each key: values and timestamps in the order produced');
});

t.test('a connection cut after the request went out: the records are sent again and all arrive, in order per key', async (t) => {
  const partitions = 3;
  const topic = await createTopic(t, partitions);
  // A TCP relay to the real broker that drops the client after relaying its 2nd request, before the answer.
  let connections = 0;
  let requests = 0;
  const relay = createServer((client: Socket) => {
    connections++;
    const upstream = createConnection({ host: brokerHost, port: Number(brokerPort) });
    let cut = false;
    client.on('data', (chunk) => {
      requests++;
      upstream.write(chunk);
      if (requests === 2) {
        cut = true;
        client.destroy();
        upstream.destroy();
      }
    });
    upstream.on('data', (chunk) => {
      if (!cut) client.write(chunk);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.teardown(() => new Promise<void>((resolve) => relay.close(() => resolve())));
  const producer = new RecordBatchProducer({
    clientId: 'earshot-test',
    metadata: layoutAt({ host: '127.0.0.1', port: (relay.address() as AddressInfo).port }, partitions),
  });
  t.teardown(() => producer.close());
  const keys = ['CAone', 'CAtwo', 'CAthree', 'CAfour'];
  const sent: string[][] = keys.map(() => []);
  for (let round = 0; round < 4; round++) {
    await producer.send(
      topic,
      keys.map((key, k) => {
        const value = `${key}-${round}`;
        (sent[k] as string[]).push(value);
        return { key, value: Buffer.from(value), timestampMs: Date.now() };
      }),
    );
  }
  t.ok(connections >= 2, `reconnected after the cut (${connections} connections)`);
  // The cut request reached the broker: its records may be there twice (at least once, like the client it replaces).
  const read = await readAll(topic);
  t.ok(read.length >= keys.length * 4, `${read.length} records read for ${keys.length * 4} sent`);
  for (const [k, key] of keys.entries()) {
    const values = read.filter((r) => r.key === key).map((r) => r.value.toString());
    const firstSeen = values.filter((v, i) => values.indexOf(v) === i);
    t.same(firstSeen, sent[k], `${key}: every record, first copies in order`);
  }
});

t.test('through the event log: a record over the broker size limit is refused for good, an unknown topic is unavailable', async (t) => {
  const namespace = `test-refused-${randomSuffix()}`;
  const log = kafkaEventLog(1, namespace);
  t.teardown(() => log.close());
  await log.ensureTopics([TOPICS.audit]);
  const big = {
    eventId: 'e1',
    appId: 'app_1',
    action: 'x'.repeat(2_000_000), // the broker's message.max.bytes is ~1 MB
    requestId: 'r1',
    callSidHash: null,
    clientAddressHash: null,
    occurredAtMs: Date.now(),
  };
  const refused = await log.produce(TOPICS.audit, [{ key: 'app_1', value: big }]).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isEarshotError(refused, 'EARSHOT_EVENT_LOG_REFUSED'), 'refused, not unavailable');
  t.match(
    refused,
    { retriable: false, message: /MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/ },
    'names the reason; callers drop it instead of retrying forever',
  );
  const fine = { ...big, action: 'stream_url.issued' };
  await log.produce(TOPICS.audit, [{ key: 'app_1', value: fine }]);
  t.pass('the next record is written');

  const unknown = await log.produce({ ...TOPICS.audit, name: `missing-${randomSuffix()}` }, [{ key: 'app_1', value: fine }]).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(unknown, { code: 'EARSHOT_EVENT_LOG_UNAVAILABLE', retriable: true }, 'a topic that does not exist (yet) is retriable');
});
