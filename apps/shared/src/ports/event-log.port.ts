import type { TopicSpec } from '../topics.js';

/**
 * The event log every app talks to. Two adapters implement it: Kafka (distributed mode)
 * and an in-process log (embedded mode); `test/contracts/event-log.ts` runs one suite
 * against both. Records are keyed (by Call SID for call topics) so one key's records stay
 * in one partition, in order. Offsets are committed only when a consumer says so.
 */
export interface EventLog {
  readonly kind: 'kafka' | 'embedded';

  /** Creates missing topics (partitions, retention, compaction) and registers their schemas. */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;

  /** How a topic is configured on the log, as the log itself reports it. */
  describeTopic(name: string): Promise<TopicDescription>;

  /** The next offset of each partition (index = partition): what a reader must reach to have read everything. */
  endOffsets(topic: string): Promise<number[]>;

  /** Appends records; resolves once the log has accepted them (Kafka: acks from all in-sync replicas). */
  produce<T>(topic: TopicSpec<T>, records: readonly ProduceRecord<T>[]): Promise<void>;

  /** A consumer in a group; nothing is read until `run`. Offsets are committed only by `commit`. */
  createConsumer(options: ConsumerOptions): EventLogConsumer;

  close(): Promise<void>;
}

export interface TopicDescription {
  readonly name: string;
  readonly partitions: number;
  readonly compacted: boolean;
  readonly retentionMs: number | null;
}

export interface ProduceRecord<T> {
  readonly key: string;
  readonly value: T;
  /** Defaults to now. */
  readonly timestampMs?: number;
}

export interface LogRecord<T = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: T;
  readonly timestampMs: number;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface CommitOffset extends TopicPartition {
  /** The next offset to read (the last processed offset + 1), as in Kafka. */
  readonly offset: number;
}

export interface ConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly TopicSpec[];
  /** Where a group with no committed offset starts. Default: the beginning. */
  readonly fromBeginning?: boolean;
  /** Called with this member's whole assignment each time the group rebalances. */
  readonly onAssignment?: (assignment: readonly TopicPartition[]) => void;
}

export interface RecordBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly LogRecord[];
}

export interface EventLogConsumer {
  /**
   * Starts consuming; resolves once the consumer has joined its group. Batches of one
   * partition are handed over one at a time, in offset order. A handler that throws stops
   * that partition's progress until the error is logged and the batch is retried.
   */
  run(handler: (batch: RecordBatch) => Promise<void>): Promise<void>;
  commit(offsets: readonly CommitOffset[]): Promise<void>;
  /** The last committed offset of a partition for this group, or null. */
  committed(partition: TopicPartition): Promise<number | null>;
  assignment(): readonly TopicPartition[];
  /** Leaves the group without committing anything. */
  stop(): Promise<void>;
}
