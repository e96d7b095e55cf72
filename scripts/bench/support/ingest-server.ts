import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startIngest } from '../../../apps/ingest/main.js';
import { loadEarshotConfig } from '../../../apps/shared/src/config.js';
import type { CallEvent } from '../../../apps/shared/src/events.js';
import type { EventLog, ProduceRecord } from '../../../apps/shared/src/ports/event-log.port.js';
import { createRuntime } from '../../../apps/shared/src/runtime.js';
import { TOPICS, type TopicSpec } from '../../../apps/shared/src/topics.js';
import { BENCH_ENV } from './bench-env.js';
import { Histogram, type Percentiles, percentiles, wallMs } from './stats.js';
import { startWsIngest } from './ws-ingest.js';

/**
 * Child process of ingest.bench.ts: one ingest server under test, alone in its process so its
 * CPU (process.cpuUsage) is its own, on the real Kafka broker of `earshot infra` in
 * distributed mode (fixed test secrets and stream token keys: support/bench-env.ts; port 0).
 *
 *   node --import tsx scripts/bench/support/ingest-server.ts <uws|ws> <kafka namespace> <apiId>
 *
 * The namespace (EARSHOT_KAFKA_NAMESPACE) is the benchmark run's own: fresh topics, groups
 * and schema subjects on the shared broker, deleted by the parent afterwards.
 *
 * The event log handed to the server is wrapped to time every produce. Per audio record:
 * - publish latency: from the record's `occurredAtMs` (set when the batch closed, i.e. while
 *   the server handled the batch's last frame) to the produce() promise resolving (Kafka acks
 *   from all in-sync replicas, acks=-1);
 * - send→ack: from the moment the client was due to send the batch's last frame (the stream's
 *   `benchT0` custom parameter + the frame's media timestamp) to the same resolution, so
 *   socket buffers and a late event loop count too.
 *
 * IPC in: {type:'mark'} starts a window, {type:'report'} ends it, {type:'totals'}, {type:'stop'}.
 */
export interface ServerReport {
  readonly type: 'report';
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly frames: number;
  readonly batches: number;
  readonly produceCalls: number;
  readonly publish: Percentiles;
  readonly sendToAck: Percentiles;
  /** Time inside the event log's produce() alone (encode + Kafka round trip), per call. */
  readonly produceTime: Percentiles;
  readonly records: number;
  readonly loopDelayP99Ms: number;
  readonly dropped: number;
  readonly produceFailures: number;
  readonly rssMiB: number;
}

export interface ServerTotals {
  readonly type: 'totals';
  readonly framesAcked: number;
}

export type ServerMessage = { readonly type: 'ready'; readonly url: string } | ServerReport | ServerTotals;

const [kind, namespace, apiId] = process.argv.slice(2) as [string, string, string];
const send = (message: ServerMessage): void => {
  process.send?.(message);
};

// Composed as `earshot start` composes it in distributed mode (production Kafka settings), not
// with test/support's faster polling, so the idle cost is the real one.
const dataDir = mkdtempSync(join(tmpdir(), 'earshot-bench-'));
const config = loadEarshotConfig({
  env: {
    ...process.env,
    ...BENCH_ENV,
    EARSHOT_KAFKA_NAMESPACE: namespace,
    EARSHOT_DATA_DIR: dataDir,
    EARSHOT_INGEST_PORT: '0',
    EARSHOT_NODE_ID: `bench-${kind}`,
  },
});
const runtime = await createRuntime(config, { name: 'ingest' });
const cleanup = async (): Promise<void> => {
  await runtime.close();
  rmSync(dataDir, { recursive: true, force: true });
};
const topic: TopicSpec<CallEvent> = TOPICS.callEvents;

// ---- the timed event log -----------------------------------------------------------------
const publish = new Histogram();
const sendToAck = new Histogram();
const produceTime = new Histogram();
let windowRecords = 0;
const benchT0 = new Map<string, number>();
let measuring = false;
let framesAcked = 0;
let windowFrames = 0;
let windowBatches = 0;
let windowProduces = 0;
let produceFailures = 0;

const inner = runtime.eventLog;
const eventLog: EventLog = {
  kind: inner.kind,
  ensureTopics: (topics) => inner.ensureTopics(topics),
  describeTopic: (name) => inner.describeTopic(name),
  endOffsets: (name) => inner.endOffsets(name),
  createConsumer: (options) => inner.createConsumer(options),
  close: () => inner.close(),
  async produce<T>(spec: TopicSpec<T>, records: readonly ProduceRecord<T>[]): Promise<void> {
    if (spec.name !== topic.name) return inner.produce(spec, records);
    for (const record of records) {
      const event = record.value as CallEvent;
      if (event.type === 'StreamStarted') benchT0.set(event.data.streamSid, Number(event.data.customParameters.benchT0));
    }
    const calledAt = wallMs();
    try {
      await inner.produce(spec, records);
    } catch (error) {
      produceFailures++;
      throw error;
    }
    const ackedAt = wallMs();
    if (measuring) {
      windowProduces++;
      windowRecords += records.length;
      produceTime.record(ackedAt - calledAt);
    }
    for (const record of records) {
      const event = record.value as CallEvent;
      if (event.type === 'AudioChunkReceived') {
        const frames = event.data.durationMs / 20;
        framesAcked += frames;
        if (!measuring) continue;
        windowFrames += frames;
        windowBatches++;
        publish.record(ackedAt - event.occurredAtMs);
        const t0 = benchT0.get(event.data.streamSid);
        if (t0 !== undefined) sendToAck.record(ackedAt - (t0 + event.data.timestampMs + event.data.durationMs - 20));
      } else if (event.type === 'StreamEnded') {
        benchT0.delete(event.data.streamSid);
      }
    }
  },
};

// ---- the server --------------------------------------------------------------------------
let stop: () => Promise<void>;
let dropped: () => Promise<number>;
let url: string;
if (kind === 'uws') {
  const server = await startIngest({ ...runtime, eventLog }, { topic });
  url = server.url;
  stop = server.stop;
  dropped = async () => {
    const values = (await runtime.metrics.getSingleMetric('earshot_ingest_frames_dropped_total')?.get())?.values ?? [];
    return values.reduce((sum, v) => sum + v.value, 0);
  };
} else if (kind === 'ws') {
  const server = await startWsIngest({ ...runtime, eventLog }, topic);
  url = server.url;
  stop = server.stop;
  dropped = async () => 0;
} else {
  throw new Error(`unknown server kind ${kind} (uws, ws)`);
}

// The app was created by the parent: upgrades are refused until the directory has it.
const deadline = Date.now() + 30_000;
while (!runtime.apps.get(apiId)) {
  if (Date.now() > deadline) throw new Error(`app ${apiId} never reached the directory`);
  await new Promise((r) => setTimeout(r, 20));
}

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let since = { cpu: process.cpuUsage(), at: wallMs(), dropped: 0, failures: 0 };

process.on('message', async (message: { type: string }) => {
  if (message.type === 'mark') {
    publish.reset();
    sendToAck.reset();
    produceTime.reset();
    windowRecords = 0;
    loop.reset();
    windowFrames = 0;
    windowBatches = 0;
    windowProduces = 0;
    measuring = true;
    since = { cpu: process.cpuUsage(), at: wallMs(), dropped: await dropped(), failures: produceFailures };
  } else if (message.type === 'report') {
    const cpu = process.cpuUsage(since.cpu);
    measuring = false;
    send({
      type: 'report',
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: wallMs() - since.at,
      frames: windowFrames,
      batches: windowBatches,
      produceCalls: windowProduces,
      publish: percentiles(publish),
      sendToAck: percentiles(sendToAck),
      produceTime: percentiles(produceTime),
      records: windowRecords,
      loopDelayP99Ms: loop.percentile(99) / 1e6,
      dropped: (await dropped()) - since.dropped,
      produceFailures: produceFailures - since.failures,
      rssMiB: process.memoryUsage().rss / 2 ** 20,
    });
  } else if (message.type === 'totals') {
    send({ type: 'totals', framesAcked });
  } else if (message.type === 'stop') {
    await stop();
    await cleanup();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', url });
