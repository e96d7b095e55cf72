import type { DeliveryAttempted } from '../../../shared/src/events.js';
import type { AttemptResult } from './attempt.js';

/** Something that makes one delivery try (HttpTarget; tests may bring their own). */
export interface Sender {
  attempt(body: string, utteranceId: string): Promise<AttemptResult>;
}

export interface QueuedMessage {
  readonly utteranceId: string;
  readonly callSid: string;
  readonly tenantId: string;
  readonly body: string;
  readonly speechEndedAtMs: number;
  readonly enqueuedAtMs: number;
}

export interface Outcome {
  readonly outcome: DeliveryAttempted['outcome'];
  readonly httpStatus: number | null;
  readonly error: string | null;
  /** 1 for the first try; 0 for a message dropped before any try. */
  readonly attempt: number;
  readonly latencyMs: number;
}

/** Receives every outcome; `final` is true for the last one of a message (no retry follows). */
export type OutcomeSink = (message: QueuedMessage, outcome: Outcome, final: boolean) => void;

export interface QueueLimits {
  /** Requests in flight to the target (= its pool's connections). */
  readonly concurrency: number;
  /** Messages waiting (not in flight); one more drops the oldest waiting. */
  readonly maxPending: number;
  /** A message that waited longer than this is dropped instead of sent. */
  readonly maxWaitMs: number;
  readonly retryBaseMs: number;
}

interface CallLine {
  readonly waiting: QueuedMessage[];
  /** Its head is in flight (or between retries): nothing else of the call may go. */
  busy: boolean;
}

/**
 * One tenant's delivery queue (SPEC §8). Each call's messages go strictly one after the other
 * in arrival (= transcription) order; different calls go in parallel up to `concurrency`.
 * Bounded whatever the target does: at most `maxPending` waiting plus `concurrency` in flight.
 * - full: the oldest waiting message (of any call of this tenant) is dropped first;
 * - a target that times out stalls its calls, so their waiting messages age: those past
 *   `maxWaitMs` are dropped, oldest first, before anything newer is sent;
 * - an error response or a failure is final unless the tenant opted in to retries
 *   (timeouts, connection errors, 5xx, 408, 429; jittered exponential backoff; the call's
 *   later messages wait, so order holds).
 */
export class TargetQueue {
  private readonly calls = new Map<string, CallLine>();
  /** Calls with a waiting head and not busy, in the order they became ready. */
  private ready: string[] = [];
  /** Every waiting message, oldest first; entries already sent or dropped are skipped lazily. */
  private fifo: QueuedMessage[] = [];
  private fifoHead = 0;
  private readonly state = new WeakMap<QueuedMessage, 'waiting' | 'gone'>();
  private waitingCount = 0;
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(
    private sender: Sender,
    private retries: number,
    private readonly limits: QueueLimits,
    private readonly sink: OutcomeSink,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  get pending(): number {
    return this.waitingCount;
  }

  get active(): number {
    return this.inFlight;
  }

  /** New settings (url, auth, retries) for the messages not yet sent. */
  reconfigure(sender: Sender, retries: number): void {
    this.sender = sender;
    this.retries = retries;
  }

  enqueue(message: QueuedMessage): void {
    let line = this.calls.get(message.callSid);
    if (!line) {
      line = { waiting: [], busy: false };
      this.calls.set(message.callSid, line);
    }
    line.waiting.push(message);
    if (line.waiting.length === 1 && !line.busy) this.ready.push(message.callSid);
    this.fifo.push(message);
    this.state.set(message, 'waiting');
    this.waitingCount++;
    while (this.waitingCount > this.limits.maxPending) {
      this.dropOldest(`target backlog full (${this.limits.maxPending} waiting): oldest dropped first`);
    }
    this.pump();
  }

  /** Drops waiting messages older than maxWaitMs, oldest first. Called on a timer and before each send. */
  sweep(): void {
    const now = this.now();
    for (let m = this.oldestWaiting(); m && now - m.enqueuedAtMs > this.limits.maxWaitMs; m = this.oldestWaiting()) {
      this.dropOldest(`waited over ${this.limits.maxWaitMs} ms for a slow or failing target: dropped (oldest first)`);
    }
  }

  /** Resolves when nothing waits and nothing is in flight. */
  drained(): Promise<void> {
    if (this.waitingCount === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private oldestWaiting(): QueuedMessage | undefined {
    while (this.fifoHead < this.fifo.length) {
      const m = this.fifo[this.fifoHead] as QueuedMessage;
      if (this.state.get(m) === 'waiting') return m;
      this.fifoHead++;
    }
    this.compact();
    return undefined;
  }

  private compact(): void {
    if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.fifoHead);
      this.fifoHead = 0;
    }
  }

  private dropOldest(reason: string): void {
    const m = this.oldestWaiting();
    if (!m) return;
    const line = this.calls.get(m.callSid) as CallLine;
    line.waiting.splice(line.waiting.indexOf(m), 1);
    this.take(m);
    if (line.waiting.length === 0 && !line.busy) this.calls.delete(m.callSid);
    this.sink(m, { outcome: 'dropped', httpStatus: null, error: reason, attempt: 0, latencyMs: this.now() - m.enqueuedAtMs }, true);
    this.checkIdle();
  }

  private take(m: QueuedMessage): void {
    this.state.set(m, 'gone');
    this.waitingCount--;
  }

  private pump(): void {
    while (this.inFlight < this.limits.concurrency && this.ready.length > 0) {
      const callSid = this.ready.shift() as string;
      const line = this.calls.get(callSid);
      if (!line || line.busy || line.waiting.length === 0) continue; // stale entry
      this.sweep();
      const head = line.waiting.shift();
      if (!head) {
        if (!line.busy) this.calls.delete(callSid);
        continue;
      }
      this.take(head);
      line.busy = true;
      this.inFlight++;
      void this.deliver(head).finally(() => {
        this.inFlight--;
        line.busy = false;
        if (line.waiting.length > 0) this.ready.push(callSid);
        else this.calls.delete(callSid);
        this.pump();
        this.checkIdle();
      });
    }
  }

  private async deliver(m: QueuedMessage): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const startedAt = this.now();
      // A sender reports failures as results; anything it throws is still recorded, never lost.
      const result = await this.sender.attempt(m.body, m.utteranceId).catch((error: unknown) => ({
        outcome: 'connection_error' as const,
        httpStatus: null,
        error: `unexpected: ${(error as Error)?.message ?? String(error)}`.slice(0, 500),
        retriable: false,
      }));
      const final = result.outcome === 'delivered' || !result.retriable || attempt > this.retries;
      this.sink(
        m,
        { outcome: result.outcome, httpStatus: result.httpStatus, error: result.error, attempt, latencyMs: this.now() - startedAt },
        final,
      );
      if (final) return;
      // Full jitter: a random wait up to base × 2^(attempt-1), at most 10 s.
      const ceiling = Math.min(10_000, this.limits.retryBaseMs * 2 ** (attempt - 1));
      await new Promise((r) => setTimeout(r, Math.round(this.random() * ceiling)));
    }
  }

  private checkIdle(): void {
    if (this.waitingCount !== 0 || this.inFlight !== 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
