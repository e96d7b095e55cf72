import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { EarshotError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  CommitOffset,
  ConsumerOptions,
  EventLog,
  EventLogConsumer,
  ProduceRecord,
  RecordBatch,
  TopicDescription,
  TopicPartition,
} from '../ports/event-log.port.js';
import type { TopicSpec } from '../topics.js';
import { AvroCodec } from './avro-codec.js';

/**
 * In-process event log for embedded mode (`npm start` with no servers). Same semantics as
 * the Kafka adapter for one process: keyed partitions, consumer groups with rebalancing,
 * manual commits. Topics marked `embeddedStorage: 'file'` are append-only files of JSON
 * lines under `<dataDir>/log/`, so another process (the `earshot apps` CLI) can append to
 * them while the gateway runs: offsets are line numbers, and every process learns about
 * records — its own included — by reading the file back. Consumer groups live in one
 * process only; embedded mode is never the way to scale.
 */
export interface EmbeddedEventLogOptions {
  /** Where file-backed topics and committed offsets live; null keeps everything in memory. */
  readonly dataDir: string | null;
  readonly partitions: number;
  readonly logger: Logger;
  /** How often file-backed partitions are checked for records appended by other processes. */
  readonly pollIntervalMs?: number;
}

interface StoredRecord {
  readonly offset: number;
  readonly key: string;
  readonly value: Buffer;
  readonly timestampMs: number;
}

const BATCH_MAX = 500;
const RETRY_AFTER_ERROR_MS = 1000;

class Partition {
  records: StoredRecord[] = [];
  nextOffset = 0;
  private bytesRead = 0;

  constructor(
    readonly spec: TopicSpec,
    readonly index: number,
    readonly file: string | null,
  ) {}

  append(records: readonly Omit<StoredRecord, 'offset'>[]): void {
    if (this.file) {
      const lines = records.map((r) => `${JSON.stringify({ k: r.key, t: r.timestampMs, v: r.value.toString('base64') })}\n`);
      appendFileSync(this.file, lines.join(''));
      this.readFile();
      return;
    }
    for (const r of records) this.records.push({ ...r, offset: this.nextOffset++ });
    this.applyRetention(Date.now());
  }

  /** Reads lines appended to the file since the last read; returns whether any arrived. */
  readFile(): boolean {
    if (!this.file || !existsSync(this.file)) return false;
    const fd = openSync(this.file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.bytesRead) return false;
      const buffer = Buffer.alloc(size - this.bytesRead);
      readSync(fd, buffer, 0, buffer.length, this.bytesRead);
      const end = buffer.lastIndexOf(0x0a) + 1; // a line still being written is read next time
      if (end === 0) return false;
      for (const line of buffer.subarray(0, end).toString('utf8').split('\n')) {
        if (line === '') continue;
        const { k, t, v } = JSON.parse(line) as { k: string; t: number; v: string };
        this.records.push({ offset: this.nextOffset++, key: k, timestampMs: t, value: Buffer.from(v, 'base64') });
      }
      this.bytesRead += end;
      if (this.spec.compacted) this.compact();
      return true;
    } finally {
      closeSync(fd);
    }
  }

  /** Keeps the newest record of each key (offsets keep their gaps, as in Kafka). */
  private compact(): void {
    const newest = new Map<string, number>();
    for (const r of this.records) newest.set(r.key, r.offset);
    this.records = this.records.filter((r) => newest.get(r.key) === r.offset);
  }

  private applyRetention(now: number): void {
    const retention = this.spec.retentionMs;
    if (retention === null || this.records.length === 0) return;
    let drop = 0;
    while (drop < this.records.length && (this.records[drop] as StoredRecord).timestampMs < now - retention) drop++;
    if (drop > 0) this.records.splice(0, drop);
  }

  get startOffset(): number {
    return this.records[0]?.offset ?? this.nextOffset;
  }

  /** Records from `offset` on (at most `max`). */
  slice(offset: number, max: number): StoredRecord[] {
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.records[mid] as StoredRecord).offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return this.records.slice(lo, lo + max);
  }
}

interface Topic {
  readonly spec: TopicSpec;
  readonly codec: AvroCodec<unknown>;
  readonly partitions: Partition[];
}

class Group {
  readonly members: EmbeddedConsumer[] = [];
  readonly committed = new Map<string, number>();
  constructor(
    readonly id: string,
    readonly file: string | null,
  ) {
    if (file && existsSync(file)) {
      for (const [tp, offset] of Object.entries(JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>)) {
        this.committed.set(tp, offset);
      }
    }
  }
}

const tpKey = (topic: string, partition: number): string => `${topic}/${partition}`;

export class EmbeddedEventLog implements EventLog {
  readonly kind = 'embedded' as const;
  private readonly topics = new Map<string, Topic>();
  private readonly groups = new Map<string, Group>();
  private readonly waiters = new Set<() => void>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: EmbeddedEventLogOptions) {}

  async ensureTopics(specs: readonly TopicSpec[]): Promise<void> {
    for (const spec of specs) this.openTopic(spec);
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    const topic = this.topic(name);
    return { name, partitions: topic.partitions.length, compacted: topic.spec.compacted, retentionMs: topic.spec.retentionMs };
  }

  async endOffsets(name: string): Promise<number[]> {
    const topic = this.topic(name);
    return topic.partitions.map((p) => {
      p.readFile(); // another process may have appended since we last looked
      return p.nextOffset;
    });
  }

  async produce<T>(spec: TopicSpec<T>, records: readonly ProduceRecord<T>[]): Promise<void> {
    this.assertOpen();
    const topic = this.topic(spec.name);
    const now = Date.now();
    // Encode everything first: one invalid record rejects the whole call and writes nothing.
    const encoded = records.map((r) => ({ key: r.key, value: topic.codec.encode(r.value), timestampMs: r.timestampMs ?? now }));
    const byPartition = new Map<Partition, typeof encoded>();
    for (const record of encoded) {
      const partition = topic.partitions[partitionFor(record.key, topic.partitions.length)] as Partition;
      const list = byPartition.get(partition) ?? [];
      list.push(record);
      byPartition.set(partition, list);
    }
    for (const [partition, list] of byPartition) partition.append(list);
    this.wakeConsumers();
  }

  createConsumer(options: ConsumerOptions): EventLogConsumer {
    this.assertOpen();
    return new EmbeddedConsumer(this, options, this.options.logger);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    for (const group of this.groups.values()) for (const member of [...group.members]) await member.stop();
    this.wakeConsumers();
  }

  // ---- used by EmbeddedConsumer ----------------------------------------------------

  topic(name: string): Topic {
    const topic = this.topics.get(name);
    if (!topic)
      throw new EarshotError('EARSHOT_TOPIC_UNKNOWN', `topic ${name} does not exist; call ensureTopics first`, { fields: { topic: name } });
    return topic;
  }

  group(id: string): Group {
    let group = this.groups.get(id);
    if (!group) {
      const file = this.options.dataDir ? join(this.options.dataDir, 'log', '__groups', `${encodeURIComponent(id)}.json`) : null;
      group = new Group(id, file);
      this.groups.set(id, group);
    }
    return group;
  }

  join(group: Group, member: EmbeddedConsumer): void {
    group.members.push(member);
    this.rebalance(group);
    this.startPolling();
  }

  leave(group: Group, member: EmbeddedConsumer): void {
    const i = group.members.indexOf(member);
    if (i >= 0) group.members.splice(i, 1);
    this.rebalance(group);
  }

  commit(group: Group, offsets: readonly CommitOffset[]): void {
    for (const o of offsets) group.committed.set(tpKey(o.topic, o.partition), o.offset);
    if (!group.file) return;
    // Only offsets of file-backed topics mean anything after a restart.
    const durable: Record<string, number> = {};
    for (const [tp, offset] of group.committed) {
      const topicName = tp.slice(0, tp.lastIndexOf('/'));
      if (this.topics.get(topicName)?.spec.embeddedStorage === 'file') durable[tp] = offset;
    }
    mkdirSync(join(group.file, '..'), { recursive: true });
    writeFileSync(`${group.file}.tmp`, JSON.stringify(durable));
    renameSync(`${group.file}.tmp`, group.file);
  }

  committedOffset(group: Group, topic: string, partition: number): number | null {
    return group.committed.get(tpKey(topic, partition)) ?? null;
  }

  /** Resolves when records arrive or the group changes (or after `ms`). */
  waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  wakeConsumers(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  // ---- internals -------------------------------------------------------------------

  private openTopic(spec: TopicSpec): void {
    if (this.topics.has(spec.name)) return;
    let count = this.options.partitions;
    let dir: string | null = null;
    if (spec.embeddedStorage === 'file' && this.options.dataDir) {
      dir = join(this.options.dataDir, 'log', spec.name);
      mkdirSync(dir, { recursive: true });
      // The first process to create the topic fixes its partition count for everyone.
      const meta = join(dir, 'topic.json');
      if (existsSync(meta)) count = (JSON.parse(readFileSync(meta, 'utf8')) as { partitions: number }).partitions;
      else writeFileSync(meta, JSON.stringify({ partitions: count }));
    }
    const partitions = Array.from({ length: count }, (_, i) => new Partition(spec, i, dir ? join(dir, `${i}.jsonl`) : null));
    for (const p of partitions) p.readFile();
    this.topics.set(spec.name, { spec, codec: new AvroCodec(spec), partitions });
  }

  private rebalance(group: Group): void {
    const all: TopicPartition[] = [];
    const subscribed = new Set(group.members.flatMap((m) => m.topicNames));
    for (const name of [...subscribed].sort()) {
      const topic = this.topic(name);
      for (const p of topic.partitions) all.push({ topic: name, partition: p.index });
    }
    const assignments = group.members.map(() => [] as TopicPartition[]);
    let next = 0;
    for (const tp of all) {
      // Round-robin over the members subscribed to this topic.
      for (let tries = 0; tries < group.members.length; tries++) {
        const i = (next + tries) % group.members.length;
        if ((group.members[i] as EmbeddedConsumer).topicNames.includes(tp.topic)) {
          (assignments[i] as TopicPartition[]).push(tp);
          next = i + 1;
          break;
        }
      }
    }
    for (const [i, member] of group.members.entries()) member.assign(assignments[i] as TopicPartition[]);
    this.wakeConsumers();
  }

  private startPolling(): void {
    if (this.poller || !this.options.dataDir) return;
    this.poller = setInterval(() => {
      let arrived = false;
      for (const topic of this.topics.values()) for (const p of topic.partitions) if (p.readFile()) arrived = true;
      if (arrived) this.wakeConsumers();
    }, this.options.pollIntervalMs ?? 200);
    this.poller.unref();
  }

  private assertOpen(): void {
    if (this.closed) throw new EarshotError('EARSHOT_EVENT_LOG_CLOSED', 'the event log is closed');
  }
}

class EmbeddedConsumer implements EventLogConsumer {
  readonly topicNames: string[];
  private readonly group: Group;
  private readonly positions = new Map<string, { tp: TopicPartition; offset: number }>();
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly log: EmbeddedEventLog,
    private readonly options: ConsumerOptions,
    private readonly logger: Logger,
  ) {
    this.topicNames = options.topics.map((t) => t.name);
    for (const name of this.topicNames) log.topic(name);
    this.group = log.group(options.groupId);
  }

  async run(handler: (batch: RecordBatch) => Promise<void>): Promise<void> {
    if (this.running) throw new EarshotError('EARSHOT_USAGE', 'consumer is already running');
    this.running = true;
    this.log.join(this.group, this);
    this.loop = this.pump(handler);
  }

  assign(assignment: readonly TopicPartition[]): void {
    const keep = new Set(assignment.map((tp) => tpKey(tp.topic, tp.partition)));
    for (const key of [...this.positions.keys()]) if (!keep.has(key)) this.positions.delete(key);
    for (const tp of assignment) {
      const key = tpKey(tp.topic, tp.partition);
      if (this.positions.has(key)) continue;
      const partition = this.log.topic(tp.topic).partitions[tp.partition] as Partition;
      const committed = this.log.committedOffset(this.group, tp.topic, tp.partition);
      const offset = committed ?? (this.options.fromBeginning === false ? partition.nextOffset : partition.startOffset);
      this.positions.set(key, { tp, offset });
    }
    this.options.onAssignment?.(assignment);
  }

  assignment(): readonly TopicPartition[] {
    return [...this.positions.values()].map((p) => p.tp);
  }

  async commit(offsets: readonly CommitOffset[]): Promise<void> {
    // As in Kafka, a member may only commit partitions it owns.
    this.log.commit(
      this.group,
      offsets.filter((o) => this.positions.has(tpKey(o.topic, o.partition))),
    );
  }

  async committed(tp: TopicPartition): Promise<number | null> {
    return this.log.committedOffset(this.group, tp.topic, tp.partition);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.log.leave(this.group, this);
    this.positions.clear();
    this.log.wakeConsumers();
    await this.loop;
  }

  private async pump(handler: (batch: RecordBatch) => Promise<void>): Promise<void> {
    while (this.running) {
      let delivered = false;
      for (const [key, position] of [...this.positions]) {
        if (!this.running || this.positions.get(key) !== position) continue;
        const topic = this.log.topic(position.tp.topic);
        const partition = topic.partitions[position.tp.partition] as Partition;
        position.offset = Math.max(position.offset, partition.startOffset);
        const stored = partition.slice(position.offset, BATCH_MAX);
        if (stored.length === 0) continue;
        const records = stored.map((r) => ({
          topic: topic.spec.name,
          partition: partition.index,
          offset: r.offset,
          key: r.key,
          value: topic.codec.decode(r.value),
          timestampMs: r.timestampMs,
        }));
        try {
          await handler({ topic: topic.spec.name, partition: partition.index, records });
          position.offset = (stored[stored.length - 1] as StoredRecord).offset + 1;
          delivered = true;
        } catch (error) {
          this.logger.error({ err: error, topic: topic.spec.name, partition: partition.index }, 'event-log.handler_failed; retrying batch');
          await this.log.waitForChange(RETRY_AFTER_ERROR_MS);
        }
      }
      if (!delivered && this.running) await this.log.waitForChange(1000);
    }
  }
}

/** FNV-1a: a stable key → partition mapping that every process sharing the data dir computes alike. */
export function partitionFor(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

export function createEmbeddedEventLog(options: EmbeddedEventLogOptions): EventLog {
  return new EmbeddedEventLog(options);
}
