import { Counter, Gauge, Histogram, type Registry } from '../../shared/src/metrics.js';
import { TRACK_NAMES } from './twilio/messages.js';

/**
 * Ingest metrics. Per-frame counts are plain integers (an array increment costs nothing on the
 * hot path; a labelled prom-client `inc` hashes its labels) and are copied into prom-client
 * at scrape time by `collect`. Rare events (rejections, session ends) use prom-client directly.
 */

/** Why a WebSocket message (or, for `backpressure`, an audio frame) was dropped. */
export const DROP_REASONS = [
  'invalid_json',
  'invalid_message',
  'binary_frame',
  'unknown_event',
  'before_start',
  'after_stop',
  'repeated_start',
  'invalid_media',
  'unknown_track',
  'invalid_base64',
  'payload_size',
  'duplicate',
  'out_of_order',
  'invalid_dtmf',
  'oversized',
  'backpressure',
  'internal_error',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
export const DROP: { readonly [R in DropReason]: number } = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as {
  [R in DropReason]: number;
};

export const EVENTS = ['connected', 'start', 'media', 'dtmf', 'mark', 'stop', 'other'] as const;
export type EventName = (typeof EVENTS)[number];

export type SessionOutcome =
  | 'stopped'
  | 'closed_without_stop'
  | 'replaced'
  | 'errored'
  | 'refused'
  | 'closed_before_start'
  | 'idle_before_start'
  | 'shutdown_before_start';

export class IngestMetrics {
  /** Hot-path counters, read at scrape time. */
  readonly messages: Record<EventName, number> = { connected: 0, start: 0, media: 0, dtmf: 0, mark: 0, stop: 0, other: 0 };
  readonly framesAccepted = { inbound: 0, outbound: 0 };
  bytesAccepted = 0;
  readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

  readonly upgradesAccepted: Counter;
  readonly upgradesRejected: Counter<'reason'>;
  readonly sessionsEnded: Counter<'outcome'>;
  readonly batchesProduced: Counter;
  readonly produceLatency: Histogram;
  readonly produceFailures: Counter<'retriable'>;
  readonly recordsLost: Counter;

  constructor(registry: Registry, gauges: { sessionsOpen(): number; callsBuffering(): number; bufferedAudioMs(): number }) {
    const metrics = this;
    const register = <M>(name: string, make: () => M): M => {
      // A second ingest in one process (tests) replaces the first one's metrics.
      if (registry.getSingleMetric(name)) registry.removeSingleMetric(name);
      return make();
    };
    const registers = [registry];
    register(
      'earshot_ingest_messages_total',
      () =>
        new Counter({
          name: 'earshot_ingest_messages_total',
          help: 'WebSocket messages received, by Twilio event type',
          labelNames: ['event'],
          registers,
          collect() {
            this.reset();
            for (const event of EVENTS) this.inc({ event }, metrics.messages[event]);
          },
        }),
    );
    register(
      'earshot_ingest_frames_received_total',
      () =>
        new Counter({
          name: 'earshot_ingest_frames_received_total',
          help: 'Media frames (20 ms) accepted into a batch, by track',
          labelNames: ['track'],
          registers,
          collect() {
            this.reset();
            for (const track of TRACK_NAMES) this.inc({ track }, metrics.framesAccepted[track]);
          },
        }),
    );
    register(
      'earshot_ingest_frames_dropped_total',
      () =>
        new Counter({
          name: 'earshot_ingest_frames_dropped_total',
          help: 'Messages dropped, by reason (backpressure: audio frames dropped to bound the per-call buffer)',
          labelNames: ['reason'],
          registers,
          collect() {
            this.reset();
            for (const reason of DROP_REASONS) this.inc({ reason }, metrics.dropped[reason]);
          },
        }),
    );
    register(
      'earshot_ingest_audio_bytes_total',
      () =>
        new Counter({
          name: 'earshot_ingest_audio_bytes_total',
          help: 'mu-law bytes accepted',
          registers,
          collect() {
            this.reset();
            this.inc(metrics.bytesAccepted);
          },
        }),
    );
    register(
      'earshot_ingest_sessions_open',
      () =>
        new Gauge({
          name: 'earshot_ingest_sessions_open',
          help: 'Open WebSocket sessions',
          registers,
          collect() {
            this.set(gauges.sessionsOpen());
          },
        }),
    );
    register(
      'earshot_ingest_calls_buffering',
      () =>
        new Gauge({
          name: 'earshot_ingest_calls_buffering',
          help: 'Calls with records not yet acknowledged by the event log',
          registers,
          collect() {
            this.set(gauges.callsBuffering());
          },
        }),
    );
    register(
      'earshot_ingest_buffered_audio_ms',
      () =>
        new Gauge({
          name: 'earshot_ingest_buffered_audio_ms',
          help: 'Audio (ms, all calls and tracks) waiting for an event-log acknowledgement',
          registers,
          collect() {
            this.set(gauges.bufferedAudioMs());
          },
        }),
    );
    this.upgradesAccepted = register(
      'earshot_ingest_upgrades_accepted_total',
      () => new Counter({ name: 'earshot_ingest_upgrades_accepted_total', help: 'WebSocket upgrades accepted', registers }),
    );
    this.upgradesRejected = register(
      'earshot_ingest_upgrades_rejected_total',
      () =>
        new Counter({
          name: 'earshot_ingest_upgrades_rejected_total',
          help: 'WebSocket upgrades refused before any session existed, by reason',
          labelNames: ['reason'] as const,
          registers,
        }),
    );
    this.sessionsEnded = register(
      'earshot_ingest_sessions_ended_total',
      () =>
        new Counter({
          name: 'earshot_ingest_sessions_ended_total',
          help: 'Sessions ended, by outcome (StreamEnded reason, or why a session never started a stream)',
          labelNames: ['outcome'] as const,
          registers,
        }),
    );
    this.batchesProduced = register(
      'earshot_ingest_batches_produced_total',
      () => new Counter({ name: 'earshot_ingest_batches_produced_total', help: 'Audio batches acknowledged by the event log', registers }),
    );
    this.produceLatency = register(
      'earshot_ingest_produce_latency_seconds',
      () =>
        new Histogram({
          name: 'earshot_ingest_produce_latency_seconds',
          help: 'Time from handing records to the event log until it acknowledged (or refused) them',
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers,
        }),
    );
    this.produceFailures = register(
      'earshot_ingest_produce_failures_total',
      () =>
        new Counter({
          name: 'earshot_ingest_produce_failures_total',
          help: 'Failed produce calls (retriable ones are retried)',
          labelNames: ['retriable'] as const,
          registers,
        }),
    );
    this.recordsLost = register(
      'earshot_ingest_records_lost_total',
      () =>
        new Counter({
          name: 'earshot_ingest_records_lost_total',
          help: 'Records given up on: refused by the log as invalid, or still unacknowledged when shutdown timed out',
          registers,
        }),
    );
  }
}
