import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { EarshotError } from '../errors.js';

/**
 * Encrypts credentials a tenant gives us (webhook auth, Twilio auth token) before they are
 * written to the event log: AES-256-GCM, `v1:<iv>:<tag>:<ciphertext>` in base64url.
 * The key comes from EARSHOT_SECRETS_KEY (32 bytes, base64). Embedded mode without one
 * creates `<data dir>/secrets.key` (mode 0600) on first use, so `npm start` needs no setup.
 */
export class CredentialBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new EarshotError('EARSHOT_CONFIG_INVALID', 'EARSHOT_SECRETS_KEY must be 32 bytes, base64-encoded');
  }

  /** A key for another purpose, derived from this one (HKDF), so one secret configures both. */
  derive(label: string): Uint8Array {
    return new Uint8Array(hkdfSync('sha256', this.key, Buffer.alloc(0), label, 32));
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(':');
  }

  open(sealed: string): string {
    const [version, iv, tag, body] = sealed.split(':');
    if (version !== 'v1' || !iv || !tag || body === undefined) {
      throw new EarshotError('EARSHOT_CONFIG_INVALID', 'sealed credential has an unknown format');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new EarshotError(
        'EARSHOT_CONFIG_INVALID',
        'cannot decrypt a stored credential: EARSHOT_SECRETS_KEY is not the key it was sealed with',
        {
          cause: error,
        },
      );
    }
  }
}

export function loadCredentialBox(config: Config): CredentialBox {
  if (config.EARSHOT_SECRETS_KEY) return new CredentialBox(Buffer.from(config.EARSHOT_SECRETS_KEY, 'base64'));
  if (config.EARSHOT_MODE !== 'embedded') {
    throw new EarshotError(
      'EARSHOT_CONFIG_INVALID',
      'EARSHOT_SECRETS_KEY is required in distributed mode (32 random bytes, base64: openssl rand -base64 32)',
    );
  }
  const file = join(resolve(config.EARSHOT_DATA_DIR), 'secrets.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error; // another process won the race
    }
  }
  return new CredentialBox(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'));
}
