import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readCredentials } from '../../apps/cli/src/credentials.js';

// `--credentials FILE` of demo and simulate-call: the JSON `earshot apps create` prints.
const dir = mkdtempSync(join(tmpdir(), 'earshot-credentials-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const USAGE = 'usage: earshot demo --api URL --credentials FILE';

t.test('the file of apps create is read', async (t) => {
  const path = file('ok.json', JSON.stringify({ apiId: 'app_1', apiSecret: 's3cret', name: 'extra fields are fine' }));
  t.same(readCredentials(path, USAGE), { apiId: 'app_1', apiSecret: 's3cret' });
});

t.test('a missing, malformed or incomplete file is a usage error naming the file, with the usage text', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['missing', join(dir, 'nope.json'), /--credentials .*nope\.json: ENOENT/],
    ['not JSON', file('bad.json', '{"apiId": '), /--credentials .*bad\.json: .*JSON/],
    ['null', file('null.json', 'null'), /must hold \{"apiId": "\.\.\.", "apiSecret": "\.\.\."\}/],
    ['no secret', file('half.json', '{"apiId": "app_1"}'), /half\.json must hold/],
    ['secret not a string', file('num.json', '{"apiId": "app_1", "apiSecret": 7}'), /num\.json must hold/],
  ];
  for (const [what, path, message] of cases) {
    const error = (() => {
      try {
        readCredentials(path, USAGE);
      } catch (e) {
        return e as Error & { code?: string };
      }
      return null;
    })();
    t.match(error?.message, message, `${what}: says what is wrong`);
    t.match(error?.message, /usage: earshot demo/, `${what}: with the usage text`);
    t.equal(error?.code, 'EARSHOT_USAGE', `${what}: a usage error`);
    t.notMatch(error?.message ?? '', /s3cret/, `${what}: no secret in the message`);
  }
});
