import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Runs openssl. Asynchronous on purpose: a synchronous child process would block an in-process
 * server under test.
 */
export async function openssl(args: readonly string[]): Promise<void> {
  await run('openssl', args);
}

/** openssl arguments for a new, unencrypted P-256 key. */
export const NEW_P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'] as const;

/** A self-signed P-256 key and certificate valid one day, with `extensions` (`-addext` values). */
export async function selfSign(keyFile: string, certFile: string, subject: string, extensions: readonly string[]): Promise<void> {
  await openssl([
    'req',
    '-x509',
    ...NEW_P256_KEY,
    '-subj',
    subject,
    ...extensions.flatMap((extension) => ['-addext', extension]),
    '-days',
    '1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
}

export interface Certificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly fingerprint: string;
  /** Where they were written (`<name>.crt`, `<name>.key` in the directory given). */
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A self-signed P-256 certificate for localhost and 127.0.0.1 with the common name `name`,
 * valid one day, made in `dir` with openssl.
 */
export async function makeCertificate(dir: string, name = 'localhost'): Promise<Certificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await selfSign(keyFile, certFile, `/CN=${name}`, ['subjectAltName=DNS:localhost,IP:127.0.0.1']);
  const cert = await readFile(certFile);
  return { cert, key: await readFile(keyFile), fingerprint: new X509Certificate(cert).fingerprint256, certFile, keyFile };
}

/** The file paths of a self-signed certificate for 127.0.0.1 / localhost made in `dir` (what EARSHOT_TLS_* take). */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const made = await makeCertificate(dir);
  return { cert: made.certFile, key: made.keyFile };
}
