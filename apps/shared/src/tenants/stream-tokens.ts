import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config.js';
import { EarshotError } from '../errors.js';
import type { CredentialBox } from './credential-box.js';

/**
 * Stream URL tokens (SPEC §3.1): a JWT (HS256) naming the tenant (`sub`), carried in the
 * WebSocket path because Twilio refuses query strings. The header's `kid` picks the key, so
 * keys rotate without downtime: list the new key after the old one, then first, then drop
 * the old one once its last tokens (TTL) have expired. Checked only when a socket opens.
 */
const AUDIENCE = 'earshot-ingest';

export type TokenRejection = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'wrong_audience';

export interface VerifiedStreamToken {
  readonly apiId: string;
  readonly tokenId: string;
  readonly expiresAtMs: number;
}

export class StreamTokens {
  private readonly signingKid: string;
  private readonly keys: Map<string, Uint8Array>;

  /** `keys`: kid → secret; the first entry signs, all verify. */
  constructor(
    keys: readonly (readonly [string, Uint8Array])[],
    private readonly ttlSeconds: number,
  ) {
    const first = keys[0];
    if (!first) throw new EarshotError('EARSHOT_CONFIG_INVALID', 'at least one stream token key is needed');
    this.signingKid = first[0];
    this.keys = new Map(keys);
  }

  async issue(apiId: string, nowMs: number = Date.now()): Promise<{ token: string; expiresAtMs: number }> {
    const issuedAt = Math.floor(nowMs / 1000);
    const expiresAt = issuedAt + this.ttlSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: this.signingKid, typ: 'JWT' })
      .setSubject(apiId)
      .setAudience(AUDIENCE)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .setJti(randomUUID())
      .sign(this.keys.get(this.signingKid) as Uint8Array);
    return { token, expiresAtMs: expiresAt * 1000 };
  }

  /** Resolves with the tenant, or throws EARSHOT_TOKEN_INVALID with `fields.reason`. */
  async verify(token: string, nowMs: number = Date.now()): Promise<VerifiedStreamToken> {
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : this.keys.get(header.kid);
          if (!key) throw reject('unknown_key', 'stream token signed with an unknown key');
          return key;
        },
        { algorithms: ['HS256'], audience: AUDIENCE, currentDate: new Date(nowMs), requiredClaims: ['sub', 'exp', 'jti'] },
      );
      return { apiId: payload.sub as string, tokenId: payload.jti as string, expiresAtMs: (payload.exp as number) * 1000 };
    } catch (error) {
      if (error instanceof EarshotError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw reject('expired', 'stream token expired');
      if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw reject('bad_signature', 'stream token signature is invalid');
      if (error instanceof joseErrors.JWTClaimValidationFailed && error.claim === 'aud')
        throw reject('wrong_audience', 'stream token is not for ingest');
      throw reject('malformed', 'stream token is malformed');
    }
  }
}

function reject(reason: TokenRejection, message: string): EarshotError {
  return new EarshotError('EARSHOT_TOKEN_INVALID', message, { fields: { reason } });
}

/**
 * Keys from EARSHOT_STREAM_TOKEN_KEYS; without it (embedded mode only) one key derived from
 * the secrets key, so every process sharing the data dir agrees on it.
 */
export function loadStreamTokens(config: Config, box: CredentialBox): StreamTokens {
  if (config.EARSHOT_STREAM_TOKEN_KEYS) {
    const keys = config.EARSHOT_STREAM_TOKEN_KEYS.split(',').map((pair) => {
      const [kid, key] = pair.split(':') as [string, string];
      return [kid, new Uint8Array(Buffer.from(key, 'base64'))] as const;
    });
    return new StreamTokens(keys, config.EARSHOT_STREAM_TOKEN_TTL_S);
  }
  if (config.EARSHOT_MODE !== 'embedded') {
    throw new EarshotError(
      'EARSHOT_CONFIG_INVALID',
      'EARSHOT_STREAM_TOKEN_KEYS is required in distributed mode (e.g. k1:$(openssl rand -base64 32))',
    );
  }
  return new StreamTokens([['embedded', box.derive('earshot stream tokens')]], config.EARSHOT_STREAM_TOKEN_TTL_S);
}
