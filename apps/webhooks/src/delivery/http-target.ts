import { rootCertificates } from 'node:tls';
import { Agent, Pool } from 'undici';
import type { WebhookSettings } from '../../../shared/src/tenants/webhook-settings.js';
import { type AttemptResult, classifyError, DeliveryFailure } from './attempt.js';
import { OAuthTokenSource, readCapped } from './oauth-token-source.js';

export interface HttpTargetOptions {
  readonly url: string;
  readonly settings: WebhookSettings;
  readonly timeoutMs: number;
  readonly connections: number;
}

/**
 * One tenant's webhook endpoint: an undici Pool of keep-alive connections to its origin,
 * TLS as the tenant configured it (its own CAs only, TLS 1.2 or newer, hostname checked by
 * Node's default check, client certificate for mutual TLS), and its auth (a secret token in
 * a header or the query, or an OAuth2 bearer token refreshed once when the target says 401).
 */
export class HttpTarget {
  private readonly pool: Pool;
  private readonly tokenAgent: Agent | null;
  readonly oauth: OAuthTokenSource | null;
  private readonly path: string;
  private readonly baseHeaders: Record<string, string>;

  constructor(private readonly options: HttpTargetOptions) {
    const { settings } = options;
    const url = new URL(options.url);
    if (settings.token?.in === 'query') url.searchParams.set(settings.token.name, settings.token.value);
    this.path = `${url.pathname}${url.search}`;
    this.baseHeaders = { 'content-type': 'application/json', 'user-agent': 'earshot-webhooks' };
    if (settings.token?.in === 'header') this.baseHeaders[settings.token.name.toLowerCase()] = settings.token.value;
    this.pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: {
        timeout: options.timeoutMs,
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        ...(settings.caPem ? { ca: settings.caPem } : {}),
        ...(settings.clientCertPem && settings.clientKeyPem ? { cert: settings.clientCertPem, key: settings.clientKeyPem } : {}),
      },
    });
    // The token endpoint is usually a public identity provider: trust the public roots plus
    // the tenant's CAs (a private provider signed by them works too).
    this.tokenAgent = settings.oauth
      ? new Agent({
          connections: 2,
          connect: {
            timeout: options.timeoutMs,
            minVersion: 'TLSv1.2',
            rejectUnauthorized: true,
            ...(settings.caPem ? { ca: [...rootCertificates, settings.caPem] } : {}),
          },
        })
      : null;
    this.oauth = settings.oauth && this.tokenAgent ? new OAuthTokenSource(settings.oauth, this.tokenAgent) : null;
  }

  /** One delivery try within one deadline (token fetch included). Never throws. */
  async attempt(body: string, utteranceId: string): Promise<AttemptResult> {
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    try {
      let bearer = this.oauth ? await this.oauth.token(deadline) : null;
      let status = await this.post(body, utteranceId, bearer, deadline);
      if (status.code === 401 && this.oauth && bearer) {
        // The token may have been revoked or rotated early: one fresh token, one more try.
        this.oauth.invalidate(bearer);
        bearer = await this.oauth.token(deadline);
        status = await this.post(body, utteranceId, bearer, deadline);
      }
      if (status.code >= 200 && status.code < 300) return { outcome: 'delivered', httpStatus: status.code, error: null, retriable: false };
      return {
        outcome: 'http_error',
        httpStatus: status.code,
        error: `target answered ${status.code}${status.text ? `: ${status.text}` : ''}`,
        retriable: status.code >= 500 || status.code === 408 || status.code === 429,
      };
    } catch (error) {
      const failure = error instanceof DeliveryFailure ? error : classifyError(error, deadline, 'target');
      return { outcome: failure.outcome, httpStatus: null, error: failure.message, retriable: failure.retriable };
    }
  }

  private async post(
    body: string,
    utteranceId: string,
    bearer: string | null,
    deadline: AbortSignal,
  ): Promise<{ code: number; text: string }> {
    const headers: Record<string, string> = { ...this.baseHeaders, 'earshot-utterance-id': utteranceId };
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    const res = await this.pool.request({ path: this.path, method: 'POST', headers, body, signal: deadline });
    if (res.statusCode >= 200 && res.statusCode < 300) {
      await res.body.dump({ limit: 64 * 1024 });
      return { code: res.statusCode, text: '' };
    }
    // A short excerpt of an error body helps the tenant debug; it is their own answer.
    const text = (await readCapped(res.body, 200)).replace(/\s+/g, ' ').trim();
    return { code: res.statusCode, text };
  }

  /** Waits for requests in flight, then closes the connections. */
  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.tokenAgent?.close()]);
  }

  /** Closes now, failing requests in flight. */
  async destroy(): Promise<void> {
    await Promise.all([this.pool.destroy(), this.tokenAgent?.destroy()]);
  }
}
