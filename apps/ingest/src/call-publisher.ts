import { randomUUID } from 'node:crypto';
import { isEarshotError } from '../../shared/src/errors.js';
import type { CallEvent, CallEventPayload, StreamEndReason } from '../../shared/src/events.js';
import type { Logger } from '../../shared/src/logger.js';
import type { EventLog, ProduceRecord } from '../../shared/src/ports/event-log.port.js';
import type { TopicSpec } from '../../shared/src/topics.js';
import type { AudioBatch } from './domain/track-batcher.js';
import type { IngestMetrics } from './metrics.js';
import { TRACK_NAMES } from './twilio/messages.js';

/**
 * Ordered, bounded delivery of each call's events to `earshot.call-events.v1`.
 *
 * - One `CallChannel` per (tenant, Call SID) holds a queue. A channel has at most one produce
 *   in flight, so the log receives a call's records in the order Twilio sent them, across
 *   streams too (a replaced stream's StreamEnded precedes its successor's StreamStarted).
 * - Ready channels are coalesced: one `produce` call carries the records of every call that
 *   has something to send in this turn of the event loop (setImmediate), so Kafka sees a few
 *   large requests instead of one per call.
 * - Audio is bounded per call and track to `maxBufferedMs` of unacknowledged audio (queued +
 *   in flight). Past it the oldest *queued* audio batch of that track is dropped (in-flight
 *   records are already with the log). Lifecycle records (StreamStarted, StreamEnded,
 *   DtmfReceived) are never dropped.
 * - A retriable failure puts the records back at the head of the queue and retries that
 *   channel with jittered exponential backoff (100 ms … 5 s); audio keeps being accepted and
 *   shed meanwhile. A non-retriable failure (the log refused the records as invalid) drops
 *   them, counted in `earshot_ingest_records_lost_total`.
 */
export interface StreamSource {
  readonly streamSid: string;
  readonly framesReceived: number;
  readonly framesDropped: number;
  /** Audio of this stream was shed to respect the bound. */
  onAudioDropped(frames: number): void;
  /** A newer stream for the same call started: end this one as `replaced`. */
  replacedBy(streamSid: string): void;
}

interface Pending {
  /** null for StreamEnded: built when sent, so `framesDropped` counts audio shed after the end. */
  readonly record: ProduceRecord<CallEvent> | null;
  readonly source: StreamSource;
  /** Track index for audio, -1 for lifecycle records. */
  readonly track: number;
  readonly durationMs: number;
  readonly frames: number;
  readonly end: {
    readonly eventId: string;
    readonly occurredAtMs: number;
    readonly reason: StreamEndReason;
    readonly detail: string | null;
  } | null;
}

export class CallChannel {
  readonly queue: Pending[] = [];
  inFlight: Pending[] | null = null;
  readonly bufferedMs = [0, 0];
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;
  /** The stream that currently owns the call. */
  current: StreamSource | null = null;

  constructor(
    readonly key: string,
    readonly tenantId: string,
    readonly callSid: string,
  ) {}
}

const MAX_RECORDS_PER_PRODUCE = 500;
const MAX_RECORDS_PER_CALL = 100;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

export class CallPublisher {
  private readonly channels = new Map<string, CallChannel>();
  private readonly ready = new Set<CallChannel>();
  private scheduled = false;
  private producing = 0;
  private outage = false;
  private closed = false;

  constructor(
    private readonly log: EventLog,
    private readonly topic: TopicSpec<CallEvent>,
    private readonly metrics: IngestMetrics,
    private readonly logger: Logger,
    private readonly maxBufferedMs: number,
  ) {}

  /** Makes `source` the owner of the call; returns the stream it replaces, if any. */
  attach(tenantId: string, callSid: string, source: StreamSource): { channel: CallChannel; previous: StreamSource | null } {
    const key = `${tenantId}\u0000${callSid}`;
    let channel = this.channels.get(key);
    if (!channel) {
      channel = new CallChannel(key, tenantId, callSid);
      this.channels.set(key, channel);
    }
    const previous = channel.current;
    channel.current = source;
    return { channel, previous };
  }

  detach(channel: CallChannel, source: StreamSource): void {
    if (channel.current === source) channel.current = null;
    this.release(channel);
  }

  event(channel: CallChannel, source: StreamSource, payload: CallEventPayload): void {
    this.enqueue(channel, { record: this.record(channel, payload), source, track: -1, durationMs: 0, frames: 0, end: null });
  }

  ended(channel: CallChannel, source: StreamSource, reason: StreamEndReason, detail: string | null): void {
    const end = { eventId: randomUUID(), occurredAtMs: Date.now(), reason, detail };
    this.enqueue(channel, { record: null, source, track: -1, durationMs: 0, frames: 0, end });
  }

  audio(channel: CallChannel, source: StreamSource, batch: AudioBatch): void {
    const record = this.record(channel, {
      type: 'AudioChunkReceived',
      data: {
        streamSid: source.streamSid,
        track: TRACK_NAMES[batch.track] ?? 'inbound',
        firstChunk: batch.firstChunk,
        lastChunk: batch.lastChunk,
        timestampMs: batch.timestampMs,
        durationMs: batch.durationMs,
        payload: batch.payload,
      },
    });
    const track = batch.track;
    channel.bufferedMs[track] = (channel.bufferedMs[track] ?? 0) + batch.durationMs;
    this.enqueue(channel, { record, source, track, durationMs: batch.durationMs, frames: batch.frames, end: null });
    if ((channel.bufferedMs[track] ?? 0) > this.maxBufferedMs) this.shed(channel, track);
  }

  /** Records queued or in flight, over all calls. */
  pendingRecords(): number {
    let n = 0;
    for (const channel of this.channels.values()) n += channel.queue.length + (channel.inFlight?.length ?? 0);
    return n;
  }

  callsBuffering(): number {
    let n = 0;
    for (const channel of this.channels.values()) if (channel.queue.length > 0 || channel.inFlight) n++;
    return n;
  }

  bufferedAudioMs(): number {
    let ms = 0;
    for (const channel of this.channels.values()) ms += (channel.bufferedMs[0] ?? 0) + (channel.bufferedMs[1] ?? 0);
    return ms;
  }

  /** Waits until every record is acknowledged, or gives up after `timeoutMs` and reports what was lost. */
  async drain(timeoutMs: number): Promise<{ lost: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.pendingRecords() > 0 || this.producing > 0) {
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.closed = true;
    let lost = 0;
    for (const channel of this.channels.values()) {
      if (channel.retryTimer) clearTimeout(channel.retryTimer);
      channel.retryTimer = null;
      lost += channel.queue.length + (channel.inFlight?.length ?? 0);
      if (channel.queue.length > 0) {
        this.logger.error({ callSid: channel.callSid, records: channel.queue.length }, 'ingest.records_lost_at_shutdown');
      }
    }
    if (lost > 0) this.metrics.recordsLost.inc(lost);
    return { lost };
  }

  private record(channel: CallChannel, payload: CallEventPayload): ProduceRecord<CallEvent> {
    const occurredAtMs = Date.now();
    const value = { eventId: randomUUID(), callSid: channel.callSid, tenantId: channel.tenantId, occurredAtMs, ...payload } as CallEvent;
    return { key: channel.callSid, value, timestampMs: occurredAtMs };
  }

  private enqueue(channel: CallChannel, item: Pending): void {
    channel.queue.push(item);
    this.markReady(channel);
  }

  /** Drops the oldest queued audio of `track` until the call is back within its bound. */
  private shed(channel: CallChannel, track: number): void {
    const queue = channel.queue;
    let i = 0;
    while ((channel.bufferedMs[track] ?? 0) > this.maxBufferedMs && i < queue.length) {
      const item = queue[i] as Pending;
      if (item.track !== track) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      channel.bufferedMs[track] = (channel.bufferedMs[track] ?? 0) - item.durationMs;
      item.source.onAudioDropped(item.frames);
    }
  }

  private markReady(channel: CallChannel): void {
    if (this.closed || channel.inFlight || channel.retryTimer || channel.queue.length === 0) return;
    this.ready.add(channel);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    while (this.ready.size > 0) {
      const channels: CallChannel[] = [];
      const records: ProduceRecord<CallEvent>[] = [];
      for (const channel of this.ready) {
        if (records.length >= MAX_RECORDS_PER_PRODUCE) break;
        this.ready.delete(channel);
        if (channel.inFlight || channel.retryTimer || channel.queue.length === 0) continue;
        const items = channel.queue.splice(0, MAX_RECORDS_PER_CALL);
        channel.inFlight = items;
        for (const item of items) records.push(item.record ?? endedRecord(channel, item));
        channels.push(channel);
      }
      if (channels.length > 0) void this.send(channels, records);
    }
  };

  private async send(channels: CallChannel[], records: ProduceRecord<CallEvent>[]): Promise<void> {
    this.producing++;
    const started = performance.now();
    let failure: unknown = null;
    try {
      await this.log.produce(this.topic, records);
    } catch (error) {
      failure = error;
    }
    this.metrics.produceLatency.observe((performance.now() - started) / 1000);
    this.producing--;
    if (failure === null) {
      if (this.outage) {
        this.outage = false;
        this.logger.info('ingest.event_log_recovered');
      }
      for (const channel of channels) this.acked(channel);
      return;
    }
    const retriable = isRetriable(failure);
    this.metrics.produceFailures.inc({ retriable: String(retriable) });
    if (!retriable) {
      this.logger.error({ err: failure, records: records.length, calls: channels.map((c) => c.callSid) }, 'ingest.records_refused');
      this.metrics.recordsLost.inc(records.length);
      for (const channel of channels) this.acked(channel);
      return;
    }
    if (!this.outage) {
      this.outage = true;
      this.logger.warn({ err: failure, calls: channels.length }, 'ingest.event_log_unavailable: buffering and retrying');
    }
    for (const channel of channels) this.failed(channel);
  }

  /** The in-flight records are done with (acknowledged, or refused for good). */
  private acked(channel: CallChannel): void {
    let batches = 0;
    for (const item of channel.inFlight ?? []) {
      if (item.track < 0) continue;
      channel.bufferedMs[item.track] = (channel.bufferedMs[item.track] ?? 0) - item.durationMs;
      batches++;
    }
    if (batches > 0) this.metrics.batchesProduced.inc(batches);
    channel.inFlight = null;
    channel.failures = 0;
    if (channel.queue.length > 0) this.markReady(channel);
    else this.release(channel);
  }

  private failed(channel: CallChannel): void {
    const items = channel.inFlight ?? [];
    channel.inFlight = null;
    channel.queue.unshift(...items);
    channel.failures++;
    this.shed(channel, 0);
    this.shed(channel, 1);
    if (this.closed) return;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(channel.failures - 1, 16));
    channel.retryTimer = setTimeout(this.retry, backoff * (0.5 + Math.random() / 2), channel);
  }

  private readonly retry = (channel: CallChannel): void => {
    channel.retryTimer = null;
    this.markReady(channel);
  };

  private release(channel: CallChannel): void {
    if (channel.current || channel.inFlight || channel.retryTimer || channel.queue.length > 0) return;
    if (this.channels.get(channel.key) === channel) this.channels.delete(channel.key);
  }
}

function endedRecord(channel: CallChannel, item: Pending): ProduceRecord<CallEvent> {
  const end = item.end as NonNullable<Pending['end']>;
  const value: CallEvent = {
    eventId: end.eventId,
    callSid: channel.callSid,
    tenantId: channel.tenantId,
    occurredAtMs: end.occurredAtMs,
    type: 'StreamEnded',
    data: {
      streamSid: item.source.streamSid,
      reason: end.reason,
      detail: end.detail,
      framesReceived: item.source.framesReceived,
      framesDropped: item.source.framesDropped,
    },
  };
  return { key: channel.callSid, value, timestampMs: end.occurredAtMs };
}

/** Only failures the log says are transient are retried; a refused (invalid) record never will succeed. */
function isRetriable(error: unknown): boolean {
  if (!isEarshotError(error)) return true;
  return error.retriable || error.code === 'EARSHOT_EVENT_LOG_UNAVAILABLE';
}
