import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Certificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly fingerprint: string;
}

/**
 * A self-signed P-256 certificate for localhost and 127.0.0.1 with its own common name, made
 * in `dir` (asynchronously: a synchronous child would block an in-process server under test).
 */
export async function makeCertificate(dir: string, name: string): Promise<Certificate> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-days',
    '1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  const cert = await readFile(certFile);
  return { cert, key: await readFile(keyFile), fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Replaces a file the way deployment tools do: write aside, then rename over it. */
export async function replaceFile(path: string, content: Buffer): Promise<void> {
  await writeFile(`${path}.tmp`, content, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** The certificate a new TLS connection is served (`servername` sends SNI), trusting nothing. */
export function servedFingerprint(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? 'none';
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

/** Resolves with the negotiated protocol, or rejects with the handshake error. */
export function handshake(
  port: number,
  options: { minVersion: 'TLSv1' | 'TLSv1.2'; maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; servername?: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    // SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's.
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ciphers: 'DEFAULT@SECLEVEL=0', ...options }, () => {
      const protocol = socket.getProtocol() ?? 'unknown';
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}
