import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createEmbeddedEventLog } from '../../apps/shared/src/adapters/embedded-event-log.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { loadCredentialBox } from '../../apps/shared/src/tenants/credential-box.js';
import { openWebhookSettings } from '../../apps/shared/src/tenants/webhook-settings.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { runEarshot } from '../support/cli.js';
import { createTestCa } from './support/pki.js';

const earshot = (args: string[], env: Record<string, string>) => runEarshot(['apps', ...args], env);

t.test('earshot apps create / set-webhook with auth options (embedded mode)', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-webhook-cli-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { EARSHOT_DATA_DIR: dataDir };
  const ca = await createTestCa(dataDir, 'cli');
  const client = await ca.issue('client', 'clientAuth');
  const file = (name: string, text: string) => {
    const path = join(dataDir, name);
    writeFileSync(path, text);
    return path;
  };
  const created = await earshot(
    [
      'create',
      '--name',
      'acme',
      '--webhook-url',
      'https://hooks.example.com/t',
      '--ca-file',
      file('ca.pem', ca.cert),
      '--client-cert-file',
      file('c.pem', client.cert),
      '--client-key-file',
      file('c.key', client.key),
      '--oauth-token-url',
      'https://idp.example.com/token',
      '--oauth-client-id',
      'acme',
      '--oauth-client-secret-file',
      file('s.txt', 'cli-secret-xyz\n'),
      '--retries',
      '1',
    ],
    env,
  );
  t.equal(created.code, 0, created.stderr);
  const { apiId } = JSON.parse(created.stdout) as { apiId: string };

  const bad = await earshot(['set-webhook', '--api-id', apiId, '--url', 'https://hooks.example.com/t', '--token-name', 'X-Key'], env);
  t.not(bad.code, 0);
  t.match(bad.stderr, /--token-name needs --token-file/);
  const noUrl = await earshot(['create', '--name', 'x', '--token-name', 'X-Key', '--token-file', file('tok', 'abc')], env);
  t.not(noUrl.code, 0);
  t.match(noUrl.stderr, /webhook auth options need --webhook-url/);

  const config = loadEarshotConfig({ env });
  // A fresh reader each time: the CLI wrote from another process.
  const appRecords = async () => {
    const log = createEmbeddedEventLog({
      dataDir: config.EARSHOT_DATA_DIR,
      partitions: config.EARSHOT_TOPIC_PARTITIONS,
      logger: createLogger({ level: 'warn', name: 't' }),
    });
    try {
      await log.ensureTopics([TOPICS.apps]);
      return (await readToEnd(log, TOPICS.apps)).filter((r) => r.key === apiId);
    } finally {
      await log.close();
    }
  };
  const records = await appRecords();
  const last = records.at(-1)?.value;
  t.notMatch(JSON.stringify(records.map((r) => r.value)), /cli-secret-xyz|PRIVATE KEY/, 'nothing secret in clear on the log');
  const settings = openWebhookSettings(loadCredentialBox(config), last?.encryptedWebhookAuth ?? null);
  t.equal(settings.oauth?.clientSecret, 'cli-secret-xyz', 'the secret file was read and trimmed');
  t.equal(settings.retries, 1);
  t.ok(settings.clientCertPem?.includes('BEGIN CERTIFICATE'));

  const plain = await earshot(['set-webhook', '--api-id', apiId, '--url', 'https://hooks.example.com/other'], env);
  t.equal(plain.code, 0, plain.stderr);
  const after = (await appRecords()).at(-1)?.value;
  t.equal(after?.encryptedWebhookAuth, null, 'set-webhook without auth options clears the old credentials');
});
