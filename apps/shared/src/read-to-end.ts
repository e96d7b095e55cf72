import { randomUUID } from 'node:crypto';
import type { EventLog, LogRecord } from './ports/event-log.port.js';
import type { TopicSpec } from './topics.js';

/**
 * Reads a topic from the beginning up to its end as of the call (e.g. the compacted apps
 * topic, for a CLI that needs the current state) and resolves with every record read.
 * Uses a throwaway consumer group and commits nothing.
 */
export async function readToEnd<T>(log: EventLog, topic: TopicSpec<T>): Promise<LogRecord<T>[]> {
  const ends = await log.endOffsets(topic.name);
  const records: LogRecord<T>[] = [];
  if (ends.every((end) => end === 0)) return records;
  const reached = ends.map((end) => end === 0);
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const consumer = log.createConsumer({ groupId: `earshot-read-${randomUUID()}`, topics: [topic], fromBeginning: true });
  await consumer.run(async (batch) => {
    for (const record of batch.records as LogRecord<T>[]) {
      if (record.offset < (ends[record.partition] ?? 0)) records.push(record);
      if (record.offset >= (ends[record.partition] ?? 0) - 1) reached[record.partition] = true;
    }
    if (reached.every(Boolean)) done();
  });
  await finished;
  await consumer.stop();
  return records.sort((a, b) => a.timestampMs - b.timestampMs || a.partition - b.partition || a.offset - b.offset);
}
