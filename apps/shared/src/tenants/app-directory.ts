import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AppState } from '../events.js';
import type { Logger } from '../logger.js';
import type { EventLog, EventLogConsumer } from '../ports/event-log.port.js';
import { TOPICS } from '../topics.js';
import { verifySecret } from './secret-hash.js';

/**
 * The current state of every app (tenant), kept in memory from the compacted topic
 * `earshot.apps.v1` by every node that authenticates requests or sockets (api, ingest).
 * A change made with `earshot apps` reaches a running node as fast as its consumer polls
 * (well under a second).
 */
export interface TenantApp {
  readonly apiId: string;
  readonly name: string;
  readonly disabled: boolean;
  readonly secretHash: string;
  readonly webhookUrl: string | null;
  readonly encryptedWebhookAuth: string | null;
  readonly encryptedTwilioAuthToken: string | null;
  readonly updatedAtMs: number;
}

export function appFromState(state: AppState): TenantApp {
  return {
    apiId: state.apiId,
    name: state.name,
    disabled: state.disabled,
    secretHash: state.secretHash,
    webhookUrl: state.webhookUrl,
    encryptedWebhookAuth: state.encryptedWebhookAuth,
    encryptedTwilioAuthToken: state.encryptedTwilioAuthToken,
    updatedAtMs: state.occurredAtMs,
  };
}

export class AppDirectory {
  private readonly apps = new Map<string, TenantApp>();
  /**
   * scrypt is deliberately slow (~50 ms); after one successful check the secret's HMAC under
   * a per-process random key is remembered, so later requests cost a constant-time compare.
   * Rotation changes `secretHash`, which invalidates the entry.
   */
  private readonly verified = new Map<string, { secretHash: string; digest: Buffer }>();
  private readonly cacheKey = randomBytes(32);

  apply(state: AppState): void {
    const current = this.apps.get(state.apiId);
    if (current && current.updatedAtMs > state.occurredAtMs) return; // an older record replayed
    this.apps.set(state.apiId, appFromState(state));
  }

  get(apiId: string): TenantApp | undefined {
    return this.apps.get(apiId);
  }

  list(): TenantApp[] {
    return [...this.apps.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The app if `secret` is its current secret and it is enabled; otherwise null. */
  async authenticate(apiId: string, secret: string): Promise<TenantApp | null> {
    const app = this.apps.get(apiId);
    if (!app || app.disabled) return null;
    const digest = createHmac('sha256', this.cacheKey).update(secret).digest();
    const known = this.verified.get(apiId);
    if (known && known.secretHash === app.secretHash) {
      return timingSafeEqual(known.digest, digest) ? app : null;
    }
    if (!(await verifySecret(secret, app.secretHash))) return null;
    this.verified.set(apiId, { secretHash: app.secretHash, digest });
    return app;
  }
}

/**
 * Follows the apps topic into a directory; resolves once everything written before the call
 * has been applied, so a node never serves requests with a partial view of its tenants.
 */
export async function followAppDirectory(log: EventLog, logger: Logger): Promise<{ directory: AppDirectory; stop: () => Promise<void> }> {
  const directory = new AppDirectory();
  const ends = await log.endOffsets(TOPICS.apps.name);
  const reached = ends.map((end) => end === 0);
  let caughtUp!: () => void;
  const ready = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  if (reached.every(Boolean)) caughtUp();
  // Every node reads the whole topic: a group of its own, nothing committed.
  const consumer: EventLogConsumer = log.createConsumer({
    groupId: `earshot-apps-${randomUUID()}`,
    topics: [TOPICS.apps],
    fromBeginning: true,
  });
  await consumer.run(async (batch) => {
    for (const record of batch.records) {
      directory.apply(record.value as AppState);
      if (record.offset >= (ends[record.partition] ?? 0) - 1) reached[record.partition] = true;
    }
    if (reached.every(Boolean)) caughtUp();
  });
  await ready;
  logger.debug({ apps: directory.list().length }, 'apps.directory_ready');
  return { directory, stop: () => consumer.stop() };
}
