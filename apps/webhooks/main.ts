import type { Runtime } from '../shared/src/runtime.js';
import { type DispatcherLimits, startWebhookDispatcher, type WebhookDispatcher } from './src/consumer/webhook-dispatcher.js';

/**
 * The webhooks app (SPEC §8): posts every utterance to its tenant's webhook and records each
 * outcome on earshot.deliveries.v1. The only composition root of the app; limits come from
 * the EARSHOT_WEBHOOK_* settings unless a caller (a test, a benchmark) overrides them.
 */
export type { DispatcherLimits };

export interface WebhooksServer {
  readonly describe: string;
  readonly dispatcher: WebhookDispatcher;
  stop(): Promise<void>;
}

export async function startWebhooksApp(
  runtime: Runtime,
  options: { groupId?: string; limits?: Partial<DispatcherLimits> } = {},
): Promise<WebhooksServer> {
  const dispatcher = await startWebhookDispatcher(runtime, options);
  const { config } = runtime;
  const timeoutMs = options.limits?.timeoutMs ?? config.EARSHOT_WEBHOOK_TIMEOUT_MS;
  const connections = options.limits?.concurrency ?? config.EARSHOT_WEBHOOK_CONNECTIONS;
  return {
    describe: `timeout ${timeoutMs} ms, ${connections} connection(s) per target`,
    dispatcher,
    stop: () => dispatcher.stop(),
  };
}
