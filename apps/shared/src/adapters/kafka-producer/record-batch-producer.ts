import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerConnection, BrokerConnectionError } from './broker-connection.js';
import { partitionOf } from './murmur2.js';
import { decodeProduceResponse, type EncodedRecord, encodeProduceRequest, type PartitionRecords } from './produce-request.js';

/**
 * Our Kafka producer: keyed records → one Produce request per partition leader, record
 * batches encoded by produce-request.ts, acks from all in-sync replicas. It replaces kafkajs's
 * producer (kafkajs still does metadata, consumers and admin) because kafkajs's per-record
 * encoding cost about half of an ingest process's CPU.
 *
 * - Partitions: murmur2 of the key, as the Java client and kafkajs, remembered per key.
 * - Leaders come from `metadata` (the owner asks kafkajs's admin), cached per topic and
 *   refreshed after a leadership error or a broken connection, and every 5 minutes.
 * - A partition that fails with a retriable error is sent again (only that partition) up to
 *   `retries` times with doubling backoff; what still fails rejects the call as retriable
 *   (`ProduceUnavailableError`), so the caller keeps the records and retries later. A
 *   partition the broker refuses for good (record too large, invalid) rejects the call as
 *   `ProduceRefusedError` once the rest is settled. Not idempotent, like the producer it
 *   replaces: a retried request whose first answer was lost can write a record twice
 *   (consumers dedupe by event id).
 */
export interface BrokerAddress {
  readonly host: string;
  readonly port: number;
}

/** Where a topic's partitions are: `leaders[p]` is the leader of partition p, or null when it has none right now. */
export interface TopicLayout {
  readonly leaders: readonly (BrokerAddress | null)[];
}

export interface ProducedRecord {
  readonly key: string;
  readonly value: Buffer;
  readonly timestampMs: number;
}

export interface RecordBatchProducerOptions {
  readonly clientId: string;
  readonly metadata: (topic: string) => Promise<TopicLayout>;
  /** Broker-side wait for the in-sync replicas. */
  readonly ackTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly metadataTimeoutMs?: number;
  readonly retries?: number;
  readonly retryBackoffMs?: number;
}

export class ProduceUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProduceUnavailableError';
  }
}

export class ProduceRefusedError extends Error {
  constructor(
    message: string,
    readonly errorCode: number,
  ) {
    super(message);
    this.name = 'ProduceRefusedError';
  }
}

/** Kafka error codes after which the same records may succeed (after a metadata refresh). */
const RETRIABLE = new Map<number, string>([
  [-1, 'UNKNOWN_SERVER_ERROR'],
  [3, 'UNKNOWN_TOPIC_OR_PARTITION'],
  [5, 'LEADER_NOT_AVAILABLE'],
  [6, 'NOT_LEADER_OR_FOLLOWER'],
  [7, 'REQUEST_TIMED_OUT'],
  [8, 'BROKER_NOT_AVAILABLE'],
  [13, 'NETWORK_EXCEPTION'],
  [19, 'NOT_ENOUGH_REPLICAS'],
  [20, 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'],
  [56, 'KAFKA_STORAGE_ERROR'],
  [74, 'FENCED_LEADER_EPOCH'],
  [75, 'UNKNOWN_LEADER_EPOCH'],
]);

/** Refusals worth a readable name; any other non-retriable code is reported by number. */
const REFUSED = new Map<number, string>([
  [2, 'CORRUPT_MESSAGE'],
  [10, 'MESSAGE_TOO_LARGE'],
  [18, 'RECORD_LIST_TOO_LARGE'],
  [29, 'TOPIC_AUTHORIZATION_FAILED'],
  [32, 'INVALID_TIMESTAMP'],
  [35, 'UNSUPPORTED_VERSION'],
  [42, 'INVALID_REQUEST'],
  [87, 'INVALID_RECORD'],
]);

const METADATA_MAX_AGE_MS = 5 * 60_000;
const KEY_CACHE_SIZE = 50_000;

interface CachedLayout {
  readonly layout: TopicLayout;
  readonly topicBytes: Buffer;
  readonly fetchedAt: number;
}

interface KeyInfo {
  readonly bytes: Buffer;
  readonly partition: number;
}

export class RecordBatchProducer {
  private readonly clientId: Buffer;
  private readonly layouts = new Map<string, CachedLayout>();
  private readonly refreshing = new Map<string, Promise<CachedLayout>>();
  private readonly connections = new Map<string, BrokerConnection>();
  /** Per partition count: key → bytes and partition (a call's many records share one key). */
  private readonly keys = new Map<number, Map<string, KeyInfo>>();
  private correlationId = 0;
  private closed = false;
  private readonly ackTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly metadataTimeoutMs: number;
  private readonly retries: number;
  private readonly retryBackoffMs: number;

  constructor(private readonly options: RecordBatchProducerOptions) {
    this.clientId = Buffer.from(options.clientId, 'utf8');
    this.ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? this.ackTimeoutMs + 5_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 3_000;
    this.metadataTimeoutMs = options.metadataTimeoutMs ?? 5_000;
    this.retries = options.retries ?? 3;
    this.retryBackoffMs = options.retryBackoffMs ?? 100;
  }

  /** Appends `records` to `topic`; resolves once every partition's leader acknowledged them. */
  async send(topic: string, records: readonly ProducedRecord[]): Promise<void> {
    if (this.closed) throw new ProduceUnavailableError('the producer is closed');
    if (records.length === 0) return;
    let cached = await this.layout(topic, false);
    const partitions = cached.layout.leaders.length;
    // Group by partition, in the caller's order (a key's records stay in order).
    const byPartition = new Map<number, EncodedRecord[]>();
    for (const record of records) {
      const key = this.keyInfo(record.key, partitions);
      let list = byPartition.get(key.partition);
      if (!list) {
        list = [];
        byPartition.set(key.partition, list);
      }
      list.push({ key: key.bytes, value: record.value, timestampMs: record.timestampMs });
    }
    let todo: PartitionRecords[] = [...byPartition].map(([partition, list]) => ({ partition, records: list }));
    const refused: { partition: number; code: number }[] = [];
    let lastProblem = '';
    for (let attempt = 0; ; attempt++) {
      const retry: PartitionRecords[] = [];
      const byLeader = new Map<string, { address: BrokerAddress; parts: PartitionRecords[] }>();
      for (const part of todo) {
        const leader = cached.layout.leaders[part.partition] ?? null;
        if (!leader) {
          lastProblem = `partition ${part.partition} of ${topic} has no leader`;
          retry.push(part);
          continue;
        }
        const id = `${leader.host}:${leader.port}`;
        let entry = byLeader.get(id);
        if (!entry) {
          entry = { address: leader, parts: [] };
          byLeader.set(id, entry);
        }
        entry.parts.push(part);
      }
      let staleLayout = retry.length > 0;
      await Promise.all(
        [...byLeader.values()].map(async ({ address, parts }) => {
          try {
            const answers = await this.sendTo(address, cached.topicBytes, parts);
            for (const part of parts) {
              const code = answers.get(part.partition);
              if (code === 0) continue;
              if (code === undefined) {
                lastProblem = `${address.host}:${address.port} did not answer for partition ${part.partition}`;
                retry.push(part);
              } else if (RETRIABLE.has(code)) {
                lastProblem = `partition ${part.partition}: ${RETRIABLE.get(code)} (${code})`;
                staleLayout = true;
                retry.push(part);
              } else refused.push({ partition: part.partition, code });
            }
          } catch (error) {
            if (!(error instanceof BrokerConnectionError)) throw error;
            lastProblem = error.message;
            staleLayout = true;
            retry.push(...parts);
          }
        }),
      );
      if (retry.length === 0) break;
      if (attempt >= this.retries || this.closed) {
        throw new ProduceUnavailableError(
          `${retry.length} partition(s) of ${topic} not written after ${attempt + 1} attempt(s): ${lastProblem}`,
        );
      }
      await sleep(this.retryBackoffMs * 2 ** attempt * (0.75 + Math.random() / 2));
      if (staleLayout) cached = await this.layout(topic, true);
      todo = retry;
    }
    const first = refused[0];
    if (first) {
      const name = REFUSED.get(first.code) ?? `error code ${first.code}`;
      throw new ProduceRefusedError(`the broker refused the records for partition ${first.partition} of ${topic}: ${name}`, first.code);
    }
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections.values()) connection.close();
    this.connections.clear();
  }

  private keyInfo(key: string, partitions: number): KeyInfo {
    let cache = this.keys.get(partitions);
    if (!cache) {
      cache = new Map();
      this.keys.set(partitions, cache);
    }
    let info = cache.get(key);
    if (!info) {
      const bytes = Buffer.from(key, 'utf8');
      info = { bytes, partition: partitionOf(bytes, partitions) };
      if (cache.size >= KEY_CACHE_SIZE) cache.clear();
      cache.set(key, info);
    }
    return info;
  }

  /** The partition → leader answer of every partition in the request (code 0 = written). */
  private async sendTo(address: BrokerAddress, topicBytes: Buffer, parts: readonly PartitionRecords[]): Promise<Map<number, number>> {
    const correlationId = this.nextCorrelationId();
    const frame = encodeProduceRequest({
      correlationId,
      clientId: this.clientId,
      topic: topicBytes,
      acks: -1,
      timeoutMs: this.ackTimeoutMs,
      partitions: parts,
    });
    const connection = this.connection(address);
    const body = await connection.request(frame, correlationId);
    const answers = new Map<number, number>();
    try {
      for (const answer of decodeProduceResponse(body)) answers.set(answer.partition, answer.errorCode);
    } catch (error) {
      connection.close();
      throw new BrokerConnectionError(`${connection.name} sent a malformed produce response: ${(error as Error).message}`, connection.name);
    }
    return answers;
  }

  private connection(address: BrokerAddress): BrokerConnection {
    const id = `${address.host}:${address.port}`;
    let connection = this.connections.get(id);
    if (!connection?.usable) {
      connection = new BrokerConnection(address.host, address.port, {
        connectTimeoutMs: this.connectTimeoutMs,
        requestTimeoutMs: this.requestTimeoutMs,
      });
      this.connections.set(id, connection);
    }
    return connection;
  }

  private nextCorrelationId(): number {
    this.correlationId = (this.correlationId + 1) & 0x7fffffff;
    return this.correlationId;
  }

  /** The cached layout, or a fresh one (one fetch per topic at a time, bounded in time). */
  private async layout(topic: string, refresh: boolean): Promise<CachedLayout> {
    const cached = this.layouts.get(topic);
    if (cached && !refresh && Date.now() - cached.fetchedAt < METADATA_MAX_AGE_MS) return cached;
    let fetch = this.refreshing.get(topic);
    if (!fetch) {
      fetch = this.options
        .metadata(topic)
        .then((layout) => {
          if (layout.leaders.length === 0) throw new ProduceUnavailableError(`topic ${topic} has no partitions`);
          const fresh = { layout, topicBytes: Buffer.from(topic, 'utf8'), fetchedAt: Date.now() };
          this.layouts.set(topic, fresh);
          return fresh;
        })
        .finally(() => this.refreshing.delete(topic));
      this.refreshing.set(topic, fetch);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new ProduceUnavailableError(`no metadata for ${topic} within ${this.metadataTimeoutMs} ms`)),
        this.metadataTimeoutMs,
      );
    });
    try {
      return await Promise.race([fetch, timeout]);
    } catch (error) {
      if (error instanceof ProduceUnavailableError) throw error;
      throw new ProduceUnavailableError(`no metadata for ${topic}: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
