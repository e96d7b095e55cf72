import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { selfSignedCertificate } from '../support/tls.js';
import { startTestApi } from './support/api-harness.js';

/** SPEC §3: HTTPS with TLS 1.2 or newer when a certificate is configured. */

/** Resolves with the negotiated protocol, or rejects with the handshake error. */
function handshake(port: number, ca: Buffer, options: { minVersion: 'TLSv1' | 'TLSv1.2'; maxVersion: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' }) {
  return new Promise<string>((resolve, reject) => {
    // SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's.
    const socket = connect({ host: '127.0.0.1', port, ca, ciphers: 'DEFAULT@SECLEVEL=0', ...options }, () => {
      const protocol = socket.getProtocol() ?? 'unknown';
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

t.test('with a certificate the API speaks HTTPS, TLS 1.2 minimum, and hands out wss:// stream URLs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { cert, key } = await selfSignedCertificate(dir);
  const ca = readFileSync(cert);
  const api = await startTestApi(t, { env: { EARSHOT_TLS_CERT_FILE: cert, EARSHOT_TLS_KEY_FILE: key }, ca });
  t.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  const res = await api.call<{ streamingUrl: string }>('GET', '/mg-autotranscribe/v1/twilio-media-stream-url');
  t.equal(res.status, 200, 'an HTTPS request with the private CA works');
  t.match(res.body.streamingUrl, /^wss:\/\/127\.0\.0\.1:8081\/twilio-media\//, 'wss when TLS is configured');
  t.equal((await api.call('GET', '/healthz', { as: null })).status, 200);

  const port = Number(new URL(api.url).port);
  await t.rejects(
    handshake(port, ca, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }),
    { code: /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/ },
    'a TLS 1.1 client is refused',
  );
  t.equal(await handshake(port, ca, { minVersion: 'TLSv1', maxVersion: 'TLSv1.2' }), 'TLSv1.2', 'the same client allowed TLS 1.2 gets it');
  t.equal(await handshake(port, ca, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }), 'TLSv1.3', 'TLS 1.3 is preferred');

  const plain = await fetch(api.url.replace('https:', 'http:')).then(
    (r) => r.status,
    () => 'refused',
  );
  t.equal(plain, 'refused', 'no plain HTTP on the TLS port');
});
