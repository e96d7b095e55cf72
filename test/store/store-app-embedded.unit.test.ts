import t from 'tap';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { DuckDbTranscriptStore } from '../../apps/shared/src/transcript-store/embedded/duckdb-transcript-store.js';
import { embeddedStoreFile } from '../../apps/shared/src/transcript-store/transcript-store.js';
import { startStoreApp } from '../../apps/store/main.js';
import { testLogger } from '../support/infra.js';
import { testRuntime } from '../support/runtime.js';
import { utterance } from '../support/store.js';
import { waitFor } from '../support/wait.js';

/** Embedded mode (`npm start`): the in-process log and the DuckDB file under EARSHOT_DATA_DIR, kept across a restart. */
t.test('embedded mode: the store app writes the DuckDB file under the data dir, and it survives a restart', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_STORE_BATCH_MAX_WAIT_MS: '50', EARSHOT_LOG_LEVEL: 'fatal' } });
  t.teardown(() => runtime.cleanup());
  t.match(embeddedStoreFile(runtime.config), /\/store\/transcripts\.duckdb$/);
  const app = await startStoreApp(runtime); // opens its own store from config: embedded mode → DuckDB
  t.match(app.describe, /^embedded DuckDB .*transcripts\.duckdb, batches of up to 1000 records or 50 ms$/);
  const us = Array.from({ length: 30 }, (_, i) => utterance({ callSid: 'CAembedded', startMs: i * 700 }));
  await runtime.eventLog.produce(
    TOPICS.utterances,
    [...us, ...us.slice(0, 10)].map((u) => ({ key: u.callSid, value: u })),
  );
  await waitFor('30 utterances stored', async () => (await app.store.callMessages('tenant-a', 'CAembedded', 100)).length === 30);
  await app.stop();

  // "Restart": a new store on the same file sees everything.
  const reopened = new DuckDbTranscriptStore(embeddedStoreFile(runtime.config), { logger: testLogger });
  t.teardown(() => reopened.close());
  await reopened.migrate();
  t.same(
    (await reopened.callMessages('tenant-a', 'CAembedded', 100)).map((u) => u.startMs),
    us.map((u) => u.startMs),
  );
});

t.test('an event whose values do not fit the table is skipped, counted and logged; the rest is stored and committed', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_STORE_BATCH_MAX_WAIT_MS: '50', EARSHOT_LOG_LEVEL: 'fatal' } });
  t.teardown(() => runtime.cleanup());
  const app = await startStoreApp(runtime, { groupId: 'store-reject' });
  t.teardown(() => app.stop());
  const good = [0, 1, 2].map((i) => utterance({ callSid: 'CAreject', startMs: i * 1000 }));
  const bad = [
    utterance({ callSid: 'CAreject', startMs: -1 }), // valid Avro (int), but not a position in the stream
    utterance({ callSid: 'CAreject', startMs: 5000, occurredAtMs: -20 }),
  ];
  await runtime.eventLog.produce(
    TOPICS.utterances,
    [good[0], bad[0], good[1], bad[1], good[2]].map((u) => ({ key: 'CAreject', value: u as (typeof good)[0] })),
  );
  await waitFor('the good ones stored', async () => (await app.store.callMessages('tenant-a', 'CAreject', 100)).length === 3);
  const metrics = await runtime.metrics.metrics();
  t.match(metrics, /earshot_store_rejected_records_total\{topic="utterances",app="test"\} 2/);
  const consumer = runtime.eventLog.createConsumer({ groupId: 'store-reject', topics: [TOPICS.utterances] });
  await waitFor('all five offsets committed', async () => {
    let sum = 0;
    for (let p = 0; p < runtime.config.EARSHOT_TOPIC_PARTITIONS; p++)
      sum += (await consumer.committed({ topic: TOPICS.utterances.name, partition: p })) ?? 0;
    return sum === 5;
  });
});
