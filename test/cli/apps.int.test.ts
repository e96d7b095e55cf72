import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { AppDirectory } from '../../apps/shared/src/tenants/app-directory.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { runEarshot } from '../support/cli.js';
import { kafkaEventLog } from '../support/infra.js';

const earshot = (args: string[], env: Record<string, string>) => runEarshot(['apps', ...args], env);

const modes: [string, () => Record<string, string>][] = [
  ['embedded', () => ({ EARSHOT_DATA_DIR: mkdtempSync(join(tmpdir(), 'earshot-apps-')) })],
  [
    'distributed (real Kafka)',
    () => ({
      EARSHOT_MODE: 'distributed',
      EARSHOT_SECRETS_KEY: Buffer.alloc(32, 3).toString('base64'),
      EARSHOT_DATA_DIR: mkdtempSync(join(tmpdir(), 'earshot-apps-')),
    }),
  ],
];

for (const [mode, makeEnv] of modes) {
  t.test(`apps create, list, rotate-secret, set-webhook, disable: ${mode}`, async (t) => {
    const env = makeEnv();
    t.teardown(() => rmSync(env.EARSHOT_DATA_DIR as string, { recursive: true, force: true }));
    const name = `acme-${Math.random().toString(36).slice(2, 8)}`;
    const created = await earshot(['create', '--name', name], env);
    t.equal(created.code, 0, created.stderr);
    const { apiId, apiSecret } = JSON.parse(created.stdout) as { apiId: string; apiSecret: string };
    t.match(apiId, /^app_[\w-]{12}$/);
    t.ok(apiSecret.length >= 43, 'a long random secret');

    const listed = JSON.parse((await earshot(['list', '--json'], env)).stdout) as { apiId: string; name: string }[];
    t.ok(
      listed.some((a) => a.apiId === apiId && a.name === name),
      'listed',
    );
    t.notMatch(JSON.stringify(listed), new RegExp(apiSecret), 'the secret is never listed');

    const rotated = JSON.parse((await earshot(['rotate-secret', '--api-id', apiId], env)).stdout) as { apiSecret: string };
    t.not(rotated.apiSecret, apiSecret);
    const hooked = JSON.parse(
      (await earshot(['set-webhook', '--api-id', apiId, '--url', 'https://hooks.example.test/earshot'], env)).stdout,
    );
    t.equal(hooked.webhookUrl, 'https://hooks.example.test/earshot');
    const tokenFile = join(env.EARSHOT_DATA_DIR as string, 'twilio-token');
    writeFileSync(tokenFile, 'twilio-secret-token\n');
    const twilio = JSON.parse((await earshot(['set-twilio-auth-token', '--api-id', apiId, '--file', tokenFile], env)).stdout);
    t.equal(twilio.twilioSignatureCheck, true);
    const disabled = JSON.parse((await earshot(['disable', '--api-id', apiId], env)).stdout);
    t.equal(disabled.disabled, true);

    // What a gateway node would load from the log: the latest state, secret only as a hash.
    if (env.EARSHOT_MODE === 'distributed') {
      const log = kafkaEventLog(6);
      t.teardown(() => log.close());
      const directory = new AppDirectory();
      for (const record of await readToEnd(log, TOPICS.apps)) directory.apply(record.value);
      const app = directory.get(apiId);
      t.equal(app?.disabled, true);
      t.equal(app?.webhookUrl, 'https://hooks.example.test/earshot');
      t.notOk(await directory.authenticate(apiId, rotated.apiSecret), 'disabled apps do not authenticate');
      t.match(app?.secretHash, /^scrypt\$/);
      t.notMatch(app?.encryptedTwilioAuthToken, /twilio-secret-token/, 'the Twilio token is stored encrypted');
    } else {
      t.equal(statSync(join(env.EARSHOT_DATA_DIR as string, 'secrets.key')).mode & 0o777, 0o600, 'generated key is private');
    }
  });
}

t.test('apps commands refuse bad input with one line', async (t) => {
  const env = { EARSHOT_DATA_DIR: mkdtempSync(join(tmpdir(), 'earshot-apps-')) };
  t.teardown(() => rmSync(env.EARSHOT_DATA_DIR, { recursive: true, force: true }));
  const cases: [string[], RegExp][] = [
    [['create'], /create needs --name/],
    [['create', '--name', 'x', '--webhook-url', 'not a url'], /webhook url 'not a url' is not a URL/],
    [['rotate-secret', '--api-id', 'app_missing'], /no app with api id app_missing/],
    [['set-twilio-auth-token', '--api-id', 'x'], /exactly one of --file F or --clear/],
    [['create', '--name', 'x', '--twilio-auth-token-file', '/nonexistent'], /cannot read \/nonexistent/],
    [['explode'], /apps needs an action, not 'explode'/],
  ];
  for (const [args, message] of cases) {
    const result = await earshot(args, env);
    t.equal(result.code, 1, args.join(' '));
    t.match(result.stderr, message, args.join(' '));
  }
  const distributed = await earshot(['list'], { EARSHOT_MODE: 'distributed' });
  t.match(distributed.stderr, /EARSHOT_SECRETS_KEY is required in distributed mode/);
});
