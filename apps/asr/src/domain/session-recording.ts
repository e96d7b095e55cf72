import { endianness } from 'node:os';
import { mulawToPcm16 } from '../../../shared/src/audio/mulaw.js';
import { writeWavPcm16Header } from '../../../shared/src/audio/wav.js';
import type { Role } from '../../../shared/src/events.js';

/**
 * The audio of one transcription session, kept for `audioRecordingAllowed` (SPEC §6) and
 * turned into a WAV when the session closes: customer left, agent right, 8 kHz 16-bit PCM.
 *
 * Both channels are on the media-stream clock: a chunk's samples go to `timestampMs × 8`
 * (Twilio's timestamps), so a track that sent nothing is silence there, and duplicates or
 * replays overwrite the same samples with the same bytes. The WAV runs from the session's
 * first audio (either track) to its last. A second media stream in the session (Twilio
 * restarted the stream: its timestamps start again at 0) continues where the recording ends.
 *
 * Memory: mu-law bytes (8 KB/s per track, 1 s pages allocated only where a track sent audio),
 * decoded once at the end. Nothing is kept past `maxSamples` from the first audio.
 */
export const RECORDING_SAMPLE_RATE = 8000;
const PAGE = 8000;
const SILENCE = 0xff; // mu-law silence: decodes to 0
/** The other track's first chunk may carry an earlier timestamp than the first one received (ingest batches per track). */
const LEAD_SLACK_SAMPLES = 2 * RECORDING_SAMPLE_RATE;

export interface RecordedAudio {
  readonly wav: Buffer;
  /** Media-stream time of the first sample (the first stream's clock). */
  readonly mediaStartMs: number;
  readonly durationMs: number;
  /** Audio outside the window of `maxSamples` was dropped. */
  readonly truncated: boolean;
}

export class SessionRecording {
  private readonly pages: Record<Role, Map<number, Uint8Array>> = { customer: new Map(), agent: new Map() };
  /** Where each media stream's timestamp 0 sits on the recording's clock (in samples). */
  private readonly streams = new Map<string, number>();
  private anchor: number | null = null;
  private first = Number.POSITIVE_INFINITY;
  private end = Number.NEGATIVE_INFINITY;
  private droppedSamples = 0;

  constructor(private readonly maxSamples: number) {}

  get empty(): boolean {
    return this.anchor === null;
  }

  write(role: Role, streamSid: string, timestampMs: number, mulaw: Uint8Array): void {
    let origin = this.streams.get(streamSid);
    if (origin === undefined) {
      origin = this.streams.size === 0 ? 0 : Math.max(0, this.end);
      this.streams.set(streamSid, origin);
    }
    const at = origin + Math.round(timestampMs * 8);
    this.anchor ??= at;
    const lo = Math.max(0, this.anchor - LEAD_SLACK_SAMPLES);
    const hi = this.anchor + this.maxSamples;
    const from = Math.max(at, lo);
    const to = Math.min(at + mulaw.length, hi);
    this.droppedSamples += mulaw.length - Math.max(0, to - from);
    if (to <= from) return;
    const pages = this.pages[role];
    for (let pos = from; pos < to; ) {
      const index = Math.floor(pos / PAGE);
      let page = pages.get(index);
      if (!page) {
        page = new Uint8Array(PAGE).fill(SILENCE);
        pages.set(index, page);
      }
      const within = pos - index * PAGE;
      const n = Math.min(PAGE - within, to - pos);
      page.set(mulaw.subarray(pos - at, pos - at + n), within);
      pos += n;
    }
    this.first = Math.min(this.first, from);
    this.end = Math.max(this.end, to);
  }

  /**
   * The session's WAV, or null when no audio arrived during it. Yields to the event loop every
   * 10 s of audio, so turning a long call into a WAV does not stall the other calls.
   */
  async toWav(): Promise<RecordedAudio | null> {
    if (this.anchor === null) return null;
    const start = this.first;
    const end = Math.min(this.end, start + this.maxSamples);
    const frames = end - start;
    const wav = Buffer.alloc(44 + frames * 4);
    writeWavPcm16Header(wav, RECORDING_SAMPLE_RATE, 2, frames);
    const little = endianness() === 'LE';
    const out = little ? new Int16Array(wav.buffer, wav.byteOffset + 44, frames * 2) : null;
    const pcm = new Int16Array(PAGE);
    for (const [channel, role] of (['customer', 'agent'] as const).entries()) {
      for (let index = Math.floor(start / PAGE); index * PAGE < end; index++) {
        if (index % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
        const page = this.pages[role].get(index);
        if (!page) continue; // silence: the buffer is zeros already
        mulawToPcm16(page, pcm);
        const from = Math.max(start, index * PAGE);
        const to = Math.min(end, (index + 1) * PAGE);
        const offset = index * PAGE;
        let slot = (from - start) * 2 + channel;
        if (out) {
          for (let pos = from; pos < to; pos++, slot += 2) out[slot] = pcm[pos - offset] as number;
        } else {
          for (let pos = from; pos < to; pos++, slot += 2) wav.writeInt16LE(pcm[pos - offset] as number, 44 + slot * 2);
        }
      }
    }
    return {
      wav,
      mediaStartMs: Math.floor(start / 8),
      durationMs: Math.round(frames / 8),
      truncated: this.droppedSamples > 0 || this.end > end,
    };
  }
}
