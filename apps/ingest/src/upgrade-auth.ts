import { validateRequest } from 'twilio/lib/webhooks/webhooks.js';
import type { Config } from '../../shared/src/config.js';
import { isEarshotError } from '../../shared/src/errors.js';
import type { Runtime } from '../../shared/src/runtime.js';

/**
 * Decides whether a WebSocket upgrade on `/twilio-media/<token>` may become a session
 * (SPEC §4). Runs before any session exists; a refusal is an HTTP status, never a socket.
 *
 * - 401: no token, a forged, malformed or expired one, or a missing/wrong X-Twilio-Signature.
 * - 403: the token is genuine but its app is unknown or disabled, or signatures are
 *   `required` and the app has no Twilio auth token to check them with.
 * - 500: the app's Twilio auth token cannot be decrypted (wrong EARSHOT_SECRETS_KEY).
 *
 * The signature is Twilio's HMAC-SHA1 over the full `wss://` URL with no parameters, checked
 * with twilio's own `validateRequest` (it also tries the URL with and without the port).
 */
export type RejectReason =
  | 'token_missing'
  | 'token_malformed'
  | 'token_unknown_key'
  | 'token_bad_signature'
  | 'token_expired'
  | 'token_wrong_audience'
  | 'app_unknown'
  | 'app_disabled'
  | 'signature_missing'
  | 'signature_invalid'
  | 'signature_not_configured'
  | 'credential_unreadable'
  | 'internal_error'
  | 'shutting_down'
  | 'not_found';

export type UpgradeDecision =
  | { readonly ok: true; readonly apiId: string; readonly tokenId: string }
  | { readonly ok: false; readonly status: 401 | 403 | 404 | 500 | 503; readonly reason: RejectReason; readonly message: string };

export interface UpgradeRequest {
  /** The path as received, e.g. `/twilio-media/eyJ...`. */
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly signature: string;
}

export const MEDIA_PATH_PREFIX = '/twilio-media/';

export async function authorizeUpgrade(
  runtime: Pick<Runtime, 'tokens' | 'apps' | 'credentials'>,
  config: Pick<Config, 'EARSHOT_TWILIO_SIGNATURE' | 'EARSHOT_INGEST_PUBLIC_URL'>,
  tls: boolean,
  request: UpgradeRequest,
): Promise<UpgradeDecision> {
  const token = request.path.startsWith(MEDIA_PATH_PREFIX) ? request.path.slice(MEDIA_PATH_PREFIX.length) : '';
  if (token === '') return refuse(401, 'token_missing', 'the stream URL has no token: /twilio-media/<token>');
  if (token.includes('/')) return refuse(404, 'not_found', 'unknown path');
  let verified: { apiId: string; tokenId: string };
  try {
    verified = await runtime.tokens.verify(token);
  } catch (error) {
    if (isEarshotError(error, 'EARSHOT_TOKEN_INVALID')) {
      const reason = `token_${String(error.fields.reason ?? 'malformed')}` as RejectReason;
      return refuse(401, reason, error.message);
    }
    throw error;
  }
  const app = runtime.apps.get(verified.apiId);
  if (!app) return refuse(403, 'app_unknown', 'the app of this stream token does not exist');
  if (app.disabled) return refuse(403, 'app_disabled', 'the app of this stream token is disabled');

  const policy = config.EARSHOT_TWILIO_SIGNATURE;
  if (policy !== 'off') {
    if (app.encryptedTwilioAuthToken === null) {
      if (policy === 'required') {
        return refuse(403, 'signature_not_configured', 'X-Twilio-Signature is required and this app has no Twilio auth token');
      }
    } else {
      if (request.signature === '') return refuse(401, 'signature_missing', 'X-Twilio-Signature is missing');
      let authToken: string;
      try {
        authToken = runtime.credentials.open(app.encryptedTwilioAuthToken);
      } catch {
        return refuse(500, 'credential_unreadable', "the app's Twilio auth token cannot be decrypted");
      }
      const url = signedUrl(config.EARSHOT_INGEST_PUBLIC_URL, tls, request);
      let valid = false;
      try {
        valid = validateRequest(authToken, request.signature, url, {});
      } catch {
        valid = false; // an unparsable URL (odd Host header) cannot match
      }
      if (!valid) return refuse(401, 'signature_invalid', 'X-Twilio-Signature does not match this URL');
    }
  }
  return { ok: true, apiId: verified.apiId, tokenId: verified.tokenId };
}

/** The URL Twilio signed: the public URL (or the Host header) plus the path as received. */
export function signedUrl(publicUrl: string | undefined, tls: boolean, request: UpgradeRequest): string {
  const base = publicUrl ?? `${tls ? 'wss' : 'ws'}://${request.host}`;
  return `${base}${request.path}${request.query ? `?${request.query}` : ''}`;
}

function refuse(status: 401 | 403 | 404 | 500 | 503, reason: RejectReason, message: string): Extract<UpgradeDecision, { ok: false }> {
  return { ok: false, status, reason, message };
}
