import fc from 'fast-check';
import t from 'tap';
import {
  sqlIdentifier,
  sqlNumber,
  sqlString,
  sqlStringList,
  sqlUInt,
} from '../../apps/shared/src/transcript-store/clickhouse/sql-literal.js';

/** The one escaping helper for ClickHouse SQL (no query parameters on 18.16). Real-server round trips: sql-literal.int.test.ts. */
t.test('sqlString escapes quotes, backslashes, NUL and control characters', async (t) => {
  t.equal(sqlString(''), "''");
  t.equal(sqlString('plain text'), "'plain text'");
  t.equal(sqlString("it's"), "'it\\'s'");
  t.equal(sqlString('back\\slash'), "'back\\\\slash'");
  t.equal(sqlString("\\'"), "'\\\\\\''", 'a backslash before a quote cannot un-escape it');
  t.equal(sqlString('a\u0000b'), "'a\\0b'");
  t.equal(sqlString('l1\nl2\r\tx\b\f'), "'l1\\nl2\\r\\tx\\b\\f'");
  t.equal(sqlString('naïve 日本語 🎧'), "'naïve 日本語 🎧'", 'unicode stays as it is (sent as UTF-8)');
  t.equal(sqlString('"double" `back`'), '\'"double" `back`\'', 'other quotes need nothing');
});

t.test('sqlString refuses what is not a well-formed string', async (t) => {
  t.throws(() => sqlString('\uD800x'), /lone UTF-16 surrogate/);
  t.throws(() => sqlString('x\uDC00'), /lone UTF-16 surrogate/);
  t.throws(() => sqlString(42 as unknown as string), /expected a string/);
});

t.test('sqlString never lets a quote end the literal early (property)', async (t) => {
  t.doesNotThrow(() =>
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const literal = sqlString(s);
        const inner = literal.slice(1, -1);
        // Walk the literal as ClickHouse's lexer does: a backslash escapes the next character.
        for (let i = 0; i < inner.length; i++) {
          if (inner[i] === '\\') i++;
          else if (inner[i] === "'" || inner[i] === '\u0000' || inner[i] === '\n') return false;
        }
        return literal.startsWith("'") && literal.endsWith("'");
      }),
    ),
  );
});

t.test('numbers: finite only, integers exact and in the safe range', async (t) => {
  t.equal(sqlNumber(0), '0');
  t.equal(sqlNumber(-0), '0');
  t.equal(sqlNumber(-17), '-17');
  t.equal(sqlNumber(1.5), '1.5');
  t.equal(sqlNumber(1e-7), '1e-7');
  t.equal(sqlNumber(Number.MAX_SAFE_INTEGER), '9007199254740991');
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, '1' as unknown as number])
    t.throws(() => sqlNumber(bad), /sqlNumber/, String(bad));
  t.equal(sqlUInt(1764273600000), '1764273600000');
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) t.throws(() => sqlUInt(bad), /sqlUInt/, String(bad));
});

t.test('lists and identifiers', async (t) => {
  t.equal(sqlStringList(['a', "b'c"]), "('a', 'b\\'c')");
  t.throws(() => sqlStringList([]), /empty list/);
  t.equal(sqlIdentifier('earshot_test_1'), 'earshot_test_1');
  for (const bad of ['', '1abc', 'a-b', 'a b', 'a;DROP', '`x`', 'x'.repeat(64)])
    t.throws(() => sqlIdentifier(bad), /not a plain identifier/, bad);
});
