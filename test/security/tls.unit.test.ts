import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startTestApi } from '../api/support/api-harness.js';
import { audioOf, eventsOf, expectedAudio, metricValue, range, startHarness, TwilioStream, waitForEnd } from '../ingest/support.js';
import { type Certificate, makeCertificate } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { handshake, replaceFile, servedFingerprint } from './certificates.js';

/**
 * Issue 9, TLS: API and ingest accept TLS 1.2 and 1.3 only, and take a renewed certificate
 * without a restart: when its files change (polled, EARSHOT_TLS_WATCH_INTERVAL_MS) or on
 * SIGHUP. A half-written replacement (a certificate whose key is not there yet) is refused
 * and the old certificate stays until the pair is whole.
 */

interface Setup {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly a: Certificate;
  readonly b: Certificate;
  readonly c: Certificate;
}

async function setup(t: Test): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-tls-reload-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [a, b, c] = await Promise.all([makeCertificate(dir, 'first'), makeCertificate(dir, 'second'), makeCertificate(dir, 'third')]);
  const certFile = join(dir, 'live.crt');
  const keyFile = join(dir, 'live.key');
  await replaceFile(certFile, a.cert);
  await replaceFile(keyFile, a.key);
  return { dir, certFile, keyFile, a, b, c };
}

const env = (s: Setup, intervalMs: number) => ({
  EARSHOT_TLS_CERT_FILE: s.certFile,
  EARSHOT_TLS_KEY_FILE: s.keyFile,
  EARSHOT_TLS_WATCH_INTERVAL_MS: String(intervalMs),
});

/** Installs `next` as the live pair, key first (both renamed over the old files). */
async function install(s: Setup, next: Certificate): Promise<void> {
  await replaceFile(s.keyFile, next.key);
  await replaceFile(s.certFile, next.cert);
}

t.test('API: TLS 1.1 is refused, 1.2 and 1.3 are accepted', async (t) => {
  const s = await setup(t);
  const api = await startTestApi(t, { env: env(s, 0), ca: s.a.cert });
  const port = Number(new URL(api.url).port);
  await t.rejects(handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }), { code: /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/ });
  t.equal(await handshake(port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }), 'TLSv1.2');
  t.equal(await handshake(port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }), 'TLSv1.3');
});

t.test('API: replaced certificate files are served to the next connection, without a restart', async (t) => {
  const s = await setup(t);
  const api = await startTestApi(t, { env: env(s, 50), ca: s.a.cert });
  const port = Number(new URL(api.url).port);
  const reloads = (outcome: string) => metricValue(api.runtime, 'earshot_tls_certificate_reloads_total', { listener: 'api', outcome });
  t.equal(await servedFingerprint(port), s.a.fingerprint, 'the certificate of the start');

  await install(s, s.b);
  await waitFor('the API serves the second certificate', async () => (await servedFingerprint(port)) === s.b.fingerprint);
  t.equal(await reloads('applied'), 1);
  const res = await api.raw('GET', '/healthz', { ca: s.b.cert });
  t.equal(res.status, 200, 'a client trusting only the new certificate gets through');
  // Still TLS 1.2 minimum with the new context.
  await t.rejects(handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }), { code: /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/ });

  // Half a rotation: the third certificate with the second key. Refused; the second stays.
  await replaceFile(s.certFile, s.c.cert);
  await waitFor('the mismatched pair is refused', async () => (await reloads('refused')) === 1);
  t.equal(await servedFingerprint(port), s.b.fingerprint, 'the certificate in use stays while the pair is broken');
  await replaceFile(s.keyFile, s.c.key);
  await waitFor('the completed pair is served', async () => (await servedFingerprint(port)) === s.c.fingerprint);
  t.equal(await reloads('applied'), 2);
});

t.test('API: SIGHUP reloads at once when polling is off', async (t) => {
  const s = await setup(t);
  const api = await startTestApi(t, { env: env(s, 0), ca: s.a.cert });
  const port = Number(new URL(api.url).port);
  await install(s, s.b);
  t.equal(await servedFingerprint(port), s.a.fingerprint, 'no polling: the files alone change nothing');
  process.kill(process.pid, 'SIGHUP');
  await waitFor('SIGHUP applied the second certificate', async () => (await servedFingerprint(port)) === s.b.fingerprint);
  t.pass('reloaded, and this process is still running');
});

t.test('ingest: TLS 1.1 is refused, 1.2 and 1.3 are accepted, with and without SNI', async (t) => {
  const s = await setup(t);
  const h = await startHarness({ env: env(s, 0) });
  t.teardown(() => h.close());
  for (const servername of [undefined, 'localhost']) {
    await t.rejects(
      handshake(h.server.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', servername }),
      { code: /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|ECONNRESET/ },
      `TLS 1.1 refused (SNI ${servername ?? 'none'})`,
    );
    t.equal(await handshake(h.server.port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', servername }), 'TLSv1.2');
    t.equal(await handshake(h.server.port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', servername }), 'TLSv1.3');
  }
});

t.test('ingest: a renewed certificate is served to new connections by host name; open streams go on', async (t) => {
  const s = await setup(t);
  const h = await startHarness({ env: env(s, 50) });
  t.teardown(() => h.close());
  const port = h.server.port;
  const byName = (ca: Buffer) => TwilioStream.open(`wss://localhost:${port}/twilio-media/${h.token}`, { ca });
  t.equal(await servedFingerprint(port, 'localhost'), s.a.fingerprint);

  // A call streaming over the first certificate while it is replaced.
  const call = await byName(s.a.cert);
  call.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) call.frame('inbound', chunk);

  await install(s, s.b);
  await waitFor('ingest serves the second certificate', async () => (await servedFingerprint(port, 'localhost')) === s.b.fingerprint);
  t.equal(await metricValue(h.runtime, 'earshot_tls_certificate_reloads_total', { listener: 'ingest', outcome: 'applied' }), 1);

  for (const chunk of range(6, 10)) call.frame('inbound', chunk);
  call.stop();
  t.match(
    await waitForEnd(h.events, call.streamSid),
    { reason: 'stopped', framesReceived: 10, framesDropped: 0 },
    'the open stream went on',
  );
  const audio = Buffer.concat(audioOf(eventsOf(h.events, call.callSid), 'inbound').map((b) => b.payload));
  t.ok(audio.equals(expectedAudio('inbound', range(1, 10))), 'its audio is intact');
  call.close();

  // A new stream trusting only the new certificate: routes, upgrade and token checks all work.
  const next = await byName(s.b.cert);
  next.start({ tracks: ['inbound'] });
  next.frame('inbound', 1);
  next.stop();
  t.match(await waitForEnd(h.events, next.streamSid), { reason: 'stopped', framesReceived: 1 });
  next.close();
  await t.rejects(byName(s.a.cert), /self-signed|self signed|unable to verify/, 'a client trusting only the old certificate is refused');

  // Half a rotation is refused; then the whole pair is served.
  await replaceFile(s.certFile, s.c.cert);
  await waitFor(
    'the mismatched pair is refused',
    async () => (await metricValue(h.runtime, 'earshot_tls_certificate_reloads_total', { listener: 'ingest', outcome: 'refused' })) === 1,
  );
  t.equal(await servedFingerprint(port, 'localhost'), s.b.fingerprint, 'the second certificate stays');
  await replaceFile(s.keyFile, s.c.key);
  await waitFor('the completed pair is served', async () => (await servedFingerprint(port, 'localhost')) === s.c.fingerprint);

  // The documented limit: without SNI (a client connecting to an IP address) the certificate of the start.
  t.equal(await servedFingerprint(port), s.a.fingerprint, 'no SNI: the certificate read at start, until a restart');
});
