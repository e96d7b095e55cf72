import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { TranscriptStore } from '../../apps/shared/src/ports/transcript-store.port.js';
import { createRuntime, type Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startStoreApp } from '../../apps/store/main.js';
import { kafkaEventLog, testConfig } from '../support/infra.js';
import { auditEvent, clickhouseSql, clickhouseTestStore, delivery, sessionClosed, sessionOpened, utterance } from '../support/store.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { randomSuffix, waitFor } from '../support/wait.js';

/**
 * The store app's batching consumer on real Kafka and real ClickHouse: batches bounded by size
 * and time, offsets committed only after ClickHouse acknowledged, replays collapse, an outage
 * loses nothing.
 */

/** Sees every batch the consumer hands the real store; can make a write fail after it reached the store. */
function observed(inner: TranscriptStore) {
  const sizes: number[] = [];
  let failAfterWrite = false;
  const store: TranscriptStore = {
    migrate: () => inner.migrate(),
    writeBatch: async (batch) => {
      sizes.push(batch.utterances.length + batch.sessions.length + batch.deliveries.length + batch.audit.length);
      await inner.writeBatch(batch);
      if (failAfterWrite) throw new Error('simulated crash after the store acknowledged, before the commit');
    },
    callMessages: (...args) => inner.callMessages(...args),
    utterancesCreatedBetween: (...args) => inner.utterancesCreatedBetween(...args),
    close: () => inner.close(),
  };
  return { store, sizes, failAfterWrite: (on: boolean) => (failAfterWrite = on) };
}

/**
 * A runtime on the real Kafka broker, in a namespace of its own (as `testRuntime({ kafka: true })`).
 * Right after a namespace's topics are created, the loaded shared broker sometimes answers the
 * runtime's first offset lookup with NOT_LEADER_FOR_PARTITION (retriable; about one run in
 * three here, inside `createRuntime`, before any store code runs): close that event log and
 * try again.
 */
async function kafkaRuntime(env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-test-'));
  const config = loadEarshotConfig({
    env: {
      EARSHOT_DATA_DIR: dataDir,
      EARSHOT_MODE: 'distributed',
      EARSHOT_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
      EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
      EARSHOT_KAFKA_NAMESPACE: `test-${randomSuffix()}`,
      ...env,
    },
  });
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'test' });
  for (let attempt = 1; ; attempt++) {
    const eventLog = kafkaEventLog(config.EARSHOT_TOPIC_PARTITIONS, config.EARSHOT_KAFKA_NAMESPACE);
    try {
      const runtime = await createRuntime(config, { logger, eventLog, name: 'test' });
      return {
        ...runtime,
        cleanup: async () => {
          await runtime.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      await eventLog.close().catch(() => undefined);
      if (attempt >= 3 || !(error as { retriable?: boolean }).retriable) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const committed = async (runtime: Runtime, groupId: string) => {
  const consumer = runtime.eventLog.createConsumer({ groupId, topics: [TOPICS.utterances] });
  const parts = await Promise.all(
    Array.from({ length: runtime.config.EARSHOT_TOPIC_PARTITIONS }, (_, partition) =>
      consumer.committed({ topic: TOPICS.utterances.name, partition }),
    ),
  );
  return parts.reduce<number>((sum, o) => sum + (o ?? 0), 0);
};

t.test('writes all four topics in size-bounded batches, commits after the write, collapses replays', async (t) => {
  const runtime = await kafkaRuntime({
    EARSHOT_LOG_LEVEL: 'fatal',
    EARSHOT_STORE_BATCH_MAX_RECORDS: '50',
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: '200',
  });
  const ch = clickhouseTestStore();
  t.teardown(async () => {
    await ch.dispose();
    await runtime.cleanup();
  });
  const watch = observed(ch.store);
  const app = await startStoreApp(runtime, { store: watch.store, groupId: 'store-a' });
  const calls = ['CAbatch1', 'CAbatch2', 'CAbatch3'];
  const us = calls.flatMap((callSid) => Array.from({ length: 40 }, (_, i) => utterance({ callSid, startMs: i * 1000 })));
  await runtime.eventLog.produce(
    TOPICS.utterances,
    us.map((u) => ({ key: u.callSid, value: u })),
  );
  await runtime.eventLog.produce(
    TOPICS.utterances,
    us.slice(0, 30).map((u) => ({ key: u.callSid, value: u })),
  ); // duplicates
  await runtime.eventLog.produce(
    TOPICS.sessions,
    [sessionOpened('CAbatch1'), sessionClosed('CAbatch1')].map((v) => ({ key: v.callSid, value: v })),
  );
  await runtime.eventLog.produce(
    TOPICS.deliveries,
    us.slice(0, 5).map((u) => ({ key: u.callSid, value: delivery(u) })),
  );
  await runtime.eventLog.produce(
    TOPICS.audit,
    [1, 2, 3].map((i) => ({ key: 'tenant-a', value: auditEvent('messages.read', i) })),
  );
  const total = 120 + 30 + 2 + 5 + 3;
  await waitFor('every record written', () => watch.sizes.reduce((a, b) => a + b, 0) >= total);
  await waitFor('utterance offsets committed', async () => (await committed(runtime, 'store-a')) === 150);
  t.ok(Math.max(...watch.sizes) <= 50, `no batch is over the size bound (sizes ${watch.sizes.join(',')})`);
  for (const callSid of calls)
    t.equal((await ch.store.callMessages('tenant-a', callSid, 1000)).length, 40, `${callSid}: 40 utterances, duplicates collapsed`);
  const sql = clickhouseSql(ch.location);
  const count = async (table: string) =>
    Number(
      (await (await sql.query({ query: `SELECT count() AS n FROM ${table} FINAL`, format: 'JSONEachRow' })).json<{ n: number }>())[0]?.n,
    );
  t.equal(await count('session_events'), 2);
  t.equal(await count('deliveries'), 5);
  t.equal(await count('audit_events'), 3);
  await sql.close();
  await app.stop();
});

t.test('a time-bounded batch goes out without waiting for more records', async (t) => {
  const runtime = await kafkaRuntime({
    EARSHOT_LOG_LEVEL: 'fatal',
    EARSHOT_STORE_BATCH_MAX_RECORDS: '1000',
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: '200',
  });
  const ch = clickhouseTestStore();
  t.teardown(async () => {
    await ch.dispose();
    await runtime.cleanup();
  });
  const app = await startStoreApp(runtime, { store: ch.store, groupId: 'store-b' });
  const us = [0, 1, 2].map((i) => utterance({ callSid: 'CAtime', startMs: i * 1000 }));
  await runtime.eventLog.produce(
    TOPICS.utterances,
    us.map((u) => ({ key: u.callSid, value: u })),
  );
  await waitFor('3 utterances stored', async () => (await ch.store.callMessages('tenant-a', 'CAtime', 10)).length === 3);
  await app.stop();
});

t.test('a crash after the write but before the commit: the records come again, no duplicates show', async (t) => {
  const runtime = await kafkaRuntime({ EARSHOT_LOG_LEVEL: 'fatal', EARSHOT_STORE_BATCH_MAX_WAIT_MS: '100' });
  const ch = clickhouseTestStore();
  t.teardown(async () => {
    await ch.dispose();
    await runtime.cleanup();
  });
  const watch = observed(ch.store);
  watch.failAfterWrite(true);
  const first = await startStoreApp(runtime, { store: watch.store, groupId: 'store-c', retryBaseMs: 20 });
  const us = Array.from({ length: 25 }, (_, i) => utterance({ callSid: 'CAcrash', startMs: i * 500 }));
  await runtime.eventLog.produce(
    TOPICS.utterances,
    us.map((u) => ({ key: u.callSid, value: u })),
  );
  await waitFor('the first node wrote the records', async () => (await ch.store.callMessages('tenant-a', 'CAcrash', 100)).length === 25);
  await first.stop(); // its writes never "acknowledged": nothing was committed
  t.equal(await committed(runtime, 'store-c'), 0, 'no offset was committed');

  const again = observed(ch.reopen());
  const second = await startStoreApp(runtime, { store: again.store, groupId: 'store-c' });
  await waitFor('offsets committed by the second node', async () => (await committed(runtime, 'store-c')) === 25);
  t.equal(
    again.sizes.reduce((a, b) => a + b, 0),
    25,
    'the second node was handed the same 25 records again',
  );
  const read = await ch.store.callMessages('tenant-a', 'CAcrash', 100);
  t.same(
    read.map((u) => u.startMs),
    us.map((u) => u.startMs),
    'each utterance once',
  );
  await second.stop();
});

t.test('ClickHouse down for several seconds: the consumer pauses, retries, and loses nothing', async (t) => {
  const target = new URL(testConfig.EARSHOT_CLICKHOUSE_URL);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  const runtime = await kafkaRuntime({
    EARSHOT_LOG_LEVEL: 'fatal',
    EARSHOT_STORE_BATCH_MAX_RECORDS: '20',
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: '100',
    EARSHOT_STORE_RETRY_MAX_MS: '500',
  });
  const ch = clickhouseTestStore(proxy.url);
  t.teardown(async () => {
    await proxy.close();
    await ch.dispose();
    await runtime.cleanup();
  });
  const app = await startStoreApp(runtime, { store: ch.store, groupId: 'store-d', retryBaseMs: 50 });
  const metric = async (name: string, label = '') => {
    const text = await runtime.metrics.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
    return Number(line?.split(' ').pop() ?? 0);
  };
  const produce = (from: number, n: number) =>
    runtime.eventLog.produce(
      TOPICS.utterances,
      Array.from({ length: n }, (_, i) => utterance({ callSid: 'CAoutage', startMs: (from + i) * 100 })).map((u) => ({
        key: u.callSid,
        value: u,
      })),
    );
  await produce(0, 10);
  await waitFor('first records stored', async () => (await ch.store.callMessages('tenant-a', 'CAoutage', 1000)).length === 10);

  await proxy.cut();
  await produce(10, 90);
  await waitFor('writes failing while ClickHouse is unreachable', async () => (await metric('earshot_store_paused')) === 1);
  await waitFor('several failed attempts', async () => (await metric('earshot_store_batches_total', 'outcome="failed"')) >= 3);
  t.ok((await committed(runtime, 'store-d')) <= 20, 'nothing written during the outage was committed');
  await new Promise((r) => setTimeout(r, 3000)); // an outage of several seconds
  await proxy.restore();

  await waitFor(
    'all 100 stored after ClickHouse came back',
    async () => (await ch.reopen().callMessages('tenant-a', 'CAoutage', 1000)).length === 100,
    60_000,
  );
  await waitFor('all offsets committed', async () => (await committed(runtime, 'store-d')) === 100);
  t.equal(await metric('earshot_store_paused'), 0, 'no longer paused');
  await app.stop();
});
