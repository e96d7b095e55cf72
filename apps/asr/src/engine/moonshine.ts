import { readFile } from 'node:fs/promises';
import llamaTokenizer from 'llama-tokenizer-js';
import * as ort from 'onnxruntime-node';
import { splitMergedDecoder } from './decoder-graph.js';
import { hasInt8DotProduct, rewriteEncoder } from './encoder-graph.js';

/**
 * Moonshine tiny (quantized ONNX export) on onnxruntime-node: encoder once per utterance, then
 * the merged decoder step by step with its KV cache, greedy. Recipe measured in NOTES "Speech
 * recognition": start token 1, end token 2, end forbidden at the first step (otherwise it
 * sometimes returns nothing), encoder-side cache taken from step 0 only. Token ids are LLaMA
 * SentencePiece ids. `session.run` is synchronous native work behind a setImmediate, so this
 * runs in a worker thread (moonshine.worker.mjs), never on the thread that serves calls.
 */
const START = 1;
const END = 2;
const LAYERS = 6;
const HEADS = 8;
const HEAD_DIM = 36;

const LATER_STEP_OUTPUTS = [
  'logits',
  ...Array.from({ length: LAYERS }, (_, l) => [`present.${l}.decoder.key`, `present.${l}.decoder.value`]).flat(),
];

/** ~6.5 tokens a second of speech is generous for English (the reference code uses 6). */
export const TOKENS_PER_SECOND = 6.5;

export interface MoonshineOptions {
  readonly encoderPath: string;
  readonly decoderPath: string;
  /** Threads of one inference (default 1: the pool scales by workers, not by threads). */
  readonly intraOpNumThreads?: number;
  /**
   * How the decoder runs (the older ones only to benchmark against, docs/benchmarks.md):
   * - `split-signed-first`: `split-int8` with the first-step graph's int8 weights shifted from
   *   uint8 to int8 (same numbers, the CPU's VNNI int8 kernels, as the encoder's `signed`); the
   *   default where the CPU has VNNI (`hasInt8DotProduct`);
   * - `split-signed`: both graphs shifted (later steps measured no faster, docs/benchmarks.md);
   * - `split-int8`: the merged decoder split into a first-step and a later-step graph, output
   *   projection in int8 (decoder-graph.ts); the default elsewhere;
   * - `folded`: the merged decoder, its quantized constant weights dequantized once at load;
   * - `merged`: the merged decoder as shipped (a DequantizeLinear of the projection on every token).
   */
  readonly decoder?: DecoderVariant;
  /**
   * How the encoder runs (encoder-graph.ts; docs/benchmarks.md "Change 7: the encoder"):
   * - `as-shipped`: the downloaded graph's nodes and weights;
   * - `signed`: its int8 layers' weights shifted from uint8 to int8 (same numbers, the CPU's
   *   VNNI int8 kernels); the default where the CPU has VNNI (`hasInt8DotProduct`);
   * - `signed-conv2`: also the second conv in int8 (a dynamically quantized input).
   */
  readonly encoder?: EncoderVariant;
  /**
   * Declare the batch (and the decoder's new-token) size as 1 in the graphs' inputs, so
   * onnxruntime folds the shape arithmetic built on them (decoder-graph.ts): less work per run,
   * the same tokens on the corpus call (logits move in their last bits). Default true; false
   * only to benchmark against. The `merged` and `folded` decoders are not rewritten.
   */
  readonly batchOfOne?: boolean;
}

export type DecoderVariant = 'split-signed-first' | 'split-signed' | 'split-int8' | 'folded' | 'merged';
export type EncoderVariant = 'as-shipped' | 'signed' | 'signed-conv2';

export function defaultDecoderVariant(): DecoderVariant {
  return hasInt8DotProduct() ? 'split-signed-first' : 'split-int8';
}

export function defaultEncoderVariant(): EncoderVariant {
  return hasInt8DotProduct() ? 'signed' : 'as-shipped';
}

/** The merged decoder, or its two steps when split. */
type DecoderSessions =
  | { readonly merged: ort.InferenceSession }
  | { readonly first: ort.InferenceSession; readonly later: ort.InferenceSession };

export interface Recognition {
  readonly text: string;
  readonly tokenIds: readonly number[];
  /** Why decoding stopped: the end token, the token budget, or a repetition loop. */
  readonly stop: 'end' | 'max-tokens' | 'repetition';
}

export class Moonshine {
  private constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly decoder: DecoderSessions,
  ) {}

  static async load(options: MoonshineOptions): Promise<Moonshine> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpNumThreads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    };
    const variant = options.decoder ?? defaultDecoderVariant();
    const batchOfOne = options.batchOfOne ?? true;
    // The decoder's output projection (the tied embedding, 288 × 32768) is stored as uint8
    // behind a DequantizeLinear that onnxruntime keeps for QDQ-aware providers, so every token
    // dequantized 9.4 M weights again (~60 % of a step, profiled). With QDQ handling off,
    // constant folding does such constant work once, at load (`folded`: −32 % CPU); `split-int8`
    // removes that node altogether (docs/benchmarks.md).
    const decoderOptions = variant === 'merged' ? sessionOptions : { ...sessionOptions, extra: { session: { disable_quant_qdq: '1' } } };
    const loadDecoder = async (): Promise<DecoderSessions> => {
      if (variant === 'merged' || variant === 'folded')
        return { merged: await ort.InferenceSession.create(options.decoderPath, decoderOptions) };
      const split = splitMergedDecoder(await readFile(options.decoderPath), {
        int8Projection: true,
        batchOfOne,
        signedSteps: variant === 'split-signed' ? ['first', 'later'] : variant === 'split-signed-first' ? ['first'] : [],
      });
      const [first, later] = await Promise.all([
        ort.InferenceSession.create(split.first, decoderOptions),
        ort.InferenceSession.create(split.later, decoderOptions),
      ]);
      return { first, later };
    };
    const loadEncoder = async (): Promise<ort.InferenceSession> => {
      const encoderVariant = options.encoder ?? defaultEncoderVariant();
      if (encoderVariant === 'as-shipped' && !batchOfOne) return ort.InferenceSession.create(options.encoderPath, sessionOptions);
      const rewritten = rewriteEncoder(await readFile(options.encoderPath), {
        batchOfOne,
        signedWeights: encoderVariant !== 'as-shipped',
        int8Convs: encoderVariant === 'signed-conv2' ? ['/conv2/Conv'] : [],
      });
      return ort.InferenceSession.create(rewritten, sessionOptions);
    };
    const [encoder, decoder] = await Promise.all([loadEncoder(), loadDecoder()]);
    return new Moonshine(encoder, decoder);
  }

  /** The encoder alone (`last_hidden_state`), for recognize() and to benchmark it. */
  async encode(audio: Float32Array): Promise<ort.Tensor> {
    const encoded = await this.encoder.run({ input_values: new ort.Tensor('float32', audio, [1, audio.length]) });
    return encoded.last_hidden_state as ort.Tensor;
  }

  /**
   * `audio`: 16 kHz mono float samples of one utterance. `signal`, when aborted, stops the
   * decode at the next model run (a later decoder step is ~4 ms): it rejects with the signal's reason.
   */
  async recognize(audio: Float32Array, maxTokens = maxTokensFor(audio.length / 16000), signal?: AbortSignal): Promise<Recognition> {
    signal?.throwIfAborted();
    const hidden = await this.encode(audio);
    const past: Record<string, ort.Tensor> = {};
    const decoder = this.decoder;
    if ('merged' in decoder) {
      const empty = new ort.Tensor('float32', new Float32Array(0), [1, HEADS, 0, HEAD_DIM]);
      for (let l = 0; l < LAYERS; l++) {
        for (const side of ['decoder', 'encoder']) for (const kv of ['key', 'value']) past[`past_key_values.${l}.${side}.${kv}`] = empty;
      }
    }
    const ids: number[] = [];
    let token = START;
    let stop: Recognition['stop'] = 'max-tokens';
    for (let step = 0; step < maxTokens; step++) {
      signal?.throwIfAborted();
      const input_ids = new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1, 1]);
      // After step 0 the encoder-side cache never changes: not fetching it saves copying it
      // out of the session on every token (measured ~4 % of a decode).
      let out: ort.InferenceSession.OnnxValueMapType;
      if ('merged' in decoder) {
        const feeds = {
          input_ids,
          encoder_hidden_states: hidden,
          use_cache_branch: new ort.Tensor('bool', Uint8Array.of(step > 0 ? 1 : 0), [1]),
          ...past,
        };
        out = await (step === 0 ? decoder.merged.run(feeds) : decoder.merged.run(feeds, LATER_STEP_OUTPUTS));
      } else {
        out = await (step === 0
          ? decoder.first.run({ input_ids, encoder_hidden_states: hidden })
          : decoder.later.run({ input_ids, ...past }, LATER_STEP_OUTPUTS));
      }
      token = argmax(out.logits?.data as Float32Array, step === 0 ? END : -1);
      if (token === END) {
        stop = 'end';
        break;
      }
      ids.push(token);
      for (let l = 0; l < LAYERS; l++) {
        for (const kv of ['key', 'value']) {
          past[`past_key_values.${l}.decoder.${kv}`] = out[`present.${l}.decoder.${kv}`] as ort.Tensor;
          if (step === 0) past[`past_key_values.${l}.encoder.${kv}`] = out[`present.${l}.encoder.${kv}`] as ort.Tensor;
        }
      }
      const loop = repetitionStart(ids);
      if (loop >= 0) {
        ids.length = loop;
        stop = 'repetition';
        break;
      }
    }
    return { text: decodeTokens(ids), tokenIds: ids, stop };
  }

  async close(): Promise<void> {
    const decoders = 'merged' in this.decoder ? [this.decoder.merged] : [this.decoder.first, this.decoder.later];
    await Promise.all([this.encoder.release(), ...decoders.map((d) => d.release())]);
  }
}

export function maxTokensFor(seconds: number): number {
  return Math.max(8, Math.ceil(seconds * TOKENS_PER_SECOND) + 4);
}

function argmax(logits: Float32Array, forbidden: number): number {
  let best = -1;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > bestValue && i !== forbidden) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * Guards against the decoder looping ("thank you thank you ..."): when the tail is the same
 * n-gram (n ≤ 8) repeated past a threshold, returns where the second occurrence starts, else -1.
 * Thresholds are high on purpose: digits are single tokens and "1111 1111 1111 1111" is real.
 */
export function repetitionStart(ids: readonly number[]): number {
  const end = ids.length;
  const repeatsOf = (n: number, limit: number): number => {
    let repeats = 1;
    while (repeats < limit) {
      for (let k = 0; k < n; k++) if (ids[end - 1 - k] !== ids[end - 1 - k - repeats * n]) return repeats;
      repeats++;
    }
    return repeats;
  };
  for (let n = 1; n <= 8; n++) {
    const needed = Math.max(4, Math.ceil(24 / n)); // 24 repeats of one token, 12 of a pair, 4 of a 6-gram...
    if (end < n * needed || repeatsOf(n, needed) < needed) continue;
    return end - (repeatsOf(n, Math.floor(end / n)) - 1) * n; // keep the first occurrence of the whole run
  }
  return -1;
}

const VOCAB_SIZE = llamaTokenizer.vocabById.length;

export function decodeTokens(ids: readonly number[]): string {
  const known = ids.filter((id) => id > END && id < VOCAB_SIZE);
  return llamaTokenizer.decode(known, false, true).replace(/\s+/g, ' ').trim();
}
