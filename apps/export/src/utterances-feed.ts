import type { StoredUtterance } from '../../shared/src/ports/transcript-store.port.js';

/**
 * The `utterances` feed (SPEC §3.5), version 1: one row per utterance, the same columns in
 * both formats. Column names are snake_case, as a warehouse table would have them.
 *
 * CSV (RFC 4180): header line, CRLF line ends, a field is quoted when it holds a comma, a
 * double quote, CR or LF, and quotes inside are doubled. Formula injection: a spreadsheet runs
 * a cell that starts with = + - @ TAB or CR as a formula, and transcripts are customer speech.
 * So every text cell that starts with one of those, or with an apostrophe, gets one leading
 * apostrophe (OWASP's advice). The rule is reversible: a loader that wants the exact text
 * drops one leading apostrophe from any text cell that has one. JSONL holds the exact text.
 */
export const UTTERANCES_FEED = { name: 'utterances', version: '1' } as const;

export const UTTERANCE_COLUMNS = [
  'conversation_id',
  'stream_id',
  'sender_role',
  'sender_external_id',
  'utterance_text',
  'start_ms',
  'end_ms',
  'created_ts',
  'language',
  'event_id',
  'utterance_id',
] as const;

export type UtteranceColumn = (typeof UTTERANCE_COLUMNS)[number];
export type UtteranceRow = { readonly [C in UtteranceColumn]: C extends 'start_ms' | 'end_ms' ? number : string };

export function toUtteranceRow(u: StoredUtterance): UtteranceRow {
  return {
    conversation_id: u.callSid,
    stream_id: u.streamId,
    sender_role: u.role,
    sender_external_id: u.senderExternalId,
    utterance_text: u.text,
    start_ms: u.startMs,
    end_ms: u.endMs,
    created_ts: new Date(u.occurredAtMs).toISOString(),
    language: u.language,
    event_id: u.eventId,
    utterance_id: u.utteranceId,
  };
}

export const jsonlLine = (row: UtteranceRow): string => `${JSON.stringify(row)}\n`;

export const CSV_HEADER = `${UTTERANCE_COLUMNS.join(',')}\r\n`;

const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA_START = /^[=+\-@\t\r']/;

/** One CSV field: numbers as they are, text neutralized against formulas and quoted when needed. */
export function csvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvLine(row: UtteranceRow): string {
  let line = '';
  for (let i = 0; i < UTTERANCE_COLUMNS.length; i++) {
    if (i > 0) line += ',';
    line += csvField(row[UTTERANCE_COLUMNS[i] as UtteranceColumn]);
  }
  return `${line}\r\n`;
}

/** The file name of part `part` of hour `hour` (unique within the date, so it names the file alone). */
export const feedFileName = (date: string, hour: number, part: number, format: 'jsonl' | 'csv'): string =>
  `${UTTERANCES_FEED.name}-${date}-${String(hour).padStart(2, '0')}-${String(part).padStart(4, '0')}.${format}.gz`;
