import { Counter, Gauge, Histogram } from '../../shared/src/metrics.js';
import type { Runtime } from '../../shared/src/runtime.js';

export type WebhookMetrics = ReturnType<typeof webhookMetrics>;

/** The app's metrics; a restarted dispatcher in the same process (tests) reuses them. */
export function webhookMetrics(runtime: Runtime) {
  const registers = [runtime.metrics];
  const once = <M>(name: string, create: () => M): M => (runtime.metrics.getSingleMetric(name) as M | undefined) ?? create();
  return {
    deliveries: once(
      'earshot_webhook_deliveries_total',
      () =>
        new Counter({
          name: 'earshot_webhook_deliveries_total',
          help: 'Delivery outcomes (one per try; dropped = never tried): delivered, http_error, timeout, connection_error, dropped',
          labelNames: ['outcome'],
          registers,
        }),
    ),
    skipped: once(
      'earshot_webhook_skipped_total',
      () =>
        new Counter({
          name: 'earshot_webhook_skipped_total',
          help: 'Utterances not delivered because their app has no webhook, is disabled or unknown',
          labelNames: ['reason'],
          registers,
        }),
    ),
    refetched: once(
      'earshot_webhook_refetched_total',
      () =>
        new Counter({
          name: 'earshot_webhook_refetched_total',
          help: 'Utterance records Kafka handed over again that this process already held (a consumer restarted in place): not sent twice',
          registers,
        }),
    ),
    endOfSpeechToDelivered: once(
      'earshot_webhook_end_of_speech_to_delivered_seconds',
      () =>
        new Histogram({
          name: 'earshot_webhook_end_of_speech_to_delivered_seconds',
          help: 'From the true end of speech (speechEndedAtMs) to the target acknowledging the transcript',
          buckets: [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30],
          registers,
        }),
    ),
    request: once(
      'earshot_webhook_request_seconds',
      () =>
        new Histogram({
          name: 'earshot_webhook_request_seconds',
          help: 'Duration of one delivery try (token fetch included)',
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          labelNames: ['outcome'],
          registers,
        }),
    ),
    pending: once(
      'earshot_webhook_pending',
      () => new Gauge({ name: 'earshot_webhook_pending', help: 'Messages waiting for their target, all targets', registers }),
    ),
    inFlight: once(
      'earshot_webhook_in_flight',
      () => new Gauge({ name: 'earshot_webhook_in_flight', help: 'Requests in flight, all targets', registers }),
    ),
    errors: once(
      'earshot_webhook_errors_total',
      () =>
        new Counter({
          name: 'earshot_webhook_errors_total',
          help: 'Failures of the dispatcher itself (unreadable settings, events that could not be written)',
          labelNames: ['stage'],
          registers,
        }),
    ),
  };
}
