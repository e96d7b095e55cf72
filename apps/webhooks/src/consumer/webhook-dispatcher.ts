import { randomUUID } from 'node:crypto';
import type { UtteranceRecognized } from '../../../shared/src/events.js';
import type { EventLogConsumer, LogRecord, RecordBatch, TopicPartition } from '../../../shared/src/ports/event-log.port.js';
import type { Runtime } from '../../../shared/src/runtime.js';
import { openWebhookSettings } from '../../../shared/src/tenants/webhook-settings.js';
import { TOPICS } from '../../../shared/src/topics.js';
import { HttpTarget } from '../delivery/http-target.js';
import { type Outcome, type QueuedMessage, type QueueLimits, type Sender, TargetQueue } from '../delivery/target-queue.js';
import { DeliveryRecorder } from '../delivery-recorder.js';
import { transcriptMessage } from '../domain/transcript-payload.js';
import { type WebhookMetrics, webhookMetrics } from '../webhook-metrics.js';

/**
 * The webhooks app's consumer (SPEC §8): its own group on earshot.utterances.v1; every
 * utterance goes to its tenant's TargetQueue, and every outcome becomes a DeliveryAttempted
 * event on earshot.deliveries.v1.
 *
 * Offsets: a message's offset is done once its final outcome (delivered, http_error, timeout,
 * connection_error after any retries, or dropped) is written to the deliveries topic; each
 * partition commits up to its oldest offset not yet done (after each batch and every second).
 * A crash or rebalance therefore re-sends the messages in flight or waiting, and possibly
 * some later ones of other calls already delivered: at-least-once, never a lost outcome.
 * Receivers that care deduplicate on the `earshot-utterance-id` header.
 */
export const WEBHOOKS_GROUP = 'earshot-webhooks';
const COMMIT_EVERY_MS = 1000;
const SWEEP_EVERY_MS = 100;

export interface DispatcherLimits extends QueueLimits {
  readonly timeoutMs: number;
}

interface Target {
  readonly key: string;
  readonly queue: TargetQueue;
  http: HttpTarget;
}

interface PartitionState {
  readonly outstanding: number[];
  head: number;
  readonly done: Set<number>;
  lastOffset: number | null;
  committed: number | null;
}

interface Message extends QueuedMessage {
  readonly settle: () => void;
}

export interface WebhookDispatcher {
  /** The HTTP target of a tenant (tests read its OAuth token fetches). */
  target(tenantId: string): HttpTarget | undefined;
  stop(): Promise<void>;
}

export async function startWebhookDispatcher(
  runtime: Runtime,
  options: { groupId?: string; limits?: Partial<DispatcherLimits> } = {},
): Promise<WebhookDispatcher> {
  const { config, eventLog, logger } = runtime;
  const log = logger.child({ app: 'webhooks' });
  const metrics: WebhookMetrics = webhookMetrics(runtime);
  const limits: DispatcherLimits = {
    timeoutMs: config.EARSHOT_WEBHOOK_TIMEOUT_MS,
    concurrency: config.EARSHOT_WEBHOOK_CONNECTIONS,
    maxPending: config.EARSHOT_WEBHOOK_MAX_PENDING,
    maxWaitMs: config.EARSHOT_WEBHOOK_MAX_WAIT_MS,
    retryBaseMs: config.EARSHOT_WEBHOOK_RETRY_BASE_MS,
    ...options.limits,
  };
  const recorder = new DeliveryRecorder(eventLog, log);
  const targets = new Map<string, Target>();
  const partitions = new Map<number, PartitionState>();
  let stopping = false;

  const sink = (message: QueuedMessage, outcome: Outcome, final: boolean): void => {
    const m = message as Message;
    metrics.deliveries.inc({ outcome: outcome.outcome });
    if (outcome.attempt > 0) metrics.request.observe({ outcome: outcome.outcome }, outcome.latencyMs / 1000);
    const now = Date.now();
    if (outcome.outcome === 'delivered') metrics.endOfSpeechToDelivered.observe(Math.max(0, now - m.speechEndedAtMs) / 1000);
    recorder
      .record({
        eventId: randomUUID(),
        utteranceId: m.utteranceId,
        callSid: m.callSid,
        tenantId: m.tenantId,
        outcome: outcome.outcome,
        httpStatus: outcome.httpStatus,
        latencyMs: Math.max(0, Math.round(outcome.latencyMs)),
        attempt: outcome.attempt,
        error: outcome.error,
        occurredAtMs: now,
      })
      .then(
        () => {
          if (final) m.settle();
        },
        (error) => {
          // Offset stays held: a restart re-sends this message rather than lose its outcome.
          metrics.errors.inc({ stage: 'record' });
          log.error({ err: error, callSid: m.callSid, utteranceId: m.utteranceId }, 'webhooks.record_failed');
        },
      );
  };

  /** The tenant's target for its current settings, or why there is none. */
  function targetFor(tenantId: string): Target | { skip: string } | { broken: string } {
    const app = runtime.apps.get(tenantId);
    if (!app) return { skip: 'unknown_app' };
    if (app.disabled) return { skip: 'disabled' };
    if (!app.webhookUrl) return { skip: 'no_webhook' };
    const key = `${app.webhookUrl}\n${app.encryptedWebhookAuth ?? ''}`;
    const current = targets.get(tenantId);
    if (current?.key === key) return current;
    let http: HttpTarget;
    let retries: number;
    try {
      const settings = openWebhookSettings(runtime.credentials, app.encryptedWebhookAuth);
      retries = settings.retries;
      http = new HttpTarget({ url: app.webhookUrl, settings, timeoutMs: limits.timeoutMs, connections: limits.concurrency });
    } catch (error) {
      metrics.errors.inc({ stage: 'settings' });
      return { broken: `webhook settings cannot be used: ${(error as Error).message}` };
    }
    if (current) {
      // Settings changed: messages not yet sent use the new ones; requests in flight finish.
      current.queue.reconfigure(http, retries);
      void current.http.close().catch(() => {});
      const next = { key, queue: current.queue, http };
      targets.set(tenantId, next);
      log.info({ tenantId }, 'webhooks.target_reconfigured');
      return next;
    }
    const created: Target = { key, http, queue: new TargetQueue(http as Sender, retries, limits, sink) };
    targets.set(tenantId, created);
    return created;
  }

  const consumer: EventLogConsumer = eventLog.createConsumer({
    groupId: options.groupId ?? WEBHOOKS_GROUP,
    topics: [TOPICS.utterances],
    onAssignment: (assignment: readonly TopicPartition[]) => {
      const mine = new Set(assignment.map((tp) => tp.partition));
      for (const p of [...partitions.keys()]) if (!mine.has(p)) partitions.delete(p);
      for (const p of mine)
        if (!partitions.has(p)) partitions.set(p, { outstanding: [], head: 0, done: new Set(), lastOffset: null, committed: null });
    },
  });

  async function handle(batch: RecordBatch): Promise<void> {
    const state = partitions.get(batch.partition);
    if (!state || stopping) return; // revoked, or shutting down: left uncommitted for the next owner
    for (const record of batch.records as LogRecord<UtteranceRecognized>[]) {
      // A consumer restarted in place (kafkajs does so after a broker outage) fetches again from
      // the last committed offset. This process still holds those records (queued, in flight,
      // or settled and waiting for the commit, e.g. while their outcome waits for Kafka to come
      // back), so handling them again would only POST them twice.
      if (state.lastOffset !== null && record.offset <= state.lastOffset) {
        metrics.refetched.inc();
        continue;
      }
      const event = record.value;
      state.outstanding.push(record.offset);
      state.lastOffset = record.offset;
      const settle = () => state.done.add(record.offset);
      const target = targetFor(event.tenantId);
      if ('skip' in target) {
        metrics.skipped.inc({ reason: target.skip });
        settle();
        continue;
      }
      const message: Message = {
        utteranceId: event.utteranceId,
        callSid: event.callSid,
        tenantId: event.tenantId,
        body: JSON.stringify(transcriptMessage(event)),
        speechEndedAtMs: event.speechEndedAtMs,
        enqueuedAtMs: Date.now(),
        settle,
      };
      if ('broken' in target) {
        sink(message, { outcome: 'dropped', httpStatus: null, error: target.broken, attempt: 0, latencyMs: 0 }, true);
        continue;
      }
      target.queue.enqueue(message);
    }
    // A failed commit must not escape the batch handler: kafkajs does not restart a consumer
    // whose crash cause is not retriable (e.g. an unknown member right after a broker restart),
    // and the committer below tries again within a second anyway.
    await commit(batch.partition).catch((error) => log.warn({ err: error, partition: batch.partition }, 'webhooks.commit_failed'));
  }

  async function commit(partition: number): Promise<void> {
    const state = partitions.get(partition);
    if (!state || state.lastOffset === null) return;
    while (state.head < state.outstanding.length && state.done.has(state.outstanding[state.head] as number)) {
      state.done.delete(state.outstanding[state.head] as number);
      state.head++;
    }
    if (state.head > 1024) {
      state.outstanding.splice(0, state.head);
      state.head = 0;
    }
    const safe = state.head < state.outstanding.length ? (state.outstanding[state.head] as number) : state.lastOffset + 1;
    if (state.committed !== null && safe <= state.committed) return;
    await consumer.commit([{ topic: TOPICS.utterances.name, partition, offset: safe }]);
    state.committed = safe;
  }

  const sweeper = setInterval(() => {
    let pending = 0;
    let active = 0;
    for (const t of targets.values()) {
      t.queue.sweep();
      pending += t.queue.pending;
      active += t.queue.active;
    }
    metrics.pending.set(pending);
    metrics.inFlight.set(active);
  }, SWEEP_EVERY_MS);
  sweeper.unref();
  const committer = setInterval(() => {
    for (const p of partitions.keys()) commit(p).catch((error) => log.warn({ err: error, partition: p }, 'webhooks.commit_failed'));
  }, COMMIT_EVERY_MS);
  committer.unref();

  await consumer.run(handle);
  log.info({ ...limits }, 'webhooks.started');

  let stopped: Promise<void> | null = null;
  return {
    target: (tenantId) => targets.get(tenantId)?.http,
    stop: () => {
      stopped ??= shutdown();
      return stopped;
    },
  };

  async function shutdown(): Promise<void> {
    stopping = true;
    // Finish what was taken (bounded by the request timeout and the wait limit), record
    // every outcome, commit, then leave the group.
    const drained = Promise.all([...targets.values()].map((t) => t.queue.drained()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, config.EARSHOT_STOP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    clearInterval(sweeper);
    recorder.stop();
    await recorder.flush();
    for (const p of partitions.keys()) await commit(p).catch(() => {});
    clearInterval(committer);
    await consumer.stop();
    await Promise.all([...targets.values()].map((t) => t.http.destroy().catch(() => {})));
  }
}
