/**
 * The speech-recognition port (SPEC 6): one engine per process, one recognizer stream per
 * participant track. Audio goes in as it arrives (8 kHz mu-law, any chunk size) and utterances
 * come out when their endpoint is detected. Another model or engine is added by implementing
 * this interface; `createMoonshineEngine` (moonshine-engine.ts) is the one we have.
 */
export type Language = 'en-US';

export interface SpeechEngine {
  /** Engine name for the utterance event (e.g. `moonshine`). */
  readonly name: string;
  /** Model name for the utterance event (e.g. `moonshine-tiny-en-quantized`). */
  readonly model: string;
  readonly languages: readonly Language[];
  /** `model`: word times come from the model; `proportional`: spread over the utterance by length. */
  readonly wordTimings: 'model' | 'proportional';
  /** Starts a stream; throws EARSHOT_USAGE for a language the engine does not serve. */
  createStream(options?: StreamOptions): RecognizerStream;
  /** Loads the models now rather than on the first audio (optional; start-up uses it). */
  ready(): Promise<void>;
  /** Queue and worker counts, for metrics. */
  stats(): EngineStats;
  /** Stops the workers and releases the models; streams fail afterwards. */
  close(): Promise<void>;
}

export interface StreamOptions {
  readonly language?: Language;
  /** Word tokens with times on each utterance (SPEC 6 `detailedToken`). */
  readonly detailedTokens?: boolean;
  /** Overrides of the engine's endpointing defaults for this stream. */
  readonly endpointing?: Partial<EndpointOptions>;
  /**
   * Track position (8 kHz samples) of the first sample pushed, for a stream resumed by replaying
   * audio from `pendingFromSample` after a restart (default 0). Positions and times are then
   * reported on the track's clock and VAD windows stay on the track's 256-sample grid. A replay
   * from the same point is deterministic; compared with the uninterrupted stream the texts
   * match but a start may move by a few windows (Silero's state remembers seconds of audio and
   * the resumed one starts cold; measured ≤ 160 ms on the corpus).
   */
  readonly startSample?: number;
}

export interface EndpointOptions {
  /** Silero speech probability at which speech starts (0..1). */
  readonly threshold: number;
  /** Probability below which a window counts as silence (default threshold - 0.15). */
  readonly negativeThreshold: number;
  /** Silence that ends an utterance. */
  readonly minSilenceMs: number;
  /** Audio kept before the detected start of speech for the model. */
  readonly speechPadMs: number;
  /**
   * Audio kept after the detected end of speech for the model. When it is shorter than
   * `minSilenceMs`, the utterance's audio is complete before its endpoint is confirmed, so the
   * model starts on it speculatively in the pause (at `speculateAfterMs`); the text is published only if
   * the pause then lasts `minSilenceMs` (else it is thrown away and speech goes on). The output
   * is the same as without speculation; only the wait for the text shrinks.
   */
  readonly trailingPadMs: number;
  /**
   * Digital silence appended to the model's input after the trailing audio. The model reads a
   * word's end better with some silence after it; silence made here need not be waited for, so
   * the decode can start sooner in the pause. 0: none.
   */
  readonly silencePadMs: number;
  /**
   * Pause length at which the speculative decode starts (never before the trailing audio is
   * in; none at all if that is not before `minSilenceMs`). Sooner gives the model more of the
   * pause; later wastes fewer decodes on pauses that do not end the utterance.
   */
  readonly speculateAfterMs: number;
  /**
   * A pause this long ends the utterance early when the model's text of it ends a sentence
   * (`.`, `?`, `!`); other pauses still need `minSilenceMs`. The stream decides from the text of
   * exactly the audio the utterance would get, and reads no further audio until it knows, so
   * the same audio always gives the same utterances. 0: off. Between `trailingPadMs` and
   * `minSilenceMs`.
   */
  readonly sentenceEndSilenceMs: number;
  /** Shorter bursts of speech are dropped (clicks, breaths). */
  readonly minSpeechMs: number;
  /** Longer speech is cut at its quietest window in the last seconds before this length. */
  readonly maxUtteranceMs: number;
}

export interface RecognizerStream {
  /**
   * Feeds 8 kHz mu-law audio. The audio is taken at once (the caller need not await before the
   * next push); the promise resolves, in push order, with the utterances whose endpoint fell in
   * this chunk, once their text is ready. Rejects if the stream or the model failed, or if the
   * engine's queue is full (`retriable`).
   */
  push(mulaw: Uint8Array): Promise<Utterance[]>;
  /**
   * Ends the utterance in progress at the last sample pushed (stop-streaming: the last words
   * are never lost) and resolves with it, after every earlier push has resolved. Pushing after
   * a flush starts endpointing afresh; times keep counting from the first sample.
   */
  flush(): Promise<Utterance[]>;
  /** Track position one past the last sample pushed (`startSample` + samples pushed). */
  readonly samples: number;
  /**
   * The earliest track position whose audio is still needed for output not yet delivered: the
   * padded start of the speech in progress, of utterances waiting for their text, or (in a
   * pause) the padding the next utterance may take. Replaying from here (with `startSample`)
   * reproduces what is pending; audio before it can be forgotten. Always ≤ `samples`; read it
   * any time (it lags pushes still being processed, which only makes it smaller).
   */
  readonly pendingFromSample: number;
}

export interface Utterance {
  /** Speech start and end (as detected, without padding), ms from the first sample pushed. */
  readonly startMs: number;
  readonly endMs: number;
  /** Sample-exact start and end (8 kHz samples from the first sample pushed): stable ids. */
  readonly startSample: number;
  readonly endSample: number;
  readonly text: string;
  /** What ended it: a pause, the maximum length, or `flush()`. */
  readonly endpoint: 'silence' | 'sentence-end' | 'max-length' | 'flush';
  /** Only with `detailedTokens`; see `SpeechEngine.wordTimings` for how times are made. */
  readonly tokens?: readonly WordToken[];
}

export interface WordToken {
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
}

export interface EngineStats {
  readonly workers: number;
  /** Jobs on a worker now (speculative ones included). */
  readonly running: number;
  /** Utterances with a confirmed endpoint waiting for a worker (what `maxQueue` bounds). */
  readonly queued: number;
  readonly maxQueue: number;
  /** Speculative decodes waiting for a worker (they run only when no confirmed one waits). */
  readonly speculative?: number;
  /**
   * Cumulative: speculative decodes taken, promoted (endpoint confirmed), cancelled before a
   * worker took them, run without ever being confirmed (wasted model time), and of those,
   * stopped on a worker when their pause ended in speech (the rest of their decode saved).
   */
  readonly speculation?: {
    readonly started: number;
    readonly promoted: number;
    readonly cancelled: number;
    readonly ranUnconfirmed: number;
    readonly aborted: number;
  };
  /** Cumulative: VAD windows and the batched runs they took (mean batch = windows / runs). */
  readonly vad?: { readonly windows: number; readonly runs: number };
}
