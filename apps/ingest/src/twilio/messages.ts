import type { Track } from '../../../shared/src/events.js';

/**
 * Twilio Media Streams messages (one JSON text frame each):
 *
 *   {"event":"connected","protocol":"Call","version":"1.0.0"}
 *   {"event":"start","sequenceNumber":"1","streamSid":"MZ…","start":{"streamSid","accountSid","callSid",
 *     "tracks":["inbound","outbound"],"customParameters":{…},
 *     "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}
 *   {"event":"media","sequenceNumber":"3","streamSid":"MZ…","media":{"track":"inbound","chunk":"1",
 *     "timestamp":"5","payload":"<base64 of 160 bytes of mu-law>"}}
 *   {"event":"dtmf","streamSid":"MZ…","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}
 *   {"event":"mark","streamSid":"MZ…","sequenceNumber":"4","mark":{"name":"label"}}
 *   {"event":"stop","sequenceNumber":"9","streamSid":"MZ…","stop":{"accountSid","callSid"}}
 *
 * In real messages `sequenceNumber`, `media.chunk` and `media.timestamp` are strings of
 * digits; numbers are accepted too. Parsing here is pure (no I/O, no logging).
 */

export const TRACK_INBOUND = 0;
export const TRACK_OUTBOUND = 1;
export const TRACK_NAMES: readonly Track[] = ['inbound', 'outbound'];

/** A non-negative safe integer from a number or a string of 1-15 digits; -1 otherwise. */
export function toCount(value: unknown): number {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : -1;
  if (typeof value !== 'string' || value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/** Track index of a media track name; -1 for anything else. */
export function mediaTrackIndex(value: unknown): number {
  if (value === 'inbound') return TRACK_INBOUND;
  if (value === 'outbound') return TRACK_OUTBOUND;
  return -1;
}

/** DTMF messages name tracks `inbound_track`; the plain names are accepted too. */
export function dtmfTrack(value: unknown): Track | null {
  if (value === 'inbound_track' || value === 'inbound') return 'inbound';
  if (value === 'outbound_track' || value === 'outbound') return 'outbound';
  return null;
}

export const DTMF_DIGIT = /^[0-9*#A-Da-d]$/;

export interface StreamStart {
  readonly streamSid: string;
  readonly accountSid: string;
  readonly callSid: string;
  readonly tracks: readonly Track[];
  readonly customParameters: Readonly<Record<string, string>>;
}

export type StartParse =
  | { readonly ok: true; readonly start: StreamStart }
  | { readonly ok: false; readonly reason: 'invalid_start' | 'unsupported_media_format'; readonly detail: string };

const SID_MAX = 128;
const CUSTOM_PARAMETERS_MAX = 100;

/** Validates a `start` message; the only media format accepted is 8 kHz mono mu-law. */
export function parseStart(message: Record<string, unknown>): StartParse {
  const start = message.start;
  if (!isObject(start)) return invalid('start message has no "start" object');
  const streamSid = sid(start.streamSid ?? message.streamSid);
  const accountSid = sid(start.accountSid);
  const callSid = sid(start.callSid);
  if (!streamSid) return invalid('start.streamSid must be a non-empty string');
  if (!callSid) return invalid('start.callSid must be a non-empty string');
  if (accountSid === null) return invalid('start.accountSid must be a string');
  if (!Array.isArray(start.tracks) || start.tracks.length === 0) return invalid('start.tracks must be a non-empty array');
  const tracks: Track[] = [];
  for (const name of start.tracks) {
    const index = mediaTrackIndex(name);
    if (index < 0) return invalid(`start.tracks has an unknown track ${JSON.stringify(name)} (expected inbound, outbound)`);
    const track = TRACK_NAMES[index] as Track;
    if (!tracks.includes(track)) tracks.push(track);
  }
  const format = start.mediaFormat;
  if (!isObject(format)) return { ok: false, reason: 'unsupported_media_format', detail: 'start.mediaFormat is missing' };
  const encoding = format.encoding;
  const sampleRate = toCount(format.sampleRate);
  const channels = toCount(format.channels);
  if (encoding !== 'audio/x-mulaw' || sampleRate !== 8000 || channels !== 1) {
    return {
      ok: false,
      reason: 'unsupported_media_format',
      detail: `unsupported mediaFormat ${JSON.stringify({ encoding, sampleRate: format.sampleRate, channels: format.channels })}: only audio/x-mulaw, 8000 Hz, 1 channel is accepted`,
    };
  }
  const customParameters: Record<string, string> = {};
  if (start.customParameters !== undefined && start.customParameters !== null) {
    if (!isObject(start.customParameters)) return invalid('start.customParameters must be an object');
    const entries = Object.entries(start.customParameters);
    if (entries.length > CUSTOM_PARAMETERS_MAX) return invalid(`start.customParameters has more than ${CUSTOM_PARAMETERS_MAX} entries`);
    // Avro needs a map of strings; Twilio only sends strings, anything else is kept as JSON text.
    for (const [name, value] of entries) customParameters[name] = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  }
  return { ok: true, start: { streamSid, accountSid, callSid, tracks, customParameters } };
}

/**
 * A field's value for a log line, at most 40 characters. Never `String(value)`: a JSON object
 * such as {"toString":1} makes that throw, and one message would take the process down.
 */
export function printable(value: unknown): string {
  return (typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value)).slice(0, 40);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sid(value: unknown): string | null {
  return typeof value === 'string' && value.length <= SID_MAX ? value : null;
}

function invalid(detail: string): StartParse {
  return { ok: false, reason: 'invalid_start', detail };
}
