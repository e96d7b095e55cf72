import * as ort from 'onnxruntime-node';

/**
 * Silero VAD v5 at its native 8 kHz (NOTES "Speech recognition"): each window is 256 new
 * samples preceded by the last 32 samples of the previous window, plus the recurrent state
 * [2, 1, 128] of its stream; the model returns the window's speech probability. One session
 * serves every stream; each stream owns its `VadState`.
 *
 * Windows of many streams run as one batch ([B, 288] input, [2, B, 128] state): a run's fixed
 * cost dominated (0.25 ms of CPU for one window, ~0.055 ms per window at 20 per run, measured
 * in docs/benchmarks.md), and the results are the same numbers as one window per run. A
 * window waits at most for the run in progress: requests that arrive meanwhile form the next.
 */
export const VAD_WINDOW = 256;
export const VAD_CONTEXT = 32;
const INPUT = VAD_CONTEXT + VAD_WINDOW;
const UNITS = 128;
const STATE_SIZE = 2 * 1 * UNITS;
const MAX_BATCH = 64;
const SAMPLE_RATE = new ort.Tensor('int64', BigInt64Array.of(8000n), []);

export interface VadState {
  state: Float32Array;
  /** context (32) followed by the current window (256): the model's input. */
  readonly input: Float32Array;
}

interface Request {
  readonly vad: VadState;
  readonly resolve: (p: number) => void;
  readonly reject: (error: unknown) => void;
}

export class SileroVad {
  private pending: Request[] = [];
  private scheduled = false;
  private running = false;
  /** Runs and windows so far (for benchmarks: mean batch size = windows / runs). */
  readonly counts = { runs: 0, windows: 0 };

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
    return { state: new Float32Array(STATE_SIZE), input: new Float32Array(INPUT) };
  }

  /**
   * Probability that `window` (256 samples, [-1, 1]) is speech; advances `vad`'s state and
   * context. One request per `vad` at a time (a stream awaits each window before the next).
   */
  probability(vad: VadState, window: Float32Array): Promise<number> {
    vad.input.set(window, VAD_CONTEXT);
    return new Promise((resolve, reject) => {
      this.pending.push({ vad, resolve, reject });
      this.schedule();
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }

  /** The next run starts once this turn's requests are in (setImmediate) and no run is going on. */
  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    const batch = this.pending.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    this.running = true;
    try {
      const b = batch.length;
      const input = new Float32Array(b * INPUT);
      const state = new Float32Array(2 * b * UNITS);
      batch.forEach(({ vad }, i) => {
        input.set(vad.input, i * INPUT);
        state.set(vad.state.subarray(0, UNITS), i * UNITS); // layer 0 of stream i
        state.set(vad.state.subarray(UNITS, 2 * UNITS), (b + i) * UNITS); // layer 1
      });
      const out = await this.session.run({
        input: new ort.Tensor('float32', input, [b, INPUT]),
        state: new ort.Tensor('float32', state, [2, b, UNITS]),
        sr: SAMPLE_RATE,
      });
      const probabilities = (out.output as ort.Tensor).data as Float32Array;
      const next = (out.stateN as ort.Tensor).data as Float32Array;
      this.counts.runs++;
      this.counts.windows += b;
      batch.forEach(({ vad, resolve }, i) => {
        const own = new Float32Array(STATE_SIZE);
        own.set(next.subarray(i * UNITS, (i + 1) * UNITS), 0);
        own.set(next.subarray((b + i) * UNITS, (b + i + 1) * UNITS), UNITS);
        vad.state = own;
        vad.input.copyWithin(0, VAD_WINDOW, INPUT); // last 32 samples become the context
        resolve(probabilities[i] as number);
      });
    } catch (error) {
      for (const request of batch) request.reject(error);
    } finally {
      this.running = false;
      if (this.pending.length > 0) this.schedule();
    }
  }
}
