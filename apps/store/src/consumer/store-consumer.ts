import type { AuditRecorded, DeliveryAttempted, SessionEvent, UtteranceRecognized } from '../../../shared/src/events.js';
import type { Logger } from '../../../shared/src/logger.js';
import { Counter, Gauge, Histogram, type Registry } from '../../../shared/src/metrics.js';
import type { CommitOffset, EventLog, EventLogConsumer, LogRecord, RecordBatch } from '../../../shared/src/ports/event-log.port.js';
import type { StoreBatch, TranscriptStore } from '../../../shared/src/ports/transcript-store.port.js';
import { TOPICS, type TopicSpec } from '../../../shared/src/topics.js';
import { rowProblem } from '../../../shared/src/transcript-store/rows.js';

/**
 * The store app's batching consumer (SPEC §9): reads utterances, sessions, deliveries and
 * audit, writes them to the transcript store in batches bounded by size (`maxRecords`) and
 * time (`maxWaitMs`), and commits offsets only after the store acknowledged the batch.
 *
 * - The log's handler returns as soon as records are buffered (so several partitions and
 *   fetches fill one batch); it waits only when the buffer is full. That wait is the
 *   backpressure: while the store is down, reading stops instead of memory growing.
 * - A failed write keeps the batch and retries it with jittered exponential backoff (up to
 *   `retryMaxMs` between tries) for as long as it takes; `earshot_store_paused` is 1 meanwhile.
 * - A crash before the commit makes the log deliver the records again; the store collapses
 *   the duplicates (deterministic ids), so replays are harmless.
 */
export interface StoreConsumerOptions {
  readonly eventLog: EventLog;
  readonly store: TranscriptStore;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly groupId?: string;
  readonly maxRecords: number;
  readonly maxWaitMs: number;
  readonly retryMaxMs: number;
  readonly retryBaseMs?: number;
  /** Topics to read (tests rename them); default: the four of TOPICS. */
  readonly topics?: StoreTopics;
}

export interface StoreTopics {
  readonly utterances: TopicSpec<UtteranceRecognized>;
  readonly sessions: TopicSpec<SessionEvent>;
  readonly deliveries: TopicSpec<DeliveryAttempted>;
  readonly audit: TopicSpec<AuditRecorded>;
}

export const STORE_GROUP_ID = 'earshot-store';

export class StoreConsumer {
  private readonly consumer: EventLogConsumer;
  private readonly topics: StoreTopics;
  private buffer: LogRecord[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly m: ReturnType<typeof storeMetrics>;

  constructor(private readonly options: StoreConsumerOptions) {
    this.topics = options.topics ?? TOPICS;
    this.consumer = options.eventLog.createConsumer({
      groupId: options.groupId ?? STORE_GROUP_ID,
      topics: [this.topics.utterances, this.topics.sessions, this.topics.deliveries, this.topics.audit],
    });
    this.m = storeMetrics(options.metrics);
  }

  async start(): Promise<void> {
    await this.consumer.run((batch) => this.onBatch(batch));
  }

  private async onBatch(batch: RecordBatch): Promise<void> {
    this.buffer.push(...batch.records);
    this.m.buffered.set(this.buffer.length);
    if (this.buffer.length >= this.options.maxRecords) {
      // Full: wait until it is written (and keep waiting while the store is down).
      await this.flush();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        // Failures are logged by the write loop; one can only escape it during shutdown.
        this.flush().catch(() => undefined);
      }, this.options.maxWaitMs);
    }
  }

  /** Writes everything buffered so far (one write at a time), then commits its offsets. */
  flush(): Promise<void> {
    const run = async (): Promise<void> => {
      while (this.buffer.length > 0) {
        clearTimeout(this.timer);
        this.timer = undefined;
        const records = this.buffer.splice(0, this.options.maxRecords);
        await this.writeUntilAcknowledged(records);
        await this.commit(records);
        this.m.buffered.set(this.buffer.length);
      }
    };
    const next = (this.flushing ?? Promise.resolve()).then(run);
    this.flushing = next.catch(() => undefined);
    return next;
  }

  private async writeUntilAcknowledged(records: readonly LogRecord[]): Promise<void> {
    const batch = this.toStoreBatch(records);
    let delay = this.options.retryBaseMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await this.options.store.writeBatch(batch);
        this.m.writeSeconds.observe((performance.now() - started) / 1000);
        this.m.batches.inc({ outcome: 'written' });
        this.m.records.inc({ topic: 'utterances' }, batch.utterances.length);
        this.m.records.inc({ topic: 'sessions' }, batch.sessions.length);
        this.m.records.inc({ topic: 'deliveries' }, batch.deliveries.length);
        this.m.records.inc({ topic: 'audit' }, batch.audit.length);
        if (attempt > 1) this.options.logger.info({ attempts: attempt, records: records.length }, 'store.resumed');
        this.m.paused.set(0);
        return;
      } catch (error) {
        this.m.batches.inc({ outcome: 'failed' });
        this.m.paused.set(1);
        this.options.logger.warn(
          { err: error, attempt, records: records.length, retryInMs: Math.round(delay) },
          'store.write_failed; retrying',
        );
        if (this.stopping && attempt >= 3) throw error; // shutting down: the log redelivers what was not committed
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }

  private toStoreBatch(records: readonly LogRecord[]): StoreBatch {
    const pick = <T>(topic: TopicSpec<T>, kind: 'utterances' | 'sessions' | 'deliveries' | 'audit') =>
      records
        .filter((r) => {
          if (r.topic !== topic.name) return false;
          const problem = rowProblem(kind, r.value);
          if (problem === null) return true;
          // Skipped (and committed with the rest): retrying cannot make it fit. Ids only, never text.
          this.m.rejected.inc({ topic: kind });
          const v = r.value as { eventId?: unknown; callSid?: unknown };
          this.options.logger.error(
            { topic: r.topic, partition: r.partition, offset: r.offset, eventId: v?.eventId, callSid: v?.callSid, problem },
            'store.record_rejected',
          );
          return false;
        })
        .map((r) => r.value as T);
    return {
      utterances: pick(this.topics.utterances, 'utterances'),
      sessions: pick(this.topics.sessions, 'sessions'),
      deliveries: pick(this.topics.deliveries, 'deliveries'),
      audit: pick(this.topics.audit, 'audit'),
    };
  }

  private async commit(records: readonly LogRecord[]): Promise<void> {
    const next = new Map<string, CommitOffset>();
    for (const r of records) {
      const key = `${r.topic}\u0000${r.partition}`;
      const offset = r.offset + 1;
      if ((next.get(key)?.offset ?? -1) < offset) next.set(key, { topic: r.topic, partition: r.partition, offset });
    }
    try {
      await this.consumer.commit([...next.values()]);
    } catch (error) {
      // The records are stored; if the partition moved meanwhile, its new owner rereads them and
      // the store collapses the copies.
      this.m.commitFailures.inc();
      this.options.logger.warn({ err: error }, 'store.commit_failed');
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    await this.flush().catch((error) => this.options.logger.error({ err: error }, 'store.final_flush_failed; the log will redeliver'));
    await this.consumer.stop();
  }
}

/** The app's metrics; a second consumer in the same process (tests, a restart) reuses them. */
function storeMetrics(registry: Registry) {
  const registers = [registry];
  const once = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  return {
    records: once(
      'earshot_store_records_total',
      () =>
        new Counter({
          name: 'earshot_store_records_total',
          help: 'Events written to the transcript store',
          labelNames: ['topic'],
          registers,
        }),
    ),
    batches: once(
      'earshot_store_batches_total',
      () =>
        new Counter({
          name: 'earshot_store_batches_total',
          help: 'Store writes by outcome (failed ones are retried until written)',
          labelNames: ['outcome'],
          registers,
        }),
    ),
    paused: once(
      'earshot_store_paused',
      () => new Gauge({ name: 'earshot_store_paused', help: '1 while the store is unreachable and writes are being retried', registers }),
    ),
    buffered: once(
      'earshot_store_buffered_records',
      () => new Gauge({ name: 'earshot_store_buffered_records', help: 'Records read but not yet written', registers }),
    ),
    writeSeconds: once(
      'earshot_store_write_seconds',
      () =>
        new Histogram({
          name: 'earshot_store_write_seconds',
          help: 'Time to write one batch (successful writes)',
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers,
        }),
    ),
    rejected: once(
      'earshot_store_rejected_records_total',
      () =>
        new Counter({
          name: 'earshot_store_rejected_records_total',
          help: 'Events skipped because a value does not fit its column (logged with their ids)',
          labelNames: ['topic'],
          registers,
        }),
    ),
    commitFailures: once(
      'earshot_store_commit_failures_total',
      () => new Counter({ name: 'earshot_store_commit_failures_total', help: 'Offset commits that failed after a write', registers }),
    ),
  };
}
