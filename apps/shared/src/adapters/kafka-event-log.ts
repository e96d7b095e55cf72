import kafkajs, { type Admin, type Consumer, type ConsumerRunConfig, type Kafka } from 'kafkajs';
import { EarshotError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  CommitOffset,
  ConsumerOptions,
  EventLog,
  EventLogConsumer,
  LogRecord,
  ProduceRecord,
  RecordBatch,
  TopicDescription,
  TopicPartition,
} from '../ports/event-log.port.js';
import type { TopicSpec } from '../topics.js';
import { ProduceRefusedError, RecordBatchProducer, type TopicLayout } from './kafka-producer/record-batch-producer.js';
import { SchemaRegistryCodec } from './schema-registry-codec.js';

const { Kafka: KafkaClient, logLevel, ConfigResourceTypes } = kafkajs;

/**
 * Kafka adapter (distributed mode). kafkajs is unmaintained upstream, so it stays behind
 * this file: nothing else in the project imports it. It does admin, metadata and consumers;
 * records are written by our own producer (kafka-producer/, record batches encoded in one
 * pass: kafkajs's per-record cost was half of an ingest process's CPU). Values are Avro in the Confluent wire
 * format (SchemaRegistryCodec); keys are plain UTF-8 Call SIDs, so Kafka's default
 * partitioner keeps one call in one partition.
 */
export interface KafkaEventLogOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly schemaRegistryUrl: string;
  readonly partitions: number;
  readonly logger: Logger;
  readonly fetchMaxWaitMs?: number;
  readonly heartbeatMs?: number;
  readonly sessionTimeoutMs?: number;
  /**
   * Prefixed to every topic, subject and consumer group (`<namespace>.earshot.call-events.v1`),
   * so several deployments (or test runs) share one cluster without seeing each other.
   * Records handed to the app carry the unprefixed names.
   */
  readonly namespace?: string;
}

export class KafkaEventLog implements EventLog {
  readonly kind = 'kafka' as const;
  readonly codec: SchemaRegistryCodec;
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private readonly producer: RecordBatchProducer;
  private readonly consumers = new Set<KafkaConsumer>();
  private readonly prefix: string;

  constructor(readonly options: KafkaEventLogOptions) {
    this.prefix = options.namespace ? `${options.namespace}.` : '';
    this.codec = new SchemaRegistryCodec(options.schemaRegistryUrl, undefined, this.prefix);
    const log = options.logger.child({ component: 'kafkajs' });
    this.kafka = new KafkaClient({
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: logLevel.WARN,
      retry: { initialRetryTime: 100, retries: 8 },
      logCreator:
        () =>
        ({ level, log: entry }) => {
          const { message, ...rest } = entry;
          if (level <= logLevel.ERROR) log.error(rest, message);
          else if (level === logLevel.WARN) log.warn(rest, message);
          else log.debug(rest, message);
        },
    });
    this.producer = new RecordBatchProducer({ clientId: options.clientId, metadata: (topic) => this.topicLayout(topic) });
  }

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    const admin = await this.connectAdmin();
    // Create only what is missing: kafkajs logs an error for every topic that already exists.
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((spec) => !existing.has(this.wire(spec.name)));
    if (missing.length > 0) {
      await this.createTopics(admin, missing);
    }
    for (const spec of specs) await this.codec.register(spec);
  }

  private async createTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<void> {
    await admin.createTopics({
      waitForLeaders: true,
      topics: specs.map((spec) => ({
        topic: this.wire(spec.name),
        numPartitions: this.options.partitions,
        replicationFactor: 1,
        configEntries: [
          { name: 'cleanup.policy', value: spec.compacted ? 'compact' : 'delete' },
          { name: 'retention.ms', value: String(spec.retentionMs ?? -1) },
        ],
      })),
    });
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    const admin = await this.connectAdmin();
    const metadata = await admin.fetchTopicMetadata({ topics: [this.wire(name)] });
    const configs = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: this.wire(name), configNames: ['cleanup.policy', 'retention.ms'] }],
    });
    const entries = configs.resources[0]?.configEntries ?? [];
    const value = (key: string): string | undefined => entries.find((e) => e.configName === key)?.configValue;
    const retention = Number(value('retention.ms'));
    return {
      name,
      partitions: metadata.topics[0]?.partitions.length ?? 0,
      compacted: (value('cleanup.policy') ?? '').split(',').includes('compact'),
      retentionMs: retention >= 0 ? retention : null,
    };
  }

  async endOffsets(name: string): Promise<number[]> {
    const admin = await this.connectAdmin();
    const offsets = await retryNotLeader(() => admin.fetchTopicOffsets(this.wire(name)));
    const result: number[] = [];
    for (const o of offsets) result[o.partition] = Number(o.high);
    return result;
  }

  async produce<T>(topic: TopicSpec<T>, records: readonly ProduceRecord<T>[]): Promise<void> {
    // Encode everything first: one invalid record rejects the whole call and sends nothing.
    const now = Date.now();
    const values = await this.codec.encodeAll(
      topic,
      records.map((r) => r.value),
    );
    const encoded = records.map((r, i) => ({ key: r.key, value: values[i] as Buffer, timestampMs: r.timestampMs ?? now }));
    try {
      await this.producer.send(this.wire(topic.name), encoded);
    } catch (error) {
      if (error instanceof ProduceRefusedError) {
        throw new EarshotError('EARSHOT_EVENT_LOG_REFUSED', `cannot produce to ${topic.name}: ${error.message}`, {
          fields: { topic: topic.name, records: records.length, kafkaErrorCode: error.errorCode },
          cause: error,
        });
      }
      throw new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', `cannot produce to ${topic.name}: ${(error as Error).message}`, {
        retriable: true,
        fields: { topic: topic.name, records: records.length },
        cause: error,
      });
    }
  }

  /** Partition leaders for our producer, from kafkajs's admin (it knows the cluster's brokers). */
  private async topicLayout(topic: string): Promise<TopicLayout> {
    const admin = await this.connectAdmin();
    // One after the other: a describeCluster still in flight when the metadata fails would
    // outlive close() with a connection of its own.
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const cluster = await admin.describeCluster();
    const brokers = new Map(cluster.brokers.map((b) => [b.nodeId, { host: b.host, port: b.port }]));
    const leaders: ({ host: string; port: number } | null)[] = [];
    for (const p of metadata.topics[0]?.partitions ?? []) leaders[p.partitionId] = p.leader >= 0 ? (brokers.get(p.leader) ?? null) : null;
    return { leaders: Array.from(leaders, (l) => l ?? null) };
  }

  createConsumer(options: ConsumerOptions): EventLogConsumer {
    const consumer = new KafkaConsumer(this, options, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    for (const consumer of [...this.consumers]) await consumer.stop();
    this.producer.close();
    if (this.admin) await this.admin.disconnect();
  }

  /** The name on the cluster of a topic or group. */
  wire(name: string): string {
    return this.prefix + name;
  }

  /** The app's name of a topic named `name` on the cluster. */
  local(name: string): string {
    return name.startsWith(this.prefix) ? name.slice(this.prefix.length) : name;
  }

  newKafkaConsumer(groupId: string): Consumer {
    return this.kafka.consumer({
      groupId: this.wire(groupId),
      sessionTimeout: this.options.sessionTimeoutMs ?? 10000,
      heartbeatInterval: this.options.heartbeatMs ?? 1000,
      maxWaitTimeInMs: this.options.fetchMaxWaitMs ?? 100,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 100, retries: 8 },
    });
  }

  async connectAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }
}

class KafkaConsumer implements EventLogConsumer {
  private readonly consumer: Consumer;
  private current: TopicPartition[] = [];
  private running = false;
  private runConfig: ConsumerRunConfig | undefined;
  private readonly log: Logger;

  constructor(
    private readonly owner: KafkaEventLog,
    private readonly options: ConsumerOptions,
    private readonly onStopped: () => void,
  ) {
    this.consumer = owner.newKafkaConsumer(options.groupId);
    this.log = owner.options.logger.child({ component: 'event-log', groupId: options.groupId });
  }

  async run(handler: (batch: RecordBatch) => Promise<void>): Promise<void> {
    if (this.running) throw new EarshotError('EARSHOT_USAGE', 'consumer is already running');
    this.running = true;
    const specs = new Map(this.options.topics.map((t) => [t.name, t]));
    const joined = new Promise<void>((resolve) => {
      this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
        this.current = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
          (partitions as number[]).map((partition) => ({ topic: this.owner.local(topic), partition })),
        );
        this.options.onAssignment?.(this.current);
        resolve();
      });
    });
    // kafkajs restarts a crashed consumer only when it judges the cause retriable. A group
    // coordinator not found while the broker restarts is not, and left the consumer stopped for
    // good while its process looked healthy (the webhooks app delivered nothing more after a
    // Kafka restart, docs/reliability.md): revive it ourselves.
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      this.log[payload.restart ? 'warn' : 'error'](
        { err: payload.error, restart: payload.restart },
        payload.restart ? 'event-log.consumer_crashed_restarting' : 'event-log.consumer_crashed_reviving',
      );
      if (!payload.restart && this.running) void this.revive();
    });
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...specs.keys()].map((t) => this.owner.wire(t)),
      fromBeginning: this.options.fromBeginning ?? true,
    });
    this.runConfig = {
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const topic = this.owner.local(batch.topic);
        const spec = specs.get(topic) as TopicSpec;
        const records: LogRecord[] = [];
        for (const message of batch.messages) {
          try {
            records.push({
              topic,
              partition: batch.partition,
              offset: Number(message.offset),
              key: message.key?.toString('utf8') ?? '',
              value: await this.owner.codec.decode(spec, message.value as Buffer),
              timestampMs: Number(message.timestamp),
            });
          } catch (error) {
            // A record we cannot decode would block its partition forever: report it and skip it.
            this.log.error(
              { err: error, topic: batch.topic, partition: batch.partition, offset: message.offset },
              'event-log.undecodable_record',
            );
          }
        }
        if (records.length > 0) await handler({ topic, partition: batch.partition, records });
      },
    };
    await this.consumer.run(this.runConfig);
    await joined;
  }

  /** Reconnects and runs a consumer kafkajs gave up on (it disconnected it), with backoff, until it runs or we stop. */
  private async revive(): Promise<void> {
    for (let attempt = 1; this.running && this.runConfig; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * attempt)));
      if (!this.running) return;
      try {
        await this.consumer.connect();
        await this.consumer.run(this.runConfig);
        if (this.running) this.log.warn({ attempt }, 'event-log.consumer_revived');
        else await this.consumer.disconnect(); // stopped while we revived it
        return;
      } catch (error) {
        this.log.warn({ err: error, attempt }, 'event-log.consumer_revive_failed');
      }
    }
  }

  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    await this.consumer.commitOffsets(
      offsets.map((o) => ({ topic: this.owner.wire(o.topic), partition: o.partition, offset: String(o.offset) })),
    );
  }

  async committed(tp: TopicPartition): Promise<number | null> {
    const admin = await this.owner.connectAdmin();
    const [topic] = await admin.fetchOffsets({ groupId: this.owner.wire(this.options.groupId), topics: [this.owner.wire(tp.topic)] });
    const entry = topic?.partitions.find((p) => p.partition === tp.partition);
    const offset = Number(entry?.offset ?? -1);
    return offset >= 0 ? offset : null;
  }

  assignment(): readonly TopicPartition[] {
    return this.current;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.current = [];
    await this.consumer.disconnect();
    this.onStopped();
  }
}

export function createKafkaEventLog(options: KafkaEventLogOptions): EventLog {
  return new KafkaEventLog(options);
}

/**
 * Right after a topic is created (or a broker restarted) the admin client's metadata can name a
 * partition leader that is not ready yet: the broker answers NOT_LEADER_OR_FOLLOWER (6) or
 * LEADER_NOT_AVAILABLE (5), which kafkajs does not retry on a ListOffsets. Seen on fresh test
 * namespaces on a loaded broker; a few short retries ride it out.
 */
async function retryNotLeader<T>(request: () => Promise<T>, attempts = 10): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      const code = (error as { code?: number }).code;
      if ((code !== 6 && code !== 5) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}
