import { loadavg } from 'node:os';
import { startApi } from '../../apps/api/main.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { TranscriptStore } from '../../apps/shared/src/ports/transcript-store.port.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startStoreApp } from '../../apps/store/main.js';
import { createTestApp, testRuntime } from '../../test/support/runtime.js';
import { batchOf, clickhouseTestStore, type DisposableStore, embeddedTestStore, utterance } from '../../test/support/store.js';
import { pct, sleep } from './latency.bench.js';
import type { BenchResult } from './run.js';
import { dropNamespace } from './support/namespace.js';

/**
 * The transcript store (apps/store), on the real ClickHouse 18.16 of `earshot infra` and on the
 * embedded DuckDB file.
 *
 *   npm run bench -- store [--utterances 100000] [--batch 1000] [--consumer 20000] [--requests 300]
 *
 * 1. insert: `--utterances` utterance rows (500 calls, 4 tenants, ~60 characters of text) written
 *    with writeBatch in batches of `--batch` (the store app's default batch size), one at a time.
 *    utterances/s = rows / wall time of all batches; batch ms = one writeBatch.
 * 2. consumer (ClickHouse): `--consumer` utterance events are produced to earshot.utterances.v1 on
 *    the real Kafka broker (a namespace of the run's own) first; then the store app starts and
 *    drains them. utterances/s = events / (app start → every offset committed).
 * 3. GET: the after-call API (real HTTP, Koa, auth, audit) for a call of 1,000 utterances,
 *    `--requests` sequential requests after 20 unmeasured ones; latency = fetch → body read.
 */
interface Options {
  readonly utterances: number;
  readonly batch: number;
  readonly consumer: number;
  readonly requests: number;
}

function parse(args: readonly string[]): Options {
  const value = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    const n = i >= 0 ? Number(args[i + 1]) : fallback;
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a positive whole number`);
    return n;
  };
  return {
    utterances: value('utterances', 100_000),
    batch: value('batch', 1000),
    consumer: value('consumer', 20_000),
    requests: value('requests', 300),
  };
}

const progress = (line: string) => console.error(`store: ${line}`);
const TEXT = 'thanks for calling, I can see the order from last Tuesday here';

function rows(count: number, offset = 0): UtteranceRecognized[] {
  return Array.from({ length: count }, (_, k) => {
    const i = offset + k;
    return utterance({
      tenantId: `tenant-${i % 4}`,
      callSid: `CA${String(i % 500).padStart(32, '0')}`,
      startMs: Math.floor(i / 500) * 1500,
      role: i % 2 === 0 ? 'customer' : 'agent',
      text: `${TEXT} ${i}`,
    });
  });
}

async function insert(name: string, made: DisposableStore<TranscriptStore>, o: Options): Promise<(string | number)[]> {
  await made.store.migrate();
  const times: number[] = [];
  const started = performance.now();
  for (let written = 0; written < o.utterances; written += o.batch) {
    const batch = batchOf({ utterances: rows(Math.min(o.batch, o.utterances - written), written) });
    const t0 = performance.now();
    await made.store.writeBatch(batch);
    times.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  progress(`${name}: ${o.utterances} rows in ${seconds.toFixed(1)} s`);
  return [`insert (writeBatch)`, name, o.utterances, Math.round(o.utterances / seconds), pct(times, 0.5), pct(times, 0.99), '', '', '', ''];
}

async function consumer(o: Options): Promise<(string | number)[]> {
  const runtime = await testRuntime({ kafka: true, env: { EARSHOT_LOG_LEVEL: 'error' } });
  const made = clickhouseTestStore();
  try {
    await made.store.migrate();
    for (let i = 0; i < o.consumer; i += 1000) {
      await runtime.eventLog.produce(
        TOPICS.utterances,
        rows(Math.min(1000, o.consumer - i), i).map((u) => ({ key: u.callSid, value: u })),
      );
    }
    progress(`consumer: ${o.consumer} events on Kafka`);
    const started = performance.now();
    const app = await startStoreApp(runtime, { store: made.store, groupId: 'bench-store' });
    const probe = runtime.eventLog.createConsumer({ groupId: 'bench-store', topics: [TOPICS.utterances] });
    const committed = async () => {
      let sum = 0;
      for (let p = 0; p < runtime.config.EARSHOT_TOPIC_PARTITIONS; p++)
        sum += (await probe.committed({ topic: TOPICS.utterances.name, partition: p })) ?? 0;
      return sum;
    };
    while ((await committed()) < o.consumer) await sleep(100);
    const seconds = (performance.now() - started) / 1000;
    await app.stop();
    return ['store app (Kafka → ClickHouse)', 'clickhouse', o.consumer, Math.round(o.consumer / seconds), '', '', '', '', '', ''];
  } finally {
    await made.dispose();
    const namespace = runtime.config.EARSHOT_KAFKA_NAMESPACE;
    await runtime.cleanup();
    if (namespace) await dropNamespace(namespace, progress);
  }
}

async function getLatency(name: string, made: DisposableStore<TranscriptStore>, o: Options): Promise<(string | number)[]> {
  const runtime = await testRuntime({
    env: { EARSHOT_API_PORT: '0', EARSHOT_LOG_LEVEL: 'error', EARSHOT_API_RATE_LIMIT_PER_MINUTE: '100000' },
  });
  try {
    await made.store.migrate();
    const api = await startApi(runtime, { store: made.store });
    const tenant = await createTestApp(runtime, 'bench');
    const callSid = `CA${'f'.repeat(32)}`;
    const call = Array.from({ length: 1000 }, (_, i) =>
      utterance({ tenantId: tenant.apiId, callSid, startMs: i * 3000, role: i % 2 ? 'agent' : 'customer', text: `${TEXT} ${i}` }),
    );
    await made.store.writeBatch(batchOf({ utterances: call }));
    const headers = { 'asapp-api-id': tenant.apiId, 'asapp-api-secret': tenant.apiSecret };
    const url = `${api.url}/conversation/v1/conversation/messages?externalId=${callSid}`;
    const times: number[] = [];
    let cpu = process.cpuUsage();
    for (let i = 0; i < o.requests + 20; i++) {
      if (i === 20) cpu = process.cpuUsage();
      const t0 = performance.now();
      const res = await fetch(url, { headers });
      const body = await res.text();
      if (res.status !== 200 || (JSON.parse(body) as { items: unknown[] }).items.length !== 1000)
        throw new Error(`GET answered ${res.status}`);
      if (i >= 20) times.push(performance.now() - t0);
    }
    const used = process.cpuUsage(cpu);
    const cpuMsPerGet = (used.user + used.system) / 1000 / o.requests;
    await api.stop();
    progress(`${name}: GET p50 ${pct(times, 0.5).toFixed(1)} ms`);
    return ['GET messages (1,000 items)', name, o.requests, '', '', '', pct(times, 0.5), pct(times, 0.99), Math.max(...times), cpuMsPerGet];
  } finally {
    await runtime.cleanup();
  }
}

export async function run(args: string[]): Promise<BenchResult> {
  const o = parse(args);
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const resultRows: (string | number)[][] = [];
  for (const [name, make] of [
    ['clickhouse', () => clickhouseTestStore()],
    ['embedded (DuckDB)', () => embeddedTestStore()],
  ] as const) {
    const made: DisposableStore<TranscriptStore> = make();
    try {
      resultRows.push(await insert(name, made, o));
      resultRows.push(await getLatency(name, made, o));
    } finally {
      await made.dispose();
    }
  }
  resultRows.push(await consumer(o));
  return {
    title: 'Transcript store: insert throughput, the store app draining Kafka, after-call GET for a 1,000-utterance call',
    columns: [
      'what',
      'backend',
      'n',
      'utterances/s',
      'batch ms p50',
      'batch ms p99',
      'GET ms p50',
      'GET ms p99',
      'GET ms max',
      'GET CPU ms',
    ],
    rows: resultRows,
    notes: [
      `insert: ${o.utterances} rows in batches of ${o.batch}, 500 calls over 4 tenants, one writeBatch at a time (as the store app does); ClickHouse 18.16 on this machine over HTTP (JSONEachRow), DuckDB file in a temp dir (each batch one transaction).`,
      `store app: ${o.consumer} events produced first, then drained by the store app with default settings (EARSHOT_STORE_BATCH_MAX_RECORDS 1000, EARSHOT_STORE_BATCH_MAX_WAIT_MS 1000); includes consumer-group join and Avro decoding.`,
      `GET: ${o.requests} sequential requests after 20 warm-up, real HTTP to the API in this process (auth, validation, audit record on the embedded log, JSON of ~120 KB); GET CPU ms = this process's CPU time per request (API and fetch client; the DuckDB query too, not the ClickHouse server's), less disturbed by other work on the machine than wall time; ClickHouse: LIMIT 1 BY utterance_id over the call's index range; DuckDB: the file stays open between requests (idle close 200 ms, max hold 1 s).`,
      `Shared 2-core machine with other work running: numbers are noisy. Load average at the start ${load}, at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}.`,
    ],
  };
}
