import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CredentialBox } from '../../apps/shared/src/tenants/credential-box.js';
import {
  checkWebhookSettings,
  openWebhookSettings,
  sealWebhookSettings,
  type WebhookSettingsInput,
} from '../../apps/shared/src/tenants/webhook-settings.js';
import { createTestCa } from './support/pki.js';

// The option combinations of `earshot apps create|set-webhook`: each bad one fails with a
// message naming the option; good ones round-trip through the encrypted store.
const dir = mkdtempSync(join(tmpdir(), 'earshot-webhook-settings-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const ca = await createTestCa(dir, 'unit');
const client = await ca.issue('client', 'clientAuth');
const other = await ca.issue('other-client', 'clientAuth');
const HTTPS = 'https://hooks.example.com/asapp';

const refusals: [string, string, WebhookSettingsInput, RegExp][] = [
  ['cert without key', HTTPS, { clientCertPem: client.cert }, /--client-cert-file and --client-key-file go together/],
  ['key without cert', HTTPS, { clientKeyPem: client.key }, /go together/],
  ['key of another certificate', HTTPS, { clientCertPem: client.cert, clientKeyPem: other.key }, /is not the key of the certificate/],
  ['a CA file that is not PEM', HTTPS, { caPem: 'hello' }, /--ca-file holds no PEM certificate/],
  [
    'a broken certificate',
    HTTPS,
    { caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----' },
    /--ca-file: certificate 1 cannot be parsed/,
  ],
  ['a CA for an http url', 'http://hooks.example.com/x', { caPem: ca.cert }, /--ca-file needs an https:\/\/ webhook url/],
  ['token without name', HTTPS, { tokenValue: 'x' }, /--token-file needs --token-name/],
  ['token name without token', HTTPS, { tokenName: 'X-Key' }, /--token-name needs --token-file/],
  [
    'token in a bad place',
    HTTPS,
    { tokenName: 'X-Key', tokenValue: 'x', tokenIn: 'body' },
    /--token-in must be header or query, not 'body'/,
  ],
  ['a reserved header', HTTPS, { tokenName: 'Content-Type', tokenValue: 'x' }, /not a header name Earshot can set/],
  ['a header name with a space', HTTPS, { tokenName: 'X Key', tokenValue: 'x' }, /not a header name/],
  ['a query name with &', HTTPS, { tokenName: 'a&b', tokenValue: 'x', tokenIn: 'query' }, /not a plain query parameter name/],
  [
    'a query name the url already has',
    `${HTTPS}?key=1`,
    { tokenName: 'key', tokenValue: 'x', tokenIn: 'query' },
    /already has a query parameter 'key'/,
  ],
  [
    'a token over plain http to another host',
    'http://hooks.example.com/x',
    { tokenName: 'X-Key', tokenValue: 'x' },
    /would travel in clear/,
  ],
  ['token and OAuth2 together', HTTPS, { tokenName: 'X-Key', tokenValue: 'x', oauthTokenUrl: 'https://idp.example.com/token' }, /not both/],
  [
    'OAuth2 without client id and secret',
    HTTPS,
    { oauthTokenUrl: 'https://idp.example.com/token' },
    /also need --oauth-client-id, --oauth-client-secret-file/,
  ],
  ['OAuth2 without token url', HTTPS, { oauthClientId: 'c', oauthClientSecret: 's' }, /also need --oauth-token-url$/],
  [
    'OAuth2 token url over http',
    HTTPS,
    { oauthTokenUrl: 'http://idp.example.com/token', oauthClientId: 'c', oauthClientSecret: 's' },
    /must be https:\/\//,
  ],
  ['OAuth2 token url not a url', HTTPS, { oauthTokenUrl: 'idp', oauthClientId: 'c', oauthClientSecret: 's' }, /'idp' is not a URL/],
  ['retries out of range', HTTPS, { retries: '9' }, /--retries must be a whole number from 0 to 5, not '9'/],
  ['retries not a number', HTTPS, { retries: 'many' }, /--retries must be a whole number/],
  ['a token with a newline', HTTPS, { tokenName: 'X-Key', tokenValue: 'a\nb' }, /one line/],
];

for (const [what, url, input, message] of refusals) {
  t.test(`refused: ${what}`, async (t) => {
    t.throws(() => checkWebhookSettings(url, input), { code: 'EARSHOT_USAGE', message });
  });
}

t.test('accepted combinations round-trip through the sealed store, and the seal hides them', async (t) => {
  const box = new CredentialBox(randomBytes(32));
  const settings = checkWebhookSettings(HTTPS, {
    caPem: ca.cert,
    clientCertPem: client.cert,
    clientKeyPem: client.key,
    oauthTokenUrl: 'https://idp.example.com/oauth/token',
    oauthClientId: 'tenant-1',
    oauthClientSecret: 'very-secret-value',
    oauthScope: 'transcripts:write',
    retries: '2',
  });
  const sealed = sealWebhookSettings(box, settings);
  t.notMatch(sealed, /very-secret-value|PRIVATE KEY|tenant-1/);
  t.same(openWebhookSettings(box, sealed), settings);
  t.equal(settings.retries, 2);
  t.same(openWebhookSettings(box, null).retries, 0, 'no settings: no retries');
  t.throws(() => openWebhookSettings(new CredentialBox(randomBytes(32)), sealed), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /not the key/,
  });
  const loopback = checkWebhookSettings('http://127.0.0.1:9000/hook', { tokenName: 'key', tokenValue: 'dev', tokenIn: 'query' });
  t.same(loopback.token, { name: 'key', value: 'dev', in: 'query' }, 'plain http is fine on loopback');
});
