import { randomUUID } from 'node:crypto';
import { AUDIT_HASH_KEY_LABEL, type AuditAction, AuditTrail } from '../audit/audit-trail.js';
import { EarshotError } from '../errors.js';
import type { AppChange, AppState } from '../events.js';
import type { EventLog } from '../ports/event-log.port.js';
import { readToEnd } from '../read-to-end.js';
import { TOPICS } from '../topics.js';
import { AppDirectory, type TenantApp } from './app-directory.js';
import type { CredentialBox } from './credential-box.js';
import { hashSecret, newApiId, newApiSecret } from './secret-hash.js';
import { checkWebhookSettings, hasWebhookSettings, sealWebhookSettings, type WebhookSettingsInput } from './webhook-settings.js';

/**
 * The use cases behind `earshot apps ...` (SPEC §2). Each reads the current state from the
 * compacted apps topic and appends the app's next full state; the secret is returned once
 * and only its hash is written.
 */
export interface AppSummary {
  readonly apiId: string;
  readonly name: string;
  readonly disabled: boolean;
  readonly webhookUrl: string | null;
  readonly twilioSignatureCheck: boolean;
}

const AUDIT_ACTIONS: Record<AppChange['type'], AuditAction> = {
  AppCreated: 'app.created',
  AppSecretRotated: 'app.secret_rotated',
  AppDisabled: 'app.disabled',
  AppWebhookSet: 'app.webhook_set',
  AppTwilioAuthTokenSet: 'app.twilio_auth_token_set',
};

const summary = (app: TenantApp): AppSummary => ({
  apiId: app.apiId,
  name: app.name,
  disabled: app.disabled,
  webhookUrl: app.webhookUrl,
  twilioSignatureCheck: app.encryptedTwilioAuthToken !== null,
});

export class AppAdmin {
  constructor(
    private readonly log: EventLog,
    private readonly box: CredentialBox,
    private readonly clock: () => number = Date.now,
  ) {}

  async create(input: {
    name: string;
    webhookUrl?: string;
    webhookAuth?: WebhookSettingsInput;
    twilioAuthToken?: string;
  }): Promise<{ apiId: string; apiSecret: string }> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) throw usage('--name must be 1 to 200 characters');
    if (input.webhookUrl !== undefined) checkWebhookUrl(input.webhookUrl);
    else if (input.webhookAuth && hasWebhookSettings(input.webhookAuth)) throw usage('webhook auth options need --webhook-url');
    const encryptedWebhookAuth = input.webhookUrl !== undefined ? this.sealedWebhookAuth(input.webhookUrl, input.webhookAuth) : null;
    const apiId = newApiId();
    const apiSecret = newApiSecret();
    const secretHash = await hashSecret(apiSecret);
    await this.write({
      eventId: randomUUID(),
      apiId,
      occurredAtMs: this.clock(),
      name,
      secretHash,
      disabled: false,
      webhookUrl: input.webhookUrl ?? null,
      encryptedWebhookAuth,
      encryptedTwilioAuthToken: input.twilioAuthToken ? this.box.seal(input.twilioAuthToken) : null,
      type: 'AppCreated',
      data: { name, secretHash },
    });
    return { apiId, apiSecret };
  }

  async list(): Promise<AppSummary[]> {
    return (await this.directory()).list().map(summary);
  }

  async rotateSecret(apiId: string): Promise<{ apiId: string; apiSecret: string }> {
    const app = await this.existing(apiId);
    const apiSecret = newApiSecret();
    const secretHash = await hashSecret(apiSecret);
    await this.change(app, { secretHash }, { type: 'AppSecretRotated', data: { secretHash } });
    return { apiId, apiSecret };
  }

  async disable(apiId: string, reason: string | null = null): Promise<AppSummary> {
    const app = await this.existing(apiId);
    return this.change(app, { disabled: true }, { type: 'AppDisabled', data: { reason } });
  }

  /**
   * Sets the target and its whole delivery auth: options not given are cleared, so a token
   * meant for one host never follows the url to another.
   */
  async setWebhook(apiId: string, url: string, auth: WebhookSettingsInput = {}): Promise<AppSummary> {
    checkWebhookUrl(url);
    const encryptedAuth = this.sealedWebhookAuth(url, auth);
    const app = await this.existing(apiId);
    return this.change(
      app,
      { webhookUrl: url, encryptedWebhookAuth: encryptedAuth },
      { type: 'AppWebhookSet', data: { url, encryptedAuth } },
    );
  }

  /** Null when no auth option is given (plain delivery, no retries). */
  private sealedWebhookAuth(url: string, auth: WebhookSettingsInput | undefined): string | null {
    if (!auth || !hasWebhookSettings(auth)) return null;
    return sealWebhookSettings(this.box, checkWebhookSettings(url, auth));
  }

  async setTwilioAuthToken(apiId: string, token: string | null): Promise<AppSummary> {
    const app = await this.existing(apiId);
    const sealed = token ? this.box.seal(token) : null;
    return this.change(app, { encryptedTwilioAuthToken: sealed }, { type: 'AppTwilioAuthTokenSet', data: { enabled: sealed !== null } });
  }

  private async directory(): Promise<AppDirectory> {
    await this.log.ensureTopics([TOPICS.apps]);
    const directory = new AppDirectory();
    for (const record of await readToEnd(this.log, TOPICS.apps)) directory.apply(record.value);
    return directory;
  }

  private async existing(apiId: string): Promise<TenantApp> {
    const app = (await this.directory()).get(apiId);
    if (!app) throw new EarshotError('EARSHOT_APP_NOT_FOUND', `no app with api id ${apiId}`, { fields: { apiId } });
    return app;
  }

  private async change(app: TenantApp, fields: Partial<TenantApp>, change: AppChange): Promise<AppSummary> {
    const next = { ...app, ...fields };
    await this.write({
      eventId: randomUUID(),
      apiId: next.apiId,
      occurredAtMs: Math.max(this.clock(), app.updatedAtMs + 1),
      name: next.name,
      secretHash: next.secretHash,
      disabled: next.disabled,
      webhookUrl: next.webhookUrl,
      encryptedWebhookAuth: next.encryptedWebhookAuth,
      encryptedTwilioAuthToken: next.encryptedTwilioAuthToken,
      ...change,
    } as AppState);
    return summary({ ...next, updatedAtMs: this.clock() });
  }

  private async write(state: AppState): Promise<void> {
    await this.log.ensureTopics([TOPICS.apps, TOPICS.audit]);
    await this.log.produce(TOPICS.apps, [{ key: state.apiId, value: state }]);
    // SPEC §10: every app change is audited; the request id is the apps record's event id.
    await new AuditTrail(this.log, this.box.derive(AUDIT_HASH_KEY_LABEL), this.clock).record({
      appId: state.apiId,
      action: AUDIT_ACTIONS[state.type],
      requestId: state.eventId,
      callSid: null,
      clientAddress: null,
    });
  }
}

function checkWebhookUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`webhook url '${url}' is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw usage(`webhook url must be http(s), not ${parsed.protocol}`);
  if (parsed.username || parsed.password) throw usage('webhook url must not carry credentials; use the webhook auth options');
}

const usage = (message: string) => new EarshotError('EARSHOT_USAGE', message);
