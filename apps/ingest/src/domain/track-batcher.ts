/**
 * Batches the 20 ms media frames of one track into chunks of `framesPerBatch` frames
 * (EARSHOT_INGEST_CHUNK_MS / 20) before they go to the event log.
 *
 * This is the hot path (50 frames per second per track per call): `append` decodes the
 * base64 payload straight into a preallocated batch buffer and does integer bookkeeping;
 * no allocation per frame except the buffer that replaces a full one, no closures, no logs.
 *
 * Rules (apps/ingest/README.md has the table):
 * - A batch holds frames with consecutive `chunk` numbers whose timestamps advance by 20 ms
 *   (±9 ms of jitter). Anything else closes the batch first, so a gap is visible between two
 *   batches (their timestamps) instead of being glued over.
 * - Frames are accepted only in increasing chunk order. A chunk already accepted (within the
 *   last 32) is a duplicate; a lower chunk never accepted is late (out of order). Both are
 *   dropped, never reordered: Twilio sends over one TCP connection, so a late frame means a
 *   broken sender, and splicing it into audio already batched (or produced) would only hide that.
 * - Payloads must be exactly 160 bytes (one 20 ms mu-law frame) in standard base64.
 */
export const FRAME_BYTES = 160;
export const FRAME_MS = 20;
/** base64 length of 160 bytes: 53 full groups plus one group with '==' padding. */
const FRAME_BASE64_LENGTH = 216;
const EQUALS = 61;
const JITTER_MS = 9;
const WINDOW = 31;

export const APPEND_ACCEPTED = 0;
export const APPEND_DUPLICATE = 1;
export const APPEND_OUT_OF_ORDER = 2;
export const APPEND_INVALID_BASE64 = 3;
export const APPEND_PAYLOAD_SIZE = 4;
export type AppendResult = 0 | 1 | 2 | 3 | 4;

export interface AudioBatch {
  readonly track: number;
  readonly firstChunk: number;
  readonly lastChunk: number;
  readonly timestampMs: number;
  readonly durationMs: number;
  readonly frames: number;
  readonly payload: Buffer;
}

/** Receives closed batches (the session). An object, not a callback, so nothing is bound per batch. */
export interface BatchSink {
  onBatch(batch: AudioBatch): void;
}

export class TrackBatcher {
  private buffer: Buffer;
  private frames = 0;
  private firstChunk = 0;
  private lastChunk = 0;
  private firstTimestamp = 0;
  private lastTimestamp = 0;
  /** Highest chunk accepted (-1: none yet) and a bitmask of the 31 chunks below it that were accepted. */
  private highest = -1;
  private window = 0;
  /** `frames` as seen by the last `flushIfStale` call, to find batches that stopped growing. */
  private framesAtLastCheck = 0;

  constructor(
    readonly track: number,
    private readonly framesPerBatch: number,
    private readonly sink: BatchSink,
  ) {
    this.buffer = Buffer.allocUnsafe(framesPerBatch * FRAME_BYTES);
  }

  append(chunk: number, timestampMs: number, payload: string): AppendResult {
    if (chunk <= this.highest) {
      const behind = this.highest - chunk;
      if (behind === 0 || (behind <= WINDOW && (this.window & (1 << (behind - 1))) !== 0)) return APPEND_DUPLICATE;
      return APPEND_OUT_OF_ORDER;
    }
    if (
      payload.length !== FRAME_BASE64_LENGTH ||
      payload.charCodeAt(FRAME_BASE64_LENGTH - 1) !== EQUALS ||
      payload.charCodeAt(FRAME_BASE64_LENGTH - 2) !== EQUALS
    ) {
      return classifyPayload(payload);
    }
    if (this.frames > 0) {
      const drift = timestampMs - this.lastTimestamp - FRAME_MS;
      if (chunk !== this.lastChunk + 1 || drift > JITTER_MS || drift < -JITTER_MS) this.flush();
    }
    const offset = this.frames * FRAME_BYTES;
    // Node's decoder skips characters outside the alphabet, so a short write means bad base64.
    if (this.buffer.write(payload, offset, FRAME_BYTES, 'base64') !== FRAME_BYTES) return APPEND_INVALID_BASE64;
    if (this.frames === 0) {
      this.firstChunk = chunk;
      this.firstTimestamp = timestampMs;
    }
    this.lastChunk = chunk;
    this.lastTimestamp = timestampMs;
    this.frames++;
    const ahead = this.highest < 0 ? WINDOW + 1 : chunk - this.highest;
    this.window = ahead > WINDOW ? 0 : ((this.window << ahead) | (1 << (ahead - 1))) & 0x7fffffff;
    this.highest = chunk;
    if (this.frames === this.framesPerBatch) this.flush();
    return APPEND_ACCEPTED;
  }

  /** Hands the open batch (if any) to the sink. */
  flush(): void {
    const frames = this.frames;
    if (frames === 0) return;
    const full = frames === this.framesPerBatch;
    const payload = full ? this.buffer : this.buffer.subarray(0, frames * FRAME_BYTES);
    // The sink keeps the buffer until the log acknowledges it: start a new one.
    this.buffer = Buffer.allocUnsafe(this.framesPerBatch * FRAME_BYTES);
    this.frames = 0;
    this.framesAtLastCheck = 0;
    this.sink.onBatch({
      track: this.track,
      firstChunk: this.firstChunk,
      lastChunk: this.lastChunk,
      timestampMs: this.firstTimestamp,
      durationMs: frames * FRAME_MS,
      frames,
      payload,
    });
  }

  /** Flushes a partial batch that did not grow since the previous call (a track gone quiet). */
  flushIfStale(): void {
    if (this.frames > 0 && this.frames === this.framesAtLastCheck) this.flush();
    else this.framesAtLastCheck = this.frames;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Off the hot path: tells invalid base64 from a valid payload of the wrong size. */
export function classifyPayload(payload: string): AppendResult {
  if (payload.length % 4 !== 0 || !BASE64.test(payload)) return APPEND_INVALID_BASE64;
  return APPEND_PAYLOAD_SIZE;
}
