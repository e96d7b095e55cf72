import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import {
  FEED_DATE_PATTERN,
  FEED_FILE_NAME_PATTERN,
  FEED_FORMATS,
  FEED_INTERVAL_PATTERN,
  FEED_NAME_PATTERN,
  FEED_VERSION_PATTERN,
} from '../../../../shared/src/ports/feed-storage.port.js';

/**
 * Signed, expiring download links for feed files (what `getfeedfile` hands out, like a
 * presigned object-store URL): `<payload>.<mac>`, both base64url, where the payload names the
 * tenant, the file and the expiry, and the mac is HMAC-SHA256 over the payload with a key
 * derived from EARSHOT_SECRETS_KEY (so every api node of a deployment verifies every link).
 * The link is the credential: whoever holds it may fetch that one file until it expires.
 * Verification compares macs in constant time before the payload is even parsed.
 */
export const DownloadLinkPayload = z.object({
  v: z.literal(1),
  tenantId: z.string().min(1).max(256),
  feed: z.string().regex(FEED_NAME_PATTERN),
  version: z.string().regex(FEED_VERSION_PATTERN),
  format: z.enum(FEED_FORMATS),
  date: z.string().regex(FEED_DATE_PATTERN),
  interval: z.string().regex(FEED_INTERVAL_PATTERN),
  fileName: z.string().regex(FEED_FILE_NAME_PATTERN),
  /** Expiry, epoch ms. */
  exp: z.number().int(),
});
export type DownloadLinkPayload = z.infer<typeof DownloadLinkPayload>;

export type LinkCheck =
  | { readonly ok: true; readonly payload: DownloadLinkPayload }
  | { readonly ok: false; readonly reason: 'malformed' | 'signature' | 'expired'; readonly expiredAtMs?: number };

const MAX_TOKEN_LENGTH = 2048;
const TOKEN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

export class DownloadLinks {
  constructor(
    private readonly key: Uint8Array,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  sign(file: Omit<DownloadLinkPayload, 'v' | 'exp'>): { token: string; expiresAtMs: number } {
    const expiresAtMs = this.clock() + this.ttlMs;
    const payload: DownloadLinkPayload = { v: 1, ...file, exp: expiresAtMs };
    const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    return { token: `${body}.${this.mac(body).toString('base64url')}`, expiresAtMs };
  }

  verify(token: string): LinkCheck {
    if (token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token)) return { ok: false, reason: 'malformed' };
    const [body, mac] = token.split('.') as [string, string];
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' }; // signed by us yet unreadable: only if the key leaked
    }
    const payload = DownloadLinkPayload.safeParse(parsed);
    if (!payload.success) return { ok: false, reason: 'malformed' };
    if (payload.data.exp <= this.clock()) return { ok: false, reason: 'expired', expiredAtMs: payload.data.exp };
    return { ok: true, payload: payload.data };
  }

  private mac(body: string): Buffer {
    return createHmac('sha256', this.key).update('earshot.feed-link.v1.').update(body).digest();
  }
}
