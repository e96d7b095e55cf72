import { randomUUID } from 'node:crypto';
import type { DeliveryAttempted, UtteranceRecognized } from '../../../apps/shared/src/events.js';
import type { LogRecord } from '../../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../../apps/shared/src/tenants/app-admin.js';
import type { WebhookSettingsInput } from '../../../apps/shared/src/tenants/webhook-settings.js';
import { TOPICS } from '../../../apps/shared/src/topics.js';
import { type DispatcherLimits, startWebhooksApp, type WebhooksServer } from '../../../apps/webhooks/main.js';
import { testRuntime } from '../../support/runtime.js';
import { waitFor } from '../../support/wait.js';

/**
 * A runtime (embedded log, or the real Kafka broker), the webhooks app on it, and what the
 * tests need around it: tenants with a webhook, utterance events, and the delivery events the
 * app wrote (read back from earshot.deliveries.v1 by a consumer of their own).
 */
export interface Harness {
  readonly runtime: Runtime;
  readonly app: WebhooksServer;
  readonly deliveries: DeliveryAttempted[];
  tenant(url: string, auth?: WebhookSettingsInput): Promise<string>;
  utter(tenantId: string, callSid: string, index: number, fields?: Partial<UtteranceRecognized>): Promise<UtteranceRecognized>;
  /** Waits until `count` final outcomes of the tenant are on the deliveries topic; returns them in order. */
  finals(tenantId: string, count: number): Promise<DeliveryAttempted[]>;
  cleanup(): Promise<void>;
}

export async function webhookHarness(
  options: { kafka?: boolean; limits?: Partial<DispatcherLimits>; env?: Record<string, string> } = {},
): Promise<Harness> {
  const runtime = await testRuntime({ kafka: options.kafka, env: options.env });
  const deliveries: DeliveryAttempted[] = [];
  const reader = runtime.eventLog.createConsumer({
    groupId: `test-deliveries-${randomUUID()}`,
    topics: [TOPICS.deliveries],
    fromBeginning: true,
  });
  await reader.run(async (batch) => {
    for (const r of batch.records as LogRecord<DeliveryAttempted>[]) deliveries.push(r.value);
  });
  const app = await startWebhooksApp(runtime, { limits: { timeoutMs: 2000, ...options.limits } });
  const admin = new AppAdmin(runtime.eventLog, runtime.credentials);
  const isFinal = (d: DeliveryAttempted, retries: Map<string, number>) =>
    d.outcome === 'delivered' ||
    d.outcome === 'dropped' ||
    d.attempt > (retries.get(d.tenantId) ?? 0) ||
    (d.outcome === 'http_error' && d.httpStatus !== null && d.httpStatus < 500 && d.httpStatus !== 408 && d.httpStatus !== 429);
  const retries = new Map<string, number>();
  let stopped = false;
  return {
    runtime,
    app,
    deliveries,
    async tenant(url, auth = {}) {
      const { apiId } = await admin.create({ name: `tenant ${randomUUID().slice(0, 8)}`, webhookUrl: url, webhookAuth: auth });
      retries.set(apiId, Number(auth.retries ?? 0));
      await waitFor('the tenant in the directory', () => runtime.apps.get(apiId) !== undefined, 10_000);
      return apiId;
    },
    async utter(tenantId, callSid, index, fields = {}) {
      const now = Date.now();
      const event: UtteranceRecognized = {
        eventId: randomUUID(),
        utteranceId: `${callSid}:MZ0001:inbound:${index * 8000}`,
        callSid,
        tenantId,
        streamId: '00000000-0000-4000-8000-000000000001',
        role: 'customer',
        senderExternalId: 'customer-1',
        track: 'inbound',
        startMs: index * 1000,
        endMs: index * 1000 + 800,
        text: `utterance ${index}`,
        unredactedText: null,
        language: 'en-US',
        tokens: null,
        engine: 'test',
        model: 'test',
        speechEndedAtMs: now,
        occurredAtMs: now,
        ...fields,
      };
      await runtime.eventLog.produce(TOPICS.utterances, [{ key: callSid, value: event }]);
      return event;
    },
    async finals(tenantId, count) {
      const mine = () => deliveries.filter((d) => d.tenantId === tenantId && isFinal(d, retries));
      await waitFor(`${count} final delivery outcomes of ${tenantId} (have ${mine().length})`, () => mine().length >= count, 20_000);
      return mine();
    },
    async cleanup() {
      if (stopped) return;
      stopped = true;
      await app.stop();
      await reader.stop();
      await runtime.cleanup();
    },
  };
}

export const callSid = (): string => `CA${randomUUID().replace(/-/g, '')}`;
