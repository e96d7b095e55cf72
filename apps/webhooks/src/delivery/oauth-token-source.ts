import { type Dispatcher, request } from 'undici';
import type { WebhookSettings } from '../../../shared/src/tenants/webhook-settings.js';
import { classifyError, DeliveryFailure } from './attempt.js';

type OAuthSettings = NonNullable<WebhookSettings['oauth']>;

/**
 * OAuth2 client_credentials (RFC 6749 §4.4) for one tenant: the access token is cached until
 * shortly before it expires (10 % of its lifetime, at most 30 s early), and concurrent
 * deliveries share one fetch. The client authenticates with HTTP Basic
 * (client_secret_basic, the RFC's default). Tokens and the secret never appear in errors.
 */
export class OAuthTokenSource {
  private cached: { value: string; refreshAtMs: number } | null = null;
  private inFlight: Promise<string> | null = null;
  /** Token requests made (for tests and metrics). */
  fetches = 0;

  constructor(
    private readonly settings: OAuthSettings,
    private readonly dispatcher: Dispatcher,
    private readonly now: () => number = Date.now,
  ) {}

  async token(deadline: AbortSignal): Promise<string> {
    if (this.cached && this.now() < this.cached.refreshAtMs) return this.cached.value;
    this.inFlight ??= this.fetch(deadline).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** Forgets `value` if it is still the cached token (the target refused it). */
  invalidate(value: string): void {
    if (this.cached?.value === value) this.cached = null;
  }

  private async fetch(deadline: AbortSignal): Promise<string> {
    this.fetches++;
    const { tokenUrl, clientId, clientSecret, scope } = this.settings;
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) form.set('scope', scope);
    const startedAt = this.now();
    let status: number;
    let text: string;
    try {
      const res = await request(tokenUrl, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: deadline,
      });
      status = res.statusCode;
      text = await readCapped(res.body, 64 * 1024);
    } catch (error) {
      throw classifyError(error, deadline, `oauth2 token endpoint ${tokenUrl}`);
    }
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // reported below
    }
    if (status !== 200) {
      const reason =
        typeof body.error === 'string'
          ? ` (${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''})`
          : '';
      throw new DeliveryFailure('http_error', `oauth2 token endpoint ${tokenUrl} answered ${status}${reason}`.slice(0, 500), status >= 500);
    }
    if (typeof body.access_token !== 'string' || body.access_token === '')
      throw new DeliveryFailure('http_error', `oauth2 token endpoint ${tokenUrl} answered 200 without an access_token`, false);
    if (typeof body.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer')
      throw new DeliveryFailure(
        'http_error',
        `oauth2 token endpoint ${tokenUrl} gave a '${body.token_type}' token, not a bearer token`,
        false,
      );
    // expires_in is only RECOMMENDED: without it, use the token for 5 minutes.
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300) * 1000;
    this.cached = { value: body.access_token, refreshAtMs: startedAt + lifetimeMs - Math.min(30_000, lifetimeMs / 10) };
    return body.access_token;
  }
}

/** Reads at most `limit` bytes of a body as text and discards the rest. */
export async function readCapped(body: AsyncIterable<Buffer> & { destroy?: () => void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
