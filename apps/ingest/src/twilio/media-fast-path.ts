/**
 * The fast path for the one message that matters for CPU: a plain Twilio `media` message (50
 * per second per track). It reads the UTF-8 bytes uWS hands over for the four fields the
 * session uses (track, chunk, timestamp, payload) without TextDecoder or JSON.parse: the only
 * allocation is the payload string, which then goes through the same `TrackBatcher.append`
 * (length, padding and base64 checks included) as on the full path.
 *
 * It accepts only a strict subset of JSON whose meaning is unambiguous and answers `false` for
 * everything else, so the caller falls back to the full parse and validation (session.ts) and
 * every unusual or malformed message is judged exactly as before:
 *
 * - one top-level object; JSON whitespace between tokens;
 * - keys and string values of printable ASCII without escapes (no `\`, no control character,
 *   no byte outside 0x20-0x7e), so the bytes are the string JSON.parse would produce; members other than
 *   the ones below may only hold such strings (no numbers, objects, arrays, literals);
 * - `"event":"media"` and a `media` object holding `track` ("inbound" | "outbound"), `chunk`
 *   and `timestamp` (strings of 1-15 digits, what `toCount` accepts as strings) and `payload`
 *   (any such string: the batcher judges it);
 * - no key twice in one object (JSON.parse keeps the last one; the full path decides).
 *
 * On `true` the fields are in `FAST_MEDIA` (one shared object, read synchronously by the
 * caller). test/ingest/media-fast-path.unit.test.ts checks on generated and mutated messages
 * that whenever this says yes, JSON.parse reads the same fields, and that sessions with and
 * without the fast path count, drop and batch every message alike.
 */
export interface FastMedia {
  /** 0 inbound, 1 outbound (TRACK_INBOUND / TRACK_OUTBOUND). */
  track: number;
  chunk: number;
  timestampMs: number;
  payload: string;
}

export const FAST_MEDIA: FastMedia = { track: -1, chunk: -1, timestampMs: -1, payload: '' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE = 0x7d;

// Member names and values compared as bytes.
const K_EVENT = ascii('event');
const K_MEDIA = ascii('media');
const K_TRACK = ascii('track');
const K_CHUNK = ascii('chunk');
const K_TIMESTAMP = ascii('timestamp');
const K_PAYLOAD = ascii('payload');
const V_INBOUND = ascii('inbound');
const V_OUTBOUND = ascii('outbound');

const NO = -1;

/** Scanner position and the last key or string read (module state: one message at a time, nothing allocated). */
let pos = 0;
let textStart = 0;
let textEnd = 0;

/** True when `bytes` is a plain media message; its fields are then in FAST_MEDIA. */
export function scanMedia(bytes: Buffer): boolean {
  const end = bytes.length;
  pos = skipSpace(bytes, 0, end);
  if (bytes[pos] !== OPEN) return false;
  pos++;
  let sawEvent = false;
  let sawMedia = false;
  for (;;) {
    if (!readKey(bytes, end)) return false;
    if (textIs(bytes, K_EVENT)) {
      if (sawEvent || !readString(bytes, end) || !textIs(bytes, K_MEDIA)) return false;
      sawEvent = true;
    } else if (textIs(bytes, K_MEDIA)) {
      if (sawMedia || bytes[pos] !== OPEN) return false;
      pos++;
      if (!scanMediaObject(bytes, end)) return false;
      sawMedia = true;
    } else if (!readString(bytes, end)) {
      return false;
    }
    pos = skipSpace(bytes, pos, end);
    const next = bytes[pos++];
    if (next === CLOSE) break;
    if (next !== COMMA) return false;
  }
  return sawEvent && sawMedia && skipSpace(bytes, pos, end) === end;
}

/** After the `{` of `media`: its members, up to and including its `}`. */
function scanMediaObject(bytes: Buffer, end: number): boolean {
  let track = NO;
  let chunk = NO;
  let timestamp = NO;
  let payloadStart = NO;
  let payloadEnd = NO;
  for (;;) {
    if (!readKey(bytes, end)) return false;
    if (textIs(bytes, K_TRACK)) {
      if (track !== NO || !readString(bytes, end)) return false;
      if (textIs(bytes, V_INBOUND)) track = 0;
      else if (textIs(bytes, V_OUTBOUND)) track = 1;
      else return false;
    } else if (textIs(bytes, K_CHUNK)) {
      if (chunk !== NO) return false;
      chunk = readDigits(bytes, end);
      if (chunk === NO) return false;
    } else if (textIs(bytes, K_TIMESTAMP)) {
      if (timestamp !== NO) return false;
      timestamp = readDigits(bytes, end);
      if (timestamp === NO) return false;
    } else if (textIs(bytes, K_PAYLOAD)) {
      if (payloadStart !== NO || !readString(bytes, end)) return false;
      payloadStart = textStart;
      payloadEnd = textEnd;
    } else if (!readString(bytes, end)) {
      return false;
    }
    pos = skipSpace(bytes, pos, end);
    const next = bytes[pos++];
    if (next === CLOSE) break;
    if (next !== COMMA) return false;
  }
  if (track === NO || chunk === NO || timestamp === NO || payloadStart === NO) return false;
  FAST_MEDIA.track = track;
  FAST_MEDIA.chunk = chunk;
  FAST_MEDIA.timestampMs = timestamp;
  // ASCII without escapes: latin1 of these bytes is the string JSON.parse would give.
  FAST_MEDIA.payload = bytes.toString('latin1', payloadStart, payloadEnd);
  return true;
}

/** Whitespace, `"name"`, whitespace, `:`, whitespace; leaves `pos` on the value. */
function readKey(bytes: Buffer, end: number): boolean {
  pos = skipSpace(bytes, pos, end);
  if (!readString(bytes, end)) return false;
  pos = skipSpace(bytes, pos, end);
  if (bytes[pos] !== COLON) return false;
  pos = skipSpace(bytes, pos + 1, end);
  return true;
}

/** At a `"`: a plain string; its content is then textStart..textEnd and `pos` is past the closing quote. */
function readString(bytes: Buffer, end: number): boolean {
  if (bytes[pos] !== QUOTE) return false;
  const start = pos + 1;
  let i = start;
  // Printable ASCII but `"` and `\` (compares measured faster here than a class table).
  while (i < end) {
    const c = bytes[i] as number;
    if (c === QUOTE || c < 0x20 || c > 0x7e || c === BACKSLASH) break;
    i++;
  }
  if (bytes[i] !== QUOTE) return false;
  textStart = start;
  textEnd = i;
  pos = i + 1;
  return true;
}

/** A string of 1-15 ASCII digits as a number (as `toCount` reads it); NO otherwise. */
function readDigits(bytes: Buffer, end: number): number {
  if (bytes[pos] !== QUOTE) return NO;
  const start = pos + 1;
  const last = Math.min(end, start + 16);
  let n = 0;
  let i = start;
  for (; i < last; i++) {
    const digit = (bytes[i] as number) - 0x30;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  if (bytes[i] !== QUOTE || i === start || i - start > 15) return NO;
  pos = i + 1;
  return n;
}

function skipSpace(bytes: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** The last key or string read equals `expected`. */
function textIs(bytes: Buffer, expected: Uint8Array): boolean {
  if (textEnd - textStart !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[textStart + i] !== expected[i]) return false;
  return true;
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
