import { existsSync } from 'node:fs';
import { EarshotError } from '../../../shared/src/errors.js';
import { DEFAULT_ENDPOINTING, endpointOptions } from './endpointer.js';
import { modelPaths } from './model-files.js';
import { RecognizerPool } from './recognizer-pool.js';
import { VadRecognizerStream } from './recognizer-stream.js';
import { SileroVad } from './silero-vad.js';
import type { EndpointOptions, Language, SpeechEngine, StreamOptions } from './speech-engine.port.js';

/**
 * The speech engine we ship: Silero VAD v5 endpointing inline (cheap), Moonshine tiny in a
 * worker-thread pool. Build one per process (the composition root does) and share it across
 * every stream: one VAD session on this thread, one Moonshine session set per worker. Models
 * load lazily on first use (or on `ready()`), from files `ensureModels` put in `modelsDir`;
 * nothing is ever downloaded here.
 */
export interface MoonshineEngineOptions {
  /** Where `ensureModels` put the model files (EARSHOT_MODELS_DIR). */
  readonly modelsDir: string;
  /** Model worker threads (default 1). */
  readonly workers?: number;
  /** Utterances waiting for a worker beyond which pushes reject, retriable (default 64). */
  readonly maxQueue?: number;
  /** Threads per inference (default 1). */
  readonly intraOpNumThreads?: number;
  /** Endpointing defaults for every stream (see DEFAULT_ENDPOINTING). */
  readonly endpointing?: Partial<EndpointOptions>;
  /**
   * Start decoding in a pause before its endpoint is confirmed (default true; effective when
   * trailingPadMs < minSilenceMs). Same output either way: off only for comparisons.
   */
  readonly speculate?: boolean;
}

export const MOONSHINE_ENGINE_NAME = 'moonshine';
export const MOONSHINE_MODEL_NAME = 'moonshine-tiny-en-quantized';
const LANGUAGES: readonly Language[] = ['en-US'];

export function createMoonshineEngine(options: MoonshineEngineOptions): SpeechEngine {
  const paths = modelPaths(options.modelsDir);
  const defaults = endpointOptions(DEFAULT_ENDPOINTING, options.endpointing);
  const pool = new RecognizerPool({
    encoderPath: paths.encoder,
    decoderPath: paths.decoder,
    workers: options.workers,
    maxQueue: options.maxQueue,
    intraOpNumThreads: options.intraOpNumThreads,
  });
  let vad: Promise<SileroVad> | undefined;
  let vadLoaded: SileroVad | undefined; // for stats()
  let closed = false;

  const checkFiles = () => {
    const missing = [paths.vad, paths.encoder, paths.decoder].filter((path) => !existsSync(path));
    if (missing.length > 0)
      throw new EarshotError(
        'EARSHOT_INFRA_PREREQUISITE_MISSING',
        `speech models missing in ${paths.dir} (${missing.length} files); fetch them with ensureModels() ` +
          `(node --import tsx scripts/models/fetch-models.ts ${paths.dir})`,
        { fields: { missing } },
      );
  };
  const loadVad = (): Promise<SileroVad> => {
    if (closed) return Promise.reject(new Error('speech engine is closed'));
    if (!vad) {
      vad = Promise.resolve().then(() => {
        checkFiles();
        return SileroVad.load(paths.vad).then((loaded) => {
          vadLoaded = loaded;
          return loaded;
        });
      });
      vad.catch(() => {
        vad = undefined; // let a later call retry (e.g. after the models were fetched)
      });
    }
    return vad;
  };
  const backend = {
    vad: loadVad,
    recognize: (audio: Float32Array, maxTokens: number) => pool.recognize(audio, maxTokens),
    speculate: (audio: Float32Array, maxTokens: number) => (options.speculate === false ? undefined : pool.speculate(audio, maxTokens)),
  };

  return {
    name: MOONSHINE_ENGINE_NAME,
    model: MOONSHINE_MODEL_NAME,
    languages: LANGUAGES,
    wordTimings: 'proportional',
    createStream(streamOptions: StreamOptions = {}) {
      const language = streamOptions.language ?? 'en-US';
      const startSample = streamOptions.startSample ?? 0;
      if (!Number.isSafeInteger(startSample) || startSample < 0)
        throw new EarshotError('EARSHOT_USAGE', `startSample must be a non-negative integer, not ${startSample}`);
      if (!LANGUAGES.includes(language))
        throw new EarshotError('EARSHOT_USAGE', `language ${language} is not supported; supported: ${LANGUAGES.join(', ')}`);
      return new VadRecognizerStream(
        backend,
        endpointOptions(defaults, streamOptions.endpointing),
        streamOptions.detailedTokens ?? false,
        startSample,
      );
    },
    async ready() {
      checkFiles();
      await Promise.all([loadVad(), pool.ready()]);
    },
    stats: () => ({ ...pool.stats(), ...(vadLoaded ? { vad: { ...vadLoaded.counts } } : {}) }),
    async close() {
      closed = true;
      await pool.close();
      const loaded = vad;
      vad = undefined;
      if (loaded) await (await loaded.catch(() => undefined))?.close();
    },
  };
}
