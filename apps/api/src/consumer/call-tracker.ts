import { randomUUID } from 'node:crypto';
import type { CallEvent } from '../../../shared/src/events.js';
import type { Logger } from '../../../shared/src/logger.js';
import type { EventLog, EventLogConsumer, RecordBatch } from '../../../shared/src/ports/event-log.port.js';
import { TOPICS } from '../../../shared/src/topics.js';
import type { ApiMetrics } from '../api-metrics.js';
import { accept, type CallState, current, EMPTY_CALL, expirePending, isIdle, observe, type TrackedCall } from '../domain/call-state.js';

/**
 * Follows `earshot.call-events.v1` into the call-state projection of `domain/call-state.ts`.
 * Every API node reads the whole topic (a consumer group of its own, from the beginning,
 * nothing committed): the topic's retention (6 h) bounds the replay at start-up.
 */
export interface CallTrackerOptions {
  readonly log: EventLog;
  readonly logger: Logger;
  readonly metrics: ApiMetrics;
  readonly clock?: () => number;
  /**
   * A partition whose last records expired (or could not be decoded) never delivers its
   * end offset; after this long without a batch from it, it counts as read to the end.
   */
  readonly quietMs?: number;
}

/** Same as the topic's retention: the log itself has forgotten a call idle for longer. */
export const CALL_IDLE_EVICTION_MS = 6 * 3_600_000;
/** Own commands not read back within this long are dropped from the local view. */
const PENDING_MAX_AGE_MS = 10 * 60_000;
const SWEEP_INTERVAL_MS = 60_000;

export class CallTracker {
  private readonly calls = new Map<string, TrackedCall>();
  /** Command event ids already read from the log (recent ones), so `accepted` never applies one twice. */
  private readonly observed = new Map<string, number>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly clock: () => number;
  private consumer: EventLogConsumer | undefined;
  private timers: NodeJS.Timeout[] = [];
  private caughtUp = false;

  constructor(private readonly options: CallTrackerOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Joins the topic; resolves once everything written before the call has been applied. */
  async start(): Promise<void> {
    const topic = TOPICS.callEvents.name;
    const ends = await this.options.log.endOffsets(topic);
    const reached = ends.map((end) => end === 0);
    const lastBatchAt: number[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const check = (): void => {
      if (this.caughtUp || !reached.every(Boolean)) return;
      this.caughtUp = true;
      this.options.logger.info({ calls: this.calls.size }, 'api.call_state_ready');
      done();
    };
    this.consumer = this.options.log.createConsumer({
      groupId: `earshot-api-calls-${randomUUID()}`,
      topics: [TOPICS.callEvents],
      fromBeginning: true,
    });
    await this.consumer.run(async (batch) => {
      this.applyBatch(batch);
      const last = batch.records[batch.records.length - 1];
      if (last && last.offset >= (ends[batch.partition] ?? 0) - 1) reached[batch.partition] = true;
      lastBatchAt[batch.partition] = this.clock();
      check();
    });
    const quietMs = this.options.quietMs ?? 3000;
    // Joining a Kafka group takes seconds: the quiet period starts once the consumer runs.
    for (const [partition] of ends.entries()) lastBatchAt[partition] ??= this.clock();
    const quiet = setInterval(() => {
      for (const [partition, isReached] of reached.entries()) {
        if (!isReached && this.clock() - (lastBatchAt[partition] ?? 0) > quietMs) {
          this.options.logger.debug({ partition }, 'api.call_state_partition_quiet: counted as read to the end');
          reached[partition] = true;
        }
      }
      check();
      if (this.caughtUp) clearInterval(quiet);
    }, 100);
    quiet.unref();
    this.timers.push(quiet);
    check();
    const sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    sweeper.unref();
    this.timers.push(sweeper);
    await finished;
  }

  get ready(): boolean {
    return this.caughtUp;
  }

  get size(): number {
    return this.calls.size;
  }

  /** The call as this node knows it, or undefined (unknown, or idle past eviction). */
  state(callSid: string): CallState | undefined {
    const call = this.calls.get(callSid);
    if (!call) return undefined;
    if (isIdle(call, this.clock(), CALL_IDLE_EVICTION_MS) && call.pending.length === 0) {
      this.calls.delete(callSid);
      return undefined;
    }
    return current(call);
  }

  /** The calls of one tenant this node knows (idle ones past eviction left out), for the live page's list. */
  callsOf(tenantId: string): { callSid: string; state: CallState }[] {
    const now = this.clock();
    const found: { callSid: string; state: CallState }[] = [];
    for (const [callSid, call] of this.calls) {
      const state = current(call);
      if (state?.tenantId === tenantId && now - state.lastEventAtMs <= CALL_IDLE_EVICTION_MS) found.push({ callSid, state });
    }
    return found;
  }

  /**
   * Records one of this node's commands right after the log accepted it. The log may already
   * have handed it back (a fast fetch wins the race with this call): then it is applied and
   * must not be kept as pending, or it would be applied again on top of later commands.
   */
  accepted(event: CallEvent): void {
    if (this.observed.has(event.eventId)) return;
    this.calls.set(event.callSid, accept(this.calls.get(event.callSid) ?? EMPTY_CALL, event));
    this.options.metrics.callsTracked.set(this.calls.size);
  }

  /**
   * Runs `fn` after every earlier `fn` of the same call has finished, so two requests for
   * one call on this node decide one after the other (the second sees the first's command).
   */
  async exclusive<T>(callSid: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(callSid) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(callSid, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(callSid) === tail) this.locks.delete(callSid);
    }
  }

  /** Forgets calls idle past eviction and own commands never read back. */
  sweep(): void {
    const now = this.clock();
    for (const [eventId, at] of this.observed) if (now - at > PENDING_MAX_AGE_MS) this.observed.delete(eventId);
    for (const [callSid, call] of this.calls) {
      const kept = expirePending(call, now, PENDING_MAX_AGE_MS);
      if (isIdle(kept, now, CALL_IDLE_EVICTION_MS) && kept.pending.length === 0) this.calls.delete(callSid);
      else if (kept !== call) this.calls.set(callSid, kept);
    }
    this.options.metrics.callsTracked.set(this.calls.size);
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await this.consumer?.stop();
    this.consumer = undefined;
  }

  private applyBatch(batch: RecordBatch): void {
    let changed = false;
    for (const record of batch.records) {
      const event = record.value as CallEvent;
      // Audio is nearly every record of the topic and says nothing the API needs.
      if (event.type === 'AudioChunkReceived' || event.type === 'DtmfReceived') continue;
      this.observed.set(event.eventId, this.clock());
      const before = this.calls.get(event.callSid);
      const after = observe(before ?? EMPTY_CALL, event);
      if (after.confirmed === undefined && after.pending.length === 0) {
        if (before) this.calls.delete(event.callSid);
      } else {
        this.calls.set(event.callSid, after);
      }
      changed = true;
    }
    if (changed) this.options.metrics.callsTracked.set(this.calls.size);
  }
}
