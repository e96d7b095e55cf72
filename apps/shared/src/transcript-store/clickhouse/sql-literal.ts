/**
 * The ONE place where values become ClickHouse SQL text. ClickHouse 18.16 has no query
 * parameters (`{p:Type}`, NOTES.md), so every value that reaches a query goes through these
 * functions; `test/store/sql-literal.unit.test.ts` pins their output.
 *
 * String literal rules (ClickHouse "Syntax: String literals"): single quotes, with `\` and `'`
 * escaped by a backslash. We also escape NUL and the control characters so a query stays one
 * printable line in logs and no byte can end the literal early.
 */

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

const NEEDS_ESCAPE = /[\\'\0\n\r\t\b\f]/g;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `'...'`: any JS string (unicode kept as UTF-8) as a ClickHouse string literal. */
export function sqlString(value: string): string {
  if (typeof value !== 'string') throw new TypeError(`sqlString: expected a string, got ${typeof value}`);
  if (LONE_SURROGATE.test(value)) {
    throw new TypeError('sqlString: the string holds a lone UTF-16 surrogate (not valid UTF-8)');
  }
  return `'${value.replace(NEEDS_ESCAPE, (c) => ESCAPES[c] as string)}'`;
}

/** A finite number as a literal: integers exactly (safe range), others in JS's shortest round-trip form. */
export function sqlNumber(value: number): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`sqlNumber: not a finite number: ${String(value)}`);
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw new TypeError(`sqlNumber: integer outside the safe range: ${value}`);
  // `-0` would print as `0` anyway; exponent forms (1e-7) are valid ClickHouse float literals.
  return Object.is(value, -0) ? '0' : String(value);
}

/** A non-negative integer (ids, offsets, milliseconds). */
export function sqlUInt(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`sqlUInt: not a non-negative safe integer: ${String(value)}`);
  return String(value);
}

/** `(a, b, c)` for `IN`: at least one string. */
export function sqlStringList(values: readonly string[]): string {
  if (values.length === 0) throw new TypeError('sqlStringList: empty list (an empty IN is a syntax error)');
  return `(${values.map(sqlString).join(', ')})`;
}

/** Database and table names: plain identifiers only, never quoted user input. */
export function sqlIdentifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new TypeError(`sqlIdentifier: not a plain identifier: ${JSON.stringify(name)}`);
  return name;
}
