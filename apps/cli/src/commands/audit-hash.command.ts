import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../../shared/src/audit/audit-trail.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { loadCredentialBox } from '../../../shared/src/tenants/credential-box.js';
import { parseOptions } from '../args.js';

const USAGE = `Usage: earshot audit-hash VALUE...

Prints the audit hash of each VALUE (a Call SID or a client address), one per line: the
callSidHash / clientAddressHash that the audit trail stores for it, so an investigator can find
a call's audit records (WHERE callSidHash = '...'). The hash is keyed with EARSHOT_SECRETS_KEY
(embedded mode: <EARSHOT_DATA_DIR>/secrets.key): run it with the deployment's settings.`;

export async function auditHashCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(argv, {}, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new EarshotError('EARSHOT_USAGE', `a value to hash is required\n\n${USAGE}`);
  const key = loadCredentialBox(loadConfig()).derive(AUDIT_HASH_KEY_LABEL);
  for (const value of positionals) console.log(auditHash(key, value));
  return 0;
}
