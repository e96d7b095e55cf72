import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { selfSignedCertificate } from '../support/tls.js';
import { audioOf, eventsOf, expectedAudio, range, startHarness, TwilioStream, waitForEnd } from './support.js';

t.test('with EARSHOT_TLS_* set, ingest serves wss:// that a client trusting the certificate can stream to', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { cert, key } = await selfSignedCertificate(dir);
  const ca = await readFile(cert);
  const h = await startHarness({ env: { EARSHOT_TLS_CERT_FILE: cert, EARSHOT_TLS_KEY_FILE: key } });
  t.teardown(() => h.close());
  t.match(h.server.url, /^wss:\/\/127\.0\.0\.1:\d+$/);

  await t.rejects(TwilioStream.open(h.mediaUrl()), /self-signed|self signed/, 'a client that does not trust the certificate is refused');

  const call = await TwilioStream.open(h.mediaUrl(), { ca });
  call.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 10)) call.frame('inbound', chunk);
  call.stop();
  t.match(await waitForEnd(h.events, call.streamSid), { reason: 'stopped', framesReceived: 10 });
  const audio = Buffer.concat(audioOf(eventsOf(h.events, call.callSid), 'inbound').map((b) => b.payload));
  t.ok(audio.equals(expectedAudio('inbound', range(1, 10))), 'audio intact over wss');
  call.close();

  const health = await new Promise<number>((resolve, reject) => {
    get(`${h.server.url.replace(/^wss/, 'https')}/healthz`, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
  t.equal(health, 200, '/healthz over https on the same port');
});

t.test('an unreadable certificate file stops ingest from starting, naming the setting', async (t) => {
  await t.rejects(startHarness({ env: { EARSHOT_TLS_CERT_FILE: '/nonexistent/c.pem', EARSHOT_TLS_KEY_FILE: '/nonexistent/k.pem' } }), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /EARSHOT_TLS_CERT_FILE.*cannot read \/nonexistent\/c\.pem/,
  });
});

t.test('a file that is not a certificate stops ingest from starting, naming the settings', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'earshot-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.pem');
  await writeFile(bad, 'not a certificate');
  await t.rejects(startHarness({ env: { EARSHOT_TLS_CERT_FILE: bad, EARSHOT_TLS_KEY_FILE: bad } }), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /not a PEM certificate and its private key/,
  });
});
