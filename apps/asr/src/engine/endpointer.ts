import type { EndpointOptions } from './speech-engine.port.js';

/**
 * Turns per-window speech probabilities into speech segments (sample positions at 8 kHz). Pure
 * and synchronous, so it is tested without a model. Hysteresis as in Silero's own iterator:
 * speech starts at a window ≥ `threshold`, and ends once windows stay below
 * `negativeThreshold` for `minSilenceMs`; the end is the start of the first silent window.
 * Speech longer than `maxUtteranceMs` is cut at its quietest window in the last third, so a
 * monologue still produces text every few seconds and the model never sees more than it knows.
 */
export const DEFAULT_ENDPOINTING: EndpointOptions = Object.freeze({
  threshold: 0.5,
  negativeThreshold: 0.35,
  // 400 ms: within 0.3 WER points of 500 ms on the accuracy corpus and 100 ms sooner; like a
  // listener, it also ends an utterance at the pause between two sentences of one turn.
  // 300-350 ms split sentences at commas and cost ~3 points (docs/benchmarks.md, change 9).
  minSilenceMs: 400,
  speechPadMs: 500,
  // No real audio after the detected end (which already lags the true end by ~50-150 ms), but
  // 200 ms of digital silence: measured WER 14.7 / 30.5 % against 15.1 / 31.0 % with 200 ms of
  // real audio, and nothing to wait for, so the decode can start early in the pause.
  trailingPadMs: 0,
  silencePadMs: 200,
  // Speculate once the pause has lasted 150 ms: the decode (~100 ms) is done well before the
  // endpoint, and shorter pauses inside speech cost no model time (at 0 ms, more than half the
  // speculative decodes were thrown away at 10 calls).
  speculateAfterMs: 150,
  sentenceEndSilenceMs: 0,
  minSpeechMs: 250,
  maxUtteranceMs: 20_000,
});

const RATE = 8000;

export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly endpoint: 'silence' | 'sentence-end' | 'max-length' | 'flush';
}

/** The endpointing settings of the config (unset ones keep the engine's defaults). */
export function endpointingFromConfig(config: {
  readonly EARSHOT_ASR_MIN_SILENCE_MS?: number | undefined;
  readonly EARSHOT_ASR_TRAILING_PAD_MS?: number | undefined;
  readonly EARSHOT_ASR_SILENCE_PAD_MS?: number | undefined;
  readonly EARSHOT_ASR_SPECULATE_AFTER_MS?: number | undefined;
  readonly EARSHOT_ASR_SENTENCE_END_SILENCE_MS?: number | undefined;
}): Partial<EndpointOptions> {
  return {
    ...(config.EARSHOT_ASR_SENTENCE_END_SILENCE_MS !== undefined
      ? { sentenceEndSilenceMs: config.EARSHOT_ASR_SENTENCE_END_SILENCE_MS }
      : {}),
    ...(config.EARSHOT_ASR_MIN_SILENCE_MS !== undefined ? { minSilenceMs: config.EARSHOT_ASR_MIN_SILENCE_MS } : {}),
    ...(config.EARSHOT_ASR_TRAILING_PAD_MS !== undefined ? { trailingPadMs: config.EARSHOT_ASR_TRAILING_PAD_MS } : {}),
    ...(config.EARSHOT_ASR_SILENCE_PAD_MS !== undefined ? { silencePadMs: config.EARSHOT_ASR_SILENCE_PAD_MS } : {}),
    ...(config.EARSHOT_ASR_SPECULATE_AFTER_MS !== undefined ? { speculateAfterMs: config.EARSHOT_ASR_SPECULATE_AFTER_MS } : {}),
  };
}

export function endpointOptions(base: EndpointOptions, override: Partial<EndpointOptions> = {}): EndpointOptions {
  const o = { ...base, ...override };
  if (override.threshold !== undefined && override.negativeThreshold === undefined)
    o.negativeThreshold = Math.max(0.01, Math.round((o.threshold - 0.15) * 1000) / 1000);
  const bad = (what: string) => new RangeError(`endpointing: ${what}`);
  if (!(o.threshold > 0 && o.threshold < 1)) throw bad(`threshold must be in (0, 1), not ${o.threshold}`);
  if (!(o.negativeThreshold > 0 && o.negativeThreshold <= o.threshold))
    throw bad(`negativeThreshold must be in (0, threshold], not ${o.negativeThreshold}`);
  for (const key of [
    'minSilenceMs',
    'speechPadMs',
    'trailingPadMs',
    'silencePadMs',
    'speculateAfterMs',
    'minSpeechMs',
    'sentenceEndSilenceMs',
  ] as const)
    if (!(o[key] >= 0 && o[key] <= 10_000)) throw bad(`${key} must be 0..10000, not ${o[key]}`);
  if (o.sentenceEndSilenceMs !== 0 && !(o.sentenceEndSilenceMs >= o.trailingPadMs && o.sentenceEndSilenceMs < o.minSilenceMs))
    throw bad(
      `sentenceEndSilenceMs must be 0 (off) or from trailingPadMs (${o.trailingPadMs}) to below minSilenceMs (${o.minSilenceMs}), not ${o.sentenceEndSilenceMs}`,
    );
  if (!(o.maxUtteranceMs >= 2000 && o.maxUtteranceMs <= 60_000)) throw bad(`maxUtteranceMs must be 2000..60000, not ${o.maxUtteranceMs}`);
  return o;
}

/**
 * Pause length (ms) at which a stream starts its speculative decode: `speculateAfterMs`, but
 * never before the trailing audio is in; undefined (no speculation) when that is not before the
 * endpoint, where it could not help.
 */
export function speculationStartMs(options: EndpointOptions): number | undefined {
  const at = Math.max(options.trailingPadMs, options.speculateAfterMs);
  return at < options.minSilenceMs ? at : undefined;
}

export class Endpointer {
  private readonly minSilence: number;
  private readonly minSpeech: number;
  private readonly maxLength: number;
  /** Start of speech in progress, or -1. */
  private speechStart = -1;
  /** Start of the silence in progress inside speech, or -1. */
  private silenceStart = -1;
  /** Probabilities and starts of the windows of the speech in progress (for max-length cuts). */
  private probs: number[] = [];
  private starts: number[] = [];

  constructor(
    private readonly options: EndpointOptions,
    private readonly window: number,
  ) {
    this.minSilence = Math.round((options.minSilenceMs * RATE) / 1000);
    this.minSpeech = Math.round((options.minSpeechMs * RATE) / 1000);
    this.maxLength = Math.round((options.maxUtteranceMs * RATE) / 1000);
  }

  get inSpeech(): boolean {
    return this.speechStart >= 0;
  }

  /** Start of the speech in progress (or -1): audio before it (less padding) can be dropped. */
  get currentStart(): number {
    return this.speechStart;
  }

  /**
   * The segment that would end here if the pause in progress lasts `minSilenceMs`: speech
   * start to the first silent window. Undefined outside a pause, or when that segment would be
   * dropped as too short. Stable for as long as the pause lasts; a window ≥ `threshold` ends
   * the pause (and the candidate), a max-length cut replaces it.
   */
  get pause(): Segment | undefined {
    if (this.speechStart < 0 || this.silenceStart < 0 || this.silenceStart - this.speechStart < this.minSpeech) return undefined;
    return { start: this.speechStart, end: this.silenceStart, endpoint: 'silence' };
  }

  /** The window [start, start + window) had probability `p`; returns a segment that ended, if any. */
  push(p: number, start: number): Segment | undefined {
    const end = start + this.window;
    if (this.speechStart < 0) {
      if (p >= this.options.threshold) {
        this.speechStart = start;
        this.silenceStart = -1;
        this.probs = [p];
        this.starts = [start];
      }
      return undefined;
    }
    this.probs.push(p);
    this.starts.push(start);
    if (p >= this.options.threshold) this.silenceStart = -1;
    else if (p < this.options.negativeThreshold && this.silenceStart < 0) this.silenceStart = start;
    if (this.silenceStart >= 0 && end - this.silenceStart >= this.minSilence) return this.close(this.silenceStart, 'silence');
    if (end - this.speechStart >= this.maxLength) return this.cut();
    return undefined;
  }

  /** Ends the speech in progress at the pause in progress (`pause`), before `minSilenceMs`. */
  endAtPause(): Segment | undefined {
    const pause = this.pause;
    if (!pause) return undefined;
    return this.close(pause.end, 'sentence-end');
  }

  /** The audio ended at sample `end` (flush): closes the speech in progress, if any. */
  finish(end: number): Segment | undefined {
    if (this.speechStart < 0) return undefined;
    return this.close(this.silenceStart >= 0 ? this.silenceStart : end, 'flush');
  }

  private close(end: number, endpoint: Segment['endpoint']): Segment | undefined {
    const start = this.speechStart;
    this.speechStart = -1;
    this.silenceStart = -1;
    this.probs = [];
    this.starts = [];
    return end - start >= this.minSpeech ? { start, end, endpoint } : undefined;
  }

  /** Cuts at the quietest window of the last third (the latest one on ties); speech goes on from there. */
  private cut(): Segment {
    // probs holds at least maxUtteranceMs / 32 ms ≥ 62 windows here, so `from` ≥ 1.
    const from = Math.floor((this.probs.length * 2) / 3);
    let best = from;
    for (let i = from; i < this.probs.length; i++) if ((this.probs[i] as number) <= (this.probs[best] as number)) best = i;
    const at = this.starts[best] as number;
    const segment: Segment = { start: this.speechStart, end: at, endpoint: 'max-length' };
    this.speechStart = at;
    this.silenceStart = -1;
    this.probs = this.probs.slice(best);
    this.starts = this.starts.slice(best);
    return segment;
  }
}
