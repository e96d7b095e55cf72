import { createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { EarshotError } from '../errors.js';
import type { CredentialBox } from './credential-box.js';

/**
 * A tenant's webhook delivery settings (SPEC §8): how the target is authenticated and whether
 * failed deliveries are retried. Stored as one JSON document sealed with the CredentialBox in
 * `AppState.encryptedWebhookAuth`, so keys, tokens and client secrets are never at rest in
 * clear. The retry count lives there too (one document, one place to read it), although it is
 * not secret. Built by `earshot apps create|set-webhook`, read by the webhooks app.
 */
export interface WebhookSettings {
  /** PEM: the only CAs trusted for the target (replaces the public roots for it). */
  readonly caPem: string | null;
  /** PEM pair for mutual TLS with the target. */
  readonly clientCertPem: string | null;
  readonly clientKeyPem: string | null;
  /** A secret token sent as a header or a URL query parameter. */
  readonly token: { readonly name: string; readonly value: string; readonly in: 'header' | 'query' } | null;
  /** OAuth2 client_credentials: a bearer token from the tenant's token URL. */
  readonly oauth: {
    readonly tokenUrl: string;
    readonly clientId: string;
    readonly clientSecret: string;
    readonly scope: string | null;
  } | null;
  /** Extra attempts after a timeout, connection error, 5xx or 429 (0 = none, the default). */
  readonly retries: number;
}

export const NO_WEBHOOK_SETTINGS: WebhookSettings = {
  caPem: null,
  clientCertPem: null,
  clientKeyPem: null,
  token: null,
  oauth: null,
  retries: 0,
};

export const MAX_WEBHOOK_RETRIES = 5;

const stored = z.object({
  v: z.literal(1),
  caPem: z.string().nullable(),
  clientCertPem: z.string().nullable(),
  clientKeyPem: z.string().nullable(),
  token: z.object({ name: z.string(), value: z.string(), in: z.enum(['header', 'query']) }).nullable(),
  oauth: z.object({ tokenUrl: z.string(), clientId: z.string(), clientSecret: z.string(), scope: z.string().nullable() }).nullable(),
  retries: z.number().int().min(0).max(MAX_WEBHOOK_RETRIES),
});

export function sealWebhookSettings(box: CredentialBox, settings: WebhookSettings): string {
  return box.seal(JSON.stringify({ v: 1, ...settings }));
}

/** The stored settings; throws EARSHOT_CONFIG_INVALID (never echoing the content) when they cannot be read. */
export function openWebhookSettings(box: CredentialBox, sealed: string | null): WebhookSettings {
  if (sealed === null) return NO_WEBHOOK_SETTINGS;
  let parsed: unknown;
  try {
    parsed = JSON.parse(box.open(sealed));
  } catch (error) {
    if (error instanceof EarshotError) throw error;
    throw new EarshotError('EARSHOT_CONFIG_INVALID', 'stored webhook settings are not JSON');
  }
  const result = stored.safeParse(parsed);
  if (!result.success) throw new EarshotError('EARSHOT_CONFIG_INVALID', 'stored webhook settings have an unknown shape');
  const { v: _v, ...settings } = result.data;
  return settings;
}

// Headers the dispatcher sets itself or that would break the request.
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'earshot-utterance-id']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const QUERY_NAME = /^[A-Za-z0-9._~-]{1,100}$/;

/** What `earshot apps` hands over, file contents already read. Every field optional. */
export interface WebhookSettingsInput {
  readonly caPem?: string;
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  readonly tokenName?: string;
  readonly tokenValue?: string;
  readonly tokenIn?: string;
  readonly oauthTokenUrl?: string;
  readonly oauthClientId?: string;
  readonly oauthClientSecret?: string;
  readonly oauthScope?: string;
  readonly retries?: string | number;
}

export const hasWebhookSettings = (input: WebhookSettingsInput): boolean => Object.values(input).some((v) => v !== undefined);

/**
 * Checks a combination of options against the target URL and returns the settings, or throws
 * EARSHOT_USAGE naming the option at fault (in the CLI's option names).
 */
export function checkWebhookSettings(url: string, input: WebhookSettingsInput): WebhookSettings {
  const target = new URL(url);
  const https = target.protocol === 'https:';
  const loopback = isLoopback(target.hostname);

  if (input.caPem !== undefined) {
    if (!https) throw usage('--ca-file needs an https:// webhook url');
    checkCertificates(input.caPem, '--ca-file');
  }
  if ((input.clientCertPem === undefined) !== (input.clientKeyPem === undefined))
    throw usage('--client-cert-file and --client-key-file go together: give both or neither');
  if (input.clientCertPem !== undefined && input.clientKeyPem !== undefined) {
    if (!https) throw usage('--client-cert-file needs an https:// webhook url');
    const [cert] = checkCertificates(input.clientCertPem, '--client-cert-file');
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey(input.clientKeyPem);
    } catch {
      throw usage('--client-key-file does not hold a PEM private key');
    }
    if (!cert?.checkPrivateKey(key)) throw usage('--client-key-file is not the key of the certificate in --client-cert-file');
  }

  const tokenGiven = input.tokenName !== undefined || input.tokenValue !== undefined || input.tokenIn !== undefined;
  const oauthGiven =
    input.oauthTokenUrl !== undefined ||
    input.oauthClientId !== undefined ||
    input.oauthClientSecret !== undefined ||
    input.oauthScope !== undefined;
  if (tokenGiven && oauthGiven) throw usage('choose one of a secret token (--token-*) or OAuth2 (--oauth-*), not both');

  let token: WebhookSettings['token'] = null;
  if (tokenGiven) {
    if (input.tokenName === undefined) throw usage('--token-file needs --token-name (the header or query parameter name)');
    if (input.tokenValue === undefined) throw usage('--token-name needs --token-file (a file holding the token)');
    const where = input.tokenIn ?? 'header';
    if (where !== 'header' && where !== 'query') throw usage(`--token-in must be header or query, not '${where}'`);
    if (where === 'header' && (!HEADER_NAME.test(input.tokenName) || RESERVED_HEADERS.has(input.tokenName.toLowerCase())))
      throw usage(
        `--token-name '${input.tokenName}' is not a header name Earshot can set (letters, digits, -; not Host, Content-Type, ...)`,
      );
    if (where === 'query' && !QUERY_NAME.test(input.tokenName))
      throw usage(`--token-name '${input.tokenName}' is not a plain query parameter name (letters, digits, . _ ~ -)`);
    if (where === 'query' && target.searchParams.has(input.tokenName))
      throw usage(`the webhook url already has a query parameter '${input.tokenName}'`);
    if (/[\r\n]/.test(input.tokenValue)) throw usage('--token-file must hold one line');
    if (!https && !loopback) throw usage('a secret token would travel in clear: use an https:// webhook url');
    token = { name: input.tokenName, value: input.tokenValue, in: where };
  }

  let oauth: WebhookSettings['oauth'] = null;
  if (oauthGiven) {
    const missing = (
      [
        ['--oauth-token-url', input.oauthTokenUrl],
        ['--oauth-client-id', input.oauthClientId],
        ['--oauth-client-secret-file', input.oauthClientSecret],
      ] as const
    ).filter(([, v]) => v === undefined || v === '');
    if (missing.length > 0) throw usage(`OAuth2 client credentials also need ${missing.map(([n]) => n).join(', ')}`);
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(input.oauthTokenUrl as string);
    } catch {
      throw usage(`--oauth-token-url '${input.oauthTokenUrl}' is not a URL`);
    }
    if (tokenUrl.protocol !== 'https:' && !(tokenUrl.protocol === 'http:' && isLoopback(tokenUrl.hostname)))
      throw usage('--oauth-token-url must be https:// (plain http only on loopback)');
    if (!https && !loopback) throw usage('an OAuth2 bearer token would travel in clear: use an https:// webhook url');
    oauth = {
      tokenUrl: tokenUrl.toString(),
      clientId: input.oauthClientId as string,
      clientSecret: input.oauthClientSecret as string,
      scope: input.oauthScope ?? null,
    };
  }

  let retries = 0;
  if (input.retries !== undefined) {
    retries = Number(input.retries);
    if (!Number.isInteger(retries) || retries < 0 || retries > MAX_WEBHOOK_RETRIES)
      throw usage(`--retries must be a whole number from 0 to ${MAX_WEBHOOK_RETRIES}, not '${input.retries}'`);
  }

  return {
    caPem: input.caPem ?? null,
    clientCertPem: input.clientCertPem ?? null,
    clientKeyPem: input.clientKeyPem ?? null,
    token,
    oauth,
    retries,
  };
}

function checkCertificates(pem: string, option: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw usage(`${option} holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw usage(`${option}: certificate ${i + 1} cannot be parsed`);
    }
  });
}

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

const usage = (message: string) => new EarshotError('EARSHOT_USAGE', message);
