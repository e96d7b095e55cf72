import { randomUUID } from 'node:crypto';
import type { SessionEvent, TranscriptionSessionClosed } from '../../../shared/src/events.js';
import type { Logger } from '../../../shared/src/logger.js';
import type { EventLog, EventLogConsumer } from '../../../shared/src/ports/event-log.port.js';
import { TOPICS } from '../../../shared/src/topics.js';

/**
 * stop-streaming answers with the session's summary (SPEC §3.3), which only the asr consumer
 * knows once it has finished the utterance in progress. Every API node follows
 * earshot.sessions.v1 from its end and hands each TranscriptionSessionClosed to the request
 * waiting for it (matched by the stop's request id). A close that arrives before its waiter
 * (a very fast asr) is kept for a minute.
 */
const KEEP_EARLY_MS = 60_000;
const KEEP_EARLY_MAX = 10_000;

export class SessionWaiter {
  private consumer: EventLogConsumer | null = null;
  private readonly waiting = new Map<string, (closed: TranscriptionSessionClosed) => void>();
  private readonly early = new Map<string, { closed: TranscriptionSessionClosed; atMs: number }>();

  constructor(private readonly deps: { log: EventLog; logger: Logger; clock: () => number }) {}

  async start(): Promise<void> {
    const consumer = this.deps.log.createConsumer({
      groupId: `earshot-api-sessions-${randomUUID()}`,
      topics: [TOPICS.sessions],
      fromBeginning: false,
    });
    this.consumer = consumer;
    await consumer.run(async (batch) => {
      for (const record of batch.records) this.seen(record.value as SessionEvent);
    });
  }

  /** The close of the session ended by stop request `requestId`, or null after `timeoutMs`. */
  wait(requestId: string, timeoutMs: number): Promise<TranscriptionSessionClosed | null> {
    const early = this.early.get(requestId);
    if (early) {
      this.early.delete(requestId);
      return Promise.resolve(early.closed);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(requestId, (closed) => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        resolve(closed);
      });
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  private seen(event: SessionEvent): void {
    if (event.type !== 'TranscriptionSessionClosed' || event.data.requestId === null) return;
    const waiter = this.waiting.get(event.data.requestId);
    if (waiter) {
      waiter(event.data);
      return;
    }
    const now = this.deps.clock();
    for (const [id, entry] of this.early) if (now - entry.atMs > KEEP_EARLY_MS || this.early.size > KEEP_EARLY_MAX) this.early.delete(id);
    this.early.set(event.data.requestId, { closed: event.data, atMs: now });
  }
}
