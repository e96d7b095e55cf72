import { createHash } from 'node:crypto';

/**
 * Deterministic ids (SPEC §5): an utterance is named by its call, stream, track and the
 * position of its first sample in the media stream (from Twilio's timestamps, not from what a
 * consumer happened to see), so a consumer that replays the same audio after a crash or a
 * rebalance produces the same id and downstream stores collapse the duplicate.
 */
export function utteranceId(callSid: string, streamSid: string, track: string, startSample: number): string {
  return `${callSid}:${streamSid}:${track}:${startSample}`;
}

/** A UUID-shaped id derived from a name (SHA-1, RFC 4122 version 5 layout). */
export function nameBasedUuid(name: string): string {
  const hash = createHash('sha1').update(name).digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
