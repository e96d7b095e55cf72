import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import { CredentialBox } from '../../apps/shared/src/tenants/credential-box.js';
import { runEarshot } from '../support/cli.js';

// `earshot audit-hash`: the investigator's way from a Call SID to its audit rows.
const CALL = 'CA0123456789abcdef0123456789abcdef';

const earshot = (args: string[], env: Record<string, string>) => runEarshot(['audit-hash', ...args], env);

t.test('prints the keyed hash the audit trail stores, under the deployment key', async (t) => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const env = { EARSHOT_MODE: 'distributed', EARSHOT_SECRETS_KEY: key };
  const out = await earshot([CALL, '203.0.113.7'], env);
  t.equal(out.code, 0, out.stderr);
  const derived = new CredentialBox(Buffer.from(key, 'base64')).derive(AUDIT_HASH_KEY_LABEL);
  t.same(out.stdout.trim().split('\n'), [auditHash(derived, CALL), auditHash(derived, '203.0.113.7')]);
  const other = await earshot([CALL], { ...env, EARSHOT_SECRETS_KEY: Buffer.alloc(32, 8).toString('base64') });
  t.not(other.stdout.trim(), auditHash(derived, CALL), 'another key, another hash');
});

t.test('embedded mode uses the data folder key; refuses no value and a bad key', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-audit-hash-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const out = await earshot([CALL], { EARSHOT_DATA_DIR: dataDir });
  t.equal(out.code, 0, out.stderr);
  const box = new CredentialBox(Buffer.from(readFileSync(join(dataDir, 'secrets.key'), 'utf8').trim(), 'base64'));
  t.equal(out.stdout.trim(), auditHash(box.derive(AUDIT_HASH_KEY_LABEL), CALL));

  const none = await earshot([], { EARSHOT_DATA_DIR: dataDir });
  t.equal(none.code, 1);
  t.match(none.stderr, /a value to hash is required/);
  const bad = await earshot([CALL], { EARSHOT_MODE: 'distributed', EARSHOT_SECRETS_KEY: 'short' });
  t.equal(bad.code, 1);
  t.match(bad.stderr, /EARSHOT_SECRETS_KEY/);
  t.equal(bad.stdout, '', 'nothing printed with a bad key');
});
