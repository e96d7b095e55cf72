import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AppDirectory, TenantApp } from '../../../../shared/src/tenants/app-directory.js';

/**
 * The live page's login: the tenant types its api id and secret once, the API checks them like
 * any request (AppDirectory.authenticate, constant time) and answers with a short-lived signed
 * cookie (HttpOnly, SameSite=Strict), so no credential or token ever sits in the page or its
 * script. The cookie value is `<payload>.<mac>`, both base64url: payload = JSON
 * `{a: apiId, e: expiry ms, f: fingerprint of the app's secret hash}`, mac = HMAC-SHA256 under
 * a key derived from EARSHOT_SECRETS_KEY, so every API node of a deployment accepts it.
 * Rotating the secret or disabling the app ends every session at once (the fingerprint no longer
 * matches, the app is refused).
 */
export const LIVE_COOKIE = 'earshot_live';
export const LIVE_COOKIE_PATH = '/live';
const MAX_COOKIE_LENGTH = 1024;

export type SessionRejection = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'app_unknown' | 'app_disabled' | 'secret_rotated';

export type SessionCheck =
  | { readonly ok: true; readonly app: TenantApp; readonly expiresAtMs: number }
  | { readonly ok: false; readonly reason: SessionRejection };

export class LiveSessions {
  constructor(
    private readonly key: Uint8Array,
    private readonly apps: AppDirectory,
    readonly ttlS: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The app if the credentials are its current ones and it is enabled (constant-time check of the directory). */
  authenticate(apiId: string, secret: string): Promise<TenantApp | null> {
    return this.apps.authenticate(apiId, secret);
  }

  /** A session value for an app whose credentials were just checked, and when it expires. */
  issue(app: TenantApp): { value: string; expiresAtMs: number } {
    const expiresAtMs = this.clock() + this.ttlS * 1000;
    const payload = Buffer.from(JSON.stringify({ a: app.apiId, e: expiresAtMs, f: this.fingerprint(app.secretHash) })).toString(
      'base64url',
    );
    return { value: `${payload}.${this.mac(payload)}`, expiresAtMs };
  }

  /** The app a cookie value stands for, checked against the app's current state. */
  check(value: string | undefined): SessionCheck {
    if (!value) return { ok: false, reason: 'missing' };
    if (value.length > MAX_COOKIE_LENGTH) return { ok: false, reason: 'malformed' };
    const [payload, mac, extra] = value.split('.');
    if (!payload || !mac || extra !== undefined) return { ok: false, reason: 'malformed' };
    const expected = Buffer.from(this.mac(payload), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
    let claims: { a?: unknown; e?: unknown; f?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (typeof claims.a !== 'string' || typeof claims.e !== 'number' || typeof claims.f !== 'string')
      return { ok: false, reason: 'malformed' };
    if (claims.e <= this.clock()) return { ok: false, reason: 'expired' };
    const app = this.apps.get(claims.a);
    if (!app) return { ok: false, reason: 'app_unknown' };
    if (app.disabled) return { ok: false, reason: 'app_disabled' };
    const fingerprint = Buffer.from(this.fingerprint(app.secretHash));
    const claimed = Buffer.from(claims.f);
    if (claimed.length !== fingerprint.length || !timingSafeEqual(claimed, fingerprint)) return { ok: false, reason: 'secret_rotated' };
    return { ok: true, app, expiresAtMs: claims.e };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`live-session:${payload}`).digest('base64url');
  }

  /** Changes when the secret is rotated; says nothing about the secret (an HMAC of its salted hash). */
  private fingerprint(secretHash: string): string {
    return createHmac('sha256', this.key).update(`secret-hash:${secretHash}`).digest('base64url').slice(0, 22);
  }
}

/** Reads one cookie from a Cookie header (no dependency: one name, no decoding needed for base64url). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no other site sends it), Secure over HTTPS. */
export function sessionCookie(value: string, maxAgeS: number, secure: boolean): string {
  return [
    `${LIVE_COOKIE}=${value}`,
    `Path=${LIVE_COOKIE_PATH}`,
    `Max-Age=${maxAgeS}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
