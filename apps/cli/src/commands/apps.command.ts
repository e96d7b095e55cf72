import { readFileSync } from 'node:fs';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { createEventLog } from '../../../shared/src/event-log.js';
import { createLogger } from '../../../shared/src/logger.js';
import { AppAdmin } from '../../../shared/src/tenants/app-admin.js';
import { loadCredentialBox } from '../../../shared/src/tenants/credential-box.js';
import type { WebhookSettingsInput } from '../../../shared/src/tenants/webhook-settings.js';
import { parseOptions } from '../args.js';

const USAGE = `Usage: earshot apps <action> [options]

Actions:
  create --name N [--webhook-url U [webhook auth]] [--twilio-auth-token-file F]
                       create an app (tenant); prints {"apiId", "apiSecret"} once
  list [--json]        the apps, without secrets
  rotate-secret --api-id ID
                       a new secret, printed once; the old one stops working
  disable --api-id ID  refuse the app everywhere from now on
  set-webhook --api-id ID --url U [webhook auth]
                       where its utterances are delivered, and how; replaces the
                       whole webhook setting (auth options not given are cleared)
  set-twilio-auth-token --api-id ID (--file F | --clear)
                       check X-Twilio-Signature on its media streams with this token

Webhook auth (any combination, except token with OAuth2):
  --ca-file F                    PEM CA certificate(s): the only CAs trusted for the target
                                 (TLS 1.2+, hostname checked)
  --client-cert-file F --client-key-file F
                                 mutual TLS: client certificate and its key (PEM)
  --token-name N --token-file F [--token-in header|query]
                                 a secret token as header N (default) or query parameter N
  --oauth-token-url U --oauth-client-id ID --oauth-client-secret-file F [--oauth-scope S]
                                 OAuth2 client_credentials; the bearer token is cached and
                                 refreshed once on 401
  --retries N                    retry a timeout, connection error, 5xx or 429 up to N times
                                 (0-5, backoff with jitter; default 0: no retries)

Works whether or not the gateway runs: changes go to the apps topic (embedded mode: under
EARSHOT_DATA_DIR; distributed: Kafka) and running nodes pick them up within a second.
Secrets given to Earshot (Twilio token, webhook key, token, client secret) are read from a file, never from the command line,
and are stored encrypted with EARSHOT_SECRETS_KEY.`;

export async function appsCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    {
      name: { type: 'string' },
      'webhook-url': { type: 'string' },
      'twilio-auth-token-file': { type: 'string' },
      'api-id': { type: 'string' },
      url: { type: 'string' },
      file: { type: 'string' },
      clear: { type: 'boolean' },
      json: { type: 'boolean' },
      'ca-file': { type: 'string' },
      'client-cert-file': { type: 'string' },
      'client-key-file': { type: 'string' },
      'token-name': { type: 'string' },
      'token-file': { type: 'string' },
      'token-in': { type: 'string' },
      'oauth-token-url': { type: 'string' },
      'oauth-client-id': { type: 'string' },
      'oauth-client-secret-file': { type: 'string' },
      'oauth-scope': { type: 'string' },
      retries: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const action = positionals[0];
  const config = loadConfig();
  // Logs go to stderr: stdout carries the JSON a program reads.
  const logger = createLogger({
    level: config.EARSHOT_LOG_LEVEL === 'info' ? 'warn' : config.EARSHOT_LOG_LEVEL,
    name: 'earshot-apps',
    destination: process.stderr,
  });
  const log = createEventLog(config, logger);
  const admin = new AppAdmin(log, loadCredentialBox(config));
  const required = (name: 'name' | 'api-id' | 'url'): string => {
    const value = values[name];
    if (typeof value !== 'string' || value.trim() === '') throw new EarshotError('EARSHOT_USAGE', `${action} needs --${name}\n\n${USAGE}`);
    return value;
  };
  try {
    switch (action) {
      case 'create': {
        const token = values['twilio-auth-token-file'] ? readSecretFile(values['twilio-auth-token-file']) : undefined;
        const created = await admin.create({
          name: required('name'),
          webhookUrl: values['webhook-url'],
          webhookAuth: webhookAuthOptions(values),
          twilioAuthToken: token,
        });
        console.log(JSON.stringify(created));
        if (!values.json) console.error('Keep the apiSecret now: it is shown only this once.');
        return 0;
      }
      case 'list': {
        const apps = await admin.list();
        if (values.json) console.log(JSON.stringify(apps));
        else if (apps.length === 0) console.log('no apps yet: earshot apps create --name <name>');
        else
          for (const a of apps)
            console.log(`${a.apiId}  ${a.disabled ? 'DISABLED ' : ''}${a.name}${a.webhookUrl ? `  → ${a.webhookUrl}` : ''}`);
        return 0;
      }
      case 'rotate-secret':
        console.log(JSON.stringify(await admin.rotateSecret(required('api-id'))));
        return 0;
      case 'disable':
        console.log(JSON.stringify(await admin.disable(required('api-id'))));
        return 0;
      case 'set-webhook':
        console.log(JSON.stringify(await admin.setWebhook(required('api-id'), required('url'), webhookAuthOptions(values))));
        return 0;
      case 'set-twilio-auth-token': {
        if (Boolean(values.file) === Boolean(values.clear))
          throw new EarshotError('EARSHOT_USAGE', `set-twilio-auth-token needs exactly one of --file F or --clear\n\n${USAGE}`);
        const token = values.file ? readSecretFile(values.file) : null;
        console.log(JSON.stringify(await admin.setTwilioAuthToken(required('api-id'), token)));
        return 0;
      }
      default:
        throw new EarshotError('EARSHOT_USAGE', `apps needs an action${action ? `, not '${action}'` : ''}\n\n${USAGE}`);
    }
  } finally {
    await log.close();
  }
}

/** The webhook auth options, files read (PEM files kept whole, secrets trimmed); checked by AppAdmin. */
function webhookAuthOptions(values: Record<string, string | boolean | undefined>): WebhookSettingsInput {
  const text = (name: string): string | undefined => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const file = (name: string): string | undefined => {
    const path = text(name);
    return path === undefined ? undefined : readSecretFile(path, name);
  };
  return {
    caPem: file('ca-file'),
    clientCertPem: file('client-cert-file'),
    clientKeyPem: file('client-key-file'),
    tokenName: text('token-name'),
    tokenValue: file('token-file'),
    tokenIn: text('token-in'),
    oauthTokenUrl: text('oauth-token-url'),
    oauthClientId: text('oauth-client-id'),
    oauthClientSecret: file('oauth-client-secret-file'),
    oauthScope: text('oauth-scope'),
    retries: text('retries'),
  };
}

function readSecretFile(path: string, option?: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new EarshotError('EARSHOT_USAGE', `${option ? `--${option}: ` : ''}cannot read ${path}: ${(error as Error).message}`);
  }
  if (text === '') throw new EarshotError('EARSHOT_USAGE', `${option ? `--${option}: ` : ''}${path} is empty`);
  return text;
}
