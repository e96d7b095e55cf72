import t from 'tap';
import { startTestApi } from './support/api-harness.js';

/** SPEC §3.1: the media stream URL and its tenant-bound token. */
const STREAM_URL = '/mg-autotranscribe/v1/twilio-media-stream-url';

t.test('the stream URL points at ingest and its token verifies and names the tenant', async (t) => {
  const api = await startTestApi(t, { env: { EARSHOT_INGEST_PORT: '9443' } });
  const res = await api.call<{ streamingUrl: string }>('GET', STREAM_URL);
  t.equal(res.status, 200);
  const match = /^ws:\/\/127\.0\.0\.1:9443\/twilio-media\/([^/?#]+)$/.exec(res.body.streamingUrl);
  t.ok(match, `ws://<ingest host>:<port>/twilio-media/<token> without TLS (got ${res.body.streamingUrl})`);
  const token = match?.[1] ?? '';
  const verified = await api.runtime.tokens.verify(token);
  t.equal(verified.apiId, api.tenant.apiId, 'the token names the calling app');
  const ttl = verified.expiresAtMs - Date.now();
  t.ok(ttl > 290_000 && ttl <= 300_000, `expires in the default 5 minutes (${ttl} ms)`);

  const second = await api.call<{ streamingUrl: string }>('GET', STREAM_URL);
  t.not(second.body.streamingUrl, res.body.streamingUrl, 'a fresh token on every request');

  const other = await api.newTenant();
  const theirs = await api.call<{ streamingUrl: string }>('GET', STREAM_URL, { as: other });
  const theirToken = theirs.body.streamingUrl.split('/').pop() ?? '';
  t.equal((await api.runtime.tokens.verify(theirToken)).apiId, other.apiId, 'another app gets a token naming itself');
});

t.test('EARSHOT_INGEST_PUBLIC_URL is the address Twilio is given', async (t) => {
  const api = await startTestApi(t, { env: { EARSHOT_INGEST_PUBLIC_URL: 'wss://media.example.com', EARSHOT_STREAM_TOKEN_TTL_S: '60' } });
  const res = await api.call<{ streamingUrl: string }>('GET', STREAM_URL);
  t.match(res.body.streamingUrl, /^wss:\/\/media\.example\.com\/twilio-media\/[A-Za-z0-9._-]+$/);
  const verified = await api.runtime.tokens.verify(res.body.streamingUrl.split('/').pop() ?? '');
  t.ok(verified.expiresAtMs - Date.now() <= 60_000, 'the configured TTL applies');
});
