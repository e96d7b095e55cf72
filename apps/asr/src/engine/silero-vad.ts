import * as ort from 'onnxruntime-node';

/**
 * Silero VAD v5 at its native 8 kHz (NOTES "Speech recognition"): each call takes one window of
 * 256 new samples preceded by the last 32 samples of the previous window, plus the recurrent
 * state [2, 1, 128], and returns the speech probability of the window. One session serves
 * every stream; each stream owns its `VadState`. A call costs ~0.1 ms of this thread (README),
 * so it runs inline rather than in the model workers.
 */
export const VAD_WINDOW = 256;
export const VAD_CONTEXT = 32;
const STATE_SIZE = 2 * 1 * 128;
const SAMPLE_RATE = new ort.Tensor('int64', BigInt64Array.of(8000n), []);

export interface VadState {
  state: Float32Array;
  /** context (32) followed by the current window (256): the model's input. */
  readonly input: Float32Array;
}

export class SileroVad {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async load(path: string): Promise<SileroVad> {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new SileroVad(session);
  }

  static createState(): VadState {
    return { state: new Float32Array(STATE_SIZE), input: new Float32Array(VAD_CONTEXT + VAD_WINDOW) };
  }

  /** Probability that `window` (256 samples, [-1, 1]) is speech; advances `vad`'s state and context. */
  async probability(vad: VadState, window: Float32Array): Promise<number> {
    vad.input.set(window, VAD_CONTEXT);
    const out = await this.session.run({
      input: new ort.Tensor('float32', vad.input, [1, VAD_CONTEXT + VAD_WINDOW]),
      state: new ort.Tensor('float32', vad.state, [2, 1, 128]),
      sr: SAMPLE_RATE,
    });
    vad.state = (out.stateN as ort.Tensor).data as Float32Array;
    vad.input.copyWithin(0, VAD_WINDOW, VAD_WINDOW + VAD_CONTEXT); // last 32 samples become the context
    return ((out.output as ort.Tensor).data as Float32Array)[0] as number;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
