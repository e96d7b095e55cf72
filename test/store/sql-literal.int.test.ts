import fc from 'fast-check';
import t from 'tap';
import { sqlNumber, sqlString } from '../../apps/shared/src/transcript-store/clickhouse/sql-literal.js';
import { clickhouseSql } from '../support/store.js';

/** Whatever goes through sqlString comes back from the real ClickHouse 18.16 unchanged. */
t.test('strings and numbers round-trip through real ClickHouse literals', async (t) => {
  const sql = clickhouseSql('default');
  t.teardown(() => sql.close());
  const echo = async (literal: string) =>
    (await (await sql.query({ query: `SELECT ${literal} AS v`, format: 'JSONEachRow' })).json<{ v: unknown }>())[0]?.v;
  const fixed = ["it's", 'back\\slash', "\\'", 'a\u0000b', 'l1\nl2\r\tx\b\f', 'naïve 日本語 🎧', "'); DROP TABLE x; --", ''];
  for (const s of fixed) t.equal(await echo(sqlString(s)), s, JSON.stringify(s));
  for (const n of [0, -17, 1.5, 123456789012345]) t.equal(Number(await echo(sqlNumber(n))), n);
  // A sample of arbitrary strings (kept small: each is a query).
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), async (s) => (await echo(sqlString(s))) === s),
    { numRuns: 60 },
  );
});
