import { rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';

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
