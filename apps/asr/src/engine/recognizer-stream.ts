import { mulawToFloat32 } from '../../../shared/src/audio/mulaw.js';
import { Endpointer, type Segment, speculationStartMs } from './endpointer.js';
import { maxTokensFor, type Recognition } from './moonshine.js';
import type { PoolJob } from './recognizer-pool.js';
import { SampleBuffer } from './sample-buffer.js';
import { SileroVad, VAD_WINDOW, type VadState } from './silero-vad.js';
import type { EndpointOptions, RecognizerStream, Utterance, WordToken } from './speech-engine.port.js';

/** What a stream needs from its engine: the shared VAD session and the model pool. */
export interface StreamBackend {
  vad(): Promise<SileroVad>;
  recognize(audio: Float32Array, maxTokens: number): Promise<Recognition>;
  /** A low-priority decode of an endpoint not yet confirmed, or undefined if none can be taken now. */
  speculate(audio: Float32Array, maxTokens: number): PoolJob | undefined;
}

/** A decode started in a pause, for the segment that ends there if the pause lasts. */
interface Speculation {
  readonly start: number;
  readonly end: number;
  readonly from: number;
  readonly to: number;
  readonly job: PoolJob;
}

const SAMPLES_PER_MS = 8;

/**
 * One participant track: 8 kHz mu-law in, utterances out. VAD windows sit on a fixed grid of
 * 256 samples counted from sample 0 of the track, whatever the chunk sizes, and each
 * utterance's audio is bounded by positions on that grid (never by how much audio happened to
 * have arrived), so the same audio gives the same utterances however it is chunked.
 *
 * Pushes are processed strictly in order on a promise chain (VAD calls are async); their result
 * promises also resolve in push order even when the model pool finishes utterances out of order.
 *
 * Speculation (trailingPadMs < minSilenceMs): once a pause has lasted the trailing padding, the
 * audio the utterance would get is complete, so the model starts on it at low priority. If the
 * pause reaches the endpoint, that decode becomes the utterance's (same audio, same text as a
 * decode started then); if speech resumes, or the cut falls elsewhere, it is cancelled or its
 * result ignored. Nothing speculative is ever returned unless its endpoint was confirmed.
 */
export class VadRecognizerStream implements RecognizerStream {
  private readonly audio: SampleBuffer;
  private readonly pad: number;
  private readonly trailingPad: number;
  private readonly silencePad: number;
  /** Pause length (samples) at which to speculate; Infinity when speculation cannot help. */
  private readonly speculateAt: number;
  private speculation: Speculation | undefined;
  /** Pause length (samples) at which a sentence end is decided; Infinity when off. */
  private readonly sentenceEndAt: number;
  /** The pause (its end sample) whose sentence end was decided already: no. */
  private sentenceEndDecided = -1;
  private vadState: VadState = SileroVad.createState();
  private endpointer: Endpointer;
  /** Absolute position of the next VAD window. */
  private windowPos: number;
  /** End of the audio given to the model for the previous utterance: padding never overlaps it. */
  private lastAudioEnd: number;
  private received: number;
  /** Audio start of each utterance handed to the model and not yet delivered, by job number. */
  private readonly undelivered = new Map<number, number>();
  private jobs = 0;
  private processing: Promise<unknown> = Promise.resolve();
  private delivered: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;

  constructor(
    private readonly backend: StreamBackend,
    private readonly options: EndpointOptions,
    private readonly detailedTokens: boolean,
    startSample = 0,
  ) {
    this.pad = Math.round(options.speechPadMs * SAMPLES_PER_MS);
    this.trailingPad = Math.round(options.trailingPadMs * SAMPLES_PER_MS);
    this.silencePad = Math.round(options.silencePadMs * SAMPLES_PER_MS);
    const speculateAfterMs = speculationStartMs(options);
    this.speculateAt = speculateAfterMs === undefined ? Number.POSITIVE_INFINITY : Math.round(speculateAfterMs * SAMPLES_PER_MS);
    this.sentenceEndAt =
      options.sentenceEndSilenceMs > 0 ? Math.round(options.sentenceEndSilenceMs * SAMPLES_PER_MS) : Number.POSITIVE_INFINITY;
    this.endpointer = new Endpointer(options, VAD_WINDOW);
    this.audio = new SampleBuffer(startSample);
    this.received = startSample;
    this.lastAudioEnd = startSample;
    // A resumed stream keeps the track's grid: samples before the first grid point only pad.
    this.windowPos = Math.ceil(startSample / VAD_WINDOW) * VAD_WINDOW;
  }

  get samples(): number {
    return this.received;
  }

  get pendingFromSample(): number {
    const speechStart = this.endpointer.currentStart;
    let from = Math.max(this.lastAudioEnd, (speechStart >= 0 ? speechStart : this.windowPos) - this.pad);
    for (const start of this.undelivered.values()) from = Math.min(from, start);
    return Math.max(this.audio.start, Math.min(from, this.received));
  }

  push(mulaw: Uint8Array): Promise<Utterance[]> {
    const samples = mulawToFloat32(mulaw);
    this.received += samples.length;
    return this.enqueue(() => this.consume(samples));
  }

  flush(): Promise<Utterance[]> {
    return this.enqueue(async () => {
      const end = this.audio.end;
      const segment = this.endpointer.finish(end);
      const jobs = segment ? [this.recognize(segment, end)] : [];
      this.dropSpeculation();
      // Start afresh: new VAD state, windows from here on.
      this.vadState = SileroVad.createState();
      this.endpointer = new Endpointer(this.options, VAD_WINDOW);
      this.windowPos = end;
      this.audio.dropBefore(end - this.pad);
      return jobs;
    });
  }

  private enqueue(step: () => Promise<Job[]>): Promise<Utterance[]> {
    const processed = this.processing.then(() => {
      if (this.failure) throw this.failure;
      return step().catch((error: Error) => {
        this.failure = error; // VAD state is unknown after a failed window: the stream is done
        throw error;
      });
    });
    this.processing = processed.catch(() => undefined);
    const results: Promise<Utterance[]> = processed.then(async (jobs) => {
      try {
        return (await Promise.all(jobs.map((job) => job.utterance))).filter((u): u is Utterance => u !== undefined);
      } finally {
        for (const job of jobs) this.undelivered.delete(job.id);
      }
    });
    // The caller sees a failure through `ordered`, which takes `results` up only once the
    // earlier pushes are delivered: until then a rejection here must not count as unhandled.
    results.catch(() => undefined);
    const ordered = this.delivered.then(
      () => results,
      () => results,
    );
    this.delivered = ordered.catch(() => undefined);
    return ordered;
  }

  private async consume(samples: Float32Array): Promise<Job[]> {
    this.audio.append(samples);
    const jobs: Job[] = [];
    if (this.audio.end - this.windowPos < VAD_WINDOW) return jobs;
    const vad = await this.backend.vad();
    while (this.audio.end - this.windowPos >= VAD_WINDOW) {
      const p = await vad.probability(this.vadState, this.audio.view(this.windowPos, this.windowPos + VAD_WINDOW));
      const segment = this.endpointer.push(p, this.windowPos);
      this.windowPos += VAD_WINDOW;
      if (segment) jobs.push(this.recognize(segment, this.windowPos));
      this.speculate();
      const early = await this.sentenceEnd();
      if (early) jobs.push(this.recognize(early, this.windowPos));
    }
    const speechStart = this.endpointer.currentStart;
    this.audio.dropBefore(Math.max(this.lastAudioEnd, (speechStart >= 0 ? speechStart : this.windowPos) - this.pad) - VAD_WINDOW);
    return jobs;
  }

  /** `bound`: audio known so far on the window grid (or the end of the audio on flush). */
  private recognize(segment: Segment, bound: number): Job {
    const from = Math.max(segment.start - this.pad, this.lastAudioEnd, this.audio.start);
    const to = segment.endpoint === 'max-length' ? segment.end : Math.min(segment.end + this.trailingPad, bound);
    this.lastAudioEnd = to;
    const id = this.jobs++;
    this.undelivered.set(id, from);
    const speculated = this.speculation;
    let recognition: Promise<Recognition>;
    if (
      speculated &&
      speculated.start === segment.start &&
      speculated.end === segment.end &&
      speculated.from === from &&
      speculated.to === to
    ) {
      this.speculation = undefined;
      speculated.job.promote(); // confirmed: it now waits with (or runs before) the other confirmed decodes
      recognition = speculated.job.result;
    } else {
      this.dropSpeculation();
      recognition = recognizeWhenAdmitted(this.backend, this.modelInput(from, to), maxTokensFor((to - from) / 8000));
    }
    const utterance = recognition.then((recognition) => {
      if (recognition.text === '') return undefined;
      const startMs = Math.round(segment.start / SAMPLES_PER_MS);
      const endMs = Math.round(segment.end / SAMPLES_PER_MS);
      const result: Utterance = {
        startMs,
        endMs,
        startSample: segment.start,
        endSample: segment.end,
        text: recognition.text,
        endpoint: segment.endpoint,
        ...(this.detailedTokens ? { tokens: proportionalWordTimes(recognition.text, startMs, endMs) } : {}),
      };
      return result;
    });
    // Handled by the push that delivers it (enqueue); marked now because that handler is attached
    // only after the push's later VAD windows, and a rejection in between (a full model queue)
    // would otherwise count as unhandled and end the process.
    utterance.catch(() => undefined);
    return { id, utterance };
  }

  /**
   * After each VAD window: keeps at most one speculation, for the pause in progress. Its audio
   * is exactly what `recognize` would take if the pause became the endpoint now or later (the
   * trailing padding is on the grid by then, and the previous utterance's end cannot move).
   */
  private speculate(): void {
    const pause = this.endpointer.pause;
    const current = this.speculation;
    if (current && (!pause || pause.start !== current.start || pause.end !== current.end)) this.dropSpeculation();
    if (!pause || this.speculation || this.windowPos - pause.end < this.speculateAt) return;
    const from = Math.max(pause.start - this.pad, this.lastAudioEnd, this.audio.start);
    const to = pause.end + this.trailingPad;
    if (to > this.audio.end) return;
    const job = this.backend.speculate(this.modelInput(from, to), maxTokensFor((to - from) / 8000));
    if (job) this.speculation = { start: pause.start, end: pause.end, from, to, job };
  }

  /**
   * Once a pause has lasted `sentenceEndSilenceMs`: the text of the utterance that would end
   * there (the speculation's, promoted, or a decode of the same audio) decides. If it ends a
   * sentence, the utterance ends now; else the pause needs `minSilenceMs` as usual (the decode
   * is kept for it). No later window is read before the text is known, so the split never
   * depends on how fast the model was: a replay gives the same utterances.
   */
  private async sentenceEnd(): Promise<Segment | undefined> {
    const pause = this.endpointer.pause;
    if (!pause || pause.end === this.sentenceEndDecided || this.windowPos - pause.end < this.sentenceEndAt) return undefined;
    this.sentenceEndDecided = pause.end;
    const from = Math.max(pause.start - this.pad, this.lastAudioEnd, this.audio.start);
    const to = pause.end + this.trailingPad;
    if (to > this.audio.end) return undefined;
    let current = this.speculation;
    if (!current || current.start !== pause.start || current.end !== pause.end || current.from !== from || current.to !== to) {
      this.dropSpeculation();
      const result = recognizeWhenAdmitted(this.backend, this.modelInput(from, to), maxTokensFor((to - from) / 8000));
      current = { start: pause.start, end: pause.end, from, to, job: { result, promote: () => {}, cancel: () => {} } };
      this.speculation = current;
    } else {
      current.job.promote(); // the text is needed now: it waits with the confirmed decodes
    }
    const text = (await current.job.result).text;
    return endsSentence(text) ? this.endpointer.endAtPause() : undefined;
  }

  /** The utterance's audio [from, to) as the model gets it: with `silencePadMs` of zeros after it. */
  private modelInput(from: number, to: number): Float32Array {
    if (this.silencePad === 0) return this.audio.copy(from, to);
    const input = new Float32Array(to - from + this.silencePad);
    input.set(this.audio.view(from, to));
    return input;
  }

  private dropSpeculation(): void {
    this.speculation?.job.cancel();
    this.speculation = undefined;
  }
}

/** The model's text ends a sentence: `.`, `?` or `!` (closing quotes and brackets aside), not `...`. */
export function endsSentence(text: string): boolean {
  const t = text.trimEnd().replace(/["')\]]+$/, '');
  return /[.?!]$/.test(t) && !t.endsWith('...');
}

interface Job {
  readonly id: number;
  readonly utterance: Promise<Utterance | undefined>;
}

/**
 * Moonshine gives no word times: each word gets a share of the speech span proportional to its
 * length plus one (for the gap after it). Good enough to place a word within a second or so.
 */
export function proportionalWordTimes(text: string, startMs: number, endMs: number): WordToken[] {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const total = words.reduce((sum, w) => sum + w.length + 1, 0);
  const span = endMs - startMs;
  let at = 0;
  return words.map((word) => {
    const start = startMs + Math.round((span * at) / total);
    at += word.length + 1;
    const end = startMs + Math.round((span * (at - 1)) / total);
    return { text: word, startMs: start, endMs: Math.max(start, end) };
  });
}

/**
 * A confirmed utterance is never given up because the model's queue is full: the decode is
 * offered again until the pool takes it (the pool refuses to bound its memory; the consumer's
 * backpressure stops reading new audio meanwhile, so the waiting is bounded by the streams in
 * flight). Any other failure (engine closed, worker dead) still rejects.
 */
export const ADMISSION_RETRY_MS = 25;

export async function recognizeWhenAdmitted(backend: StreamBackend, audio: Float32Array, maxTokens: number): Promise<Recognition> {
  for (;;) {
    try {
      return await backend.recognize(audio, maxTokens);
    } catch (error) {
      if ((error as { code?: string }).code !== 'EARSHOT_ASR_OVERLOADED') throw error;
      await new Promise((resolve) => setTimeout(resolve, ADMISSION_RETRY_MS));
    }
  }
}
