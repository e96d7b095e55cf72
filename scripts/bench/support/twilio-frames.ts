/**
 * Twilio Media Streams messages as Twilio sends them (apps/ingest/src/twilio/messages.ts has
 * the shapes): one JSON text frame each, `sequenceNumber`, `chunk` and `timestamp` as strings
 * of digits, 160 bytes of 8 kHz mu-law per 20 ms frame in standard base64. Payloads are
 * prepared once: a benchmark client should spend its time sending, not encoding.
 */
export type TrackName = 'inbound' | 'outbound';

export const FRAME_BYTES = 160;
export const FRAME_MS = 20;

/** Deterministic mu-law-looking bytes, different per track and frame. */
export function frameBytes(track: TrackName, chunk: number): Buffer {
  const bytes = Buffer.alloc(FRAME_BYTES);
  const seed = (track === 'inbound' ? 17 : 131) + chunk * 7;
  for (let i = 0; i < FRAME_BYTES; i++) bytes[i] = (seed + i * 3) & 0xff;
  return bytes;
}

/** `count` distinct base64 payloads per track, cycled by chunk number. */
export function payloadRing(count = 64): Record<TrackName, readonly string[]> {
  const ring = (track: TrackName) => Array.from({ length: count }, (_, i) => frameBytes(track, i + 1).toString('base64'));
  return { inbound: ring('inbound'), outbound: ring('outbound') };
}

export function startMessage(o: {
  streamSid: string;
  callSid: string;
  accountSid: string;
  sequenceNumber: number;
  customParameters?: Record<string, string>;
}): string {
  return JSON.stringify({
    event: 'start',
    sequenceNumber: String(o.sequenceNumber),
    start: {
      accountSid: o.accountSid,
      streamSid: o.streamSid,
      callSid: o.callSid,
      tracks: ['inbound', 'outbound'],
      customParameters: o.customParameters ?? {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid: o.streamSid,
  });
}

/** A media message; the template matches JSON.stringify of Twilio's object, without building one. */
export function mediaMessage(streamSid: string, sequenceNumber: number, track: TrackName, chunk: number, payload: string): string {
  return `{"event":"media","sequenceNumber":"${sequenceNumber}","media":{"track":"${track}","chunk":"${chunk}","timestamp":"${(chunk - 1) * FRAME_MS}","payload":"${payload}"},"streamSid":"${streamSid}"}`;
}

export function stopMessage(streamSid: string, callSid: string, accountSid: string, sequenceNumber: number): string {
  return JSON.stringify({ event: 'stop', sequenceNumber: String(sequenceNumber), stop: { accountSid, callSid }, streamSid });
}

export const CONNECTED_MESSAGE = JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' });
