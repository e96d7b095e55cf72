import { Worker } from 'node:worker_threads';
import { EarshotError } from '../../../shared/src/errors.js';
import type { Recognition } from './moonshine.js';
import type { EngineStats } from './speech-engine.port.js';

/**
 * Worker threads that run Moonshine, with a bounded FIFO queue in front. One job per worker at a
 * time, so a long utterance never delays more than one worker and the event loop of the calls
 * never runs the model. Workers start lazily on the first job, hold a reference on the process
 * only while busy (the CLI exits when done), and a crashed worker is replaced on the next job.
 */
export interface RecognizerPoolOptions {
  readonly encoderPath: string;
  readonly decoderPath: string;
  /** Worker threads (default 1: measured best on 2 cores, see README). */
  readonly workers?: number;
  /** Jobs waiting for a worker beyond which `recognize` rejects (retriable). Default 64. */
  readonly maxQueue?: number;
  /** Threads per inference inside one worker (default 1). */
  readonly intraOpNumThreads?: number;
}

interface Job {
  readonly audio: Float32Array;
  readonly maxTokens: number;
  /** Speculative jobs wait behind every confirmed one; `promote()` makes one confirmed. */
  speculative: boolean;
  /** Taken by a worker while still speculative (for the wasted-work count). */
  ranSpeculative?: boolean;
  /** Cancelled while on a worker: its result is already rejected, the worker told to stop. */
  cancelled?: boolean;
  resolve(result: Recognition): void;
  reject(error: Error): void;
}

/**
 * A decode handed to the pool. `speculative` ones (an endpoint not yet confirmed) run only
 * when no confirmed job waits; `promote()` turns one into a confirmed job (to the back of the
 * confirmed queue, unless it already runs), `cancel()` drops it if it has not started, and
 * stops it at its next decoder step if it has: in a burst of calls, the model time of a pause
 * that ended in speech goes to the utterances that did end.
 */
export interface PoolJob {
  readonly result: Promise<Recognition>;
  promote(): void;
  cancel(): void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  jobId: number;
  /** Settles once the worker has loaded the model (rejects if it cannot, or exits first). */
  readonly loaded: Promise<void>;
}

const WORKER_URL = new URL('./moonshine.worker.mjs', import.meta.url);

export class RecognizerPool {
  private readonly size: number;
  private readonly maxQueue: number;
  private readonly slots: Slot[] = [];
  /** Confirmed jobs, first in first out. */
  private readonly queue: Job[] = [];
  /** Speculative jobs, first in first out, run only when `queue` is empty. */
  private readonly speculative: Job[] = [];
  private nextId = 1;
  /**
   * Speculation counters (cumulative): taken, promoted, cancelled while queued, run and never
   * promoted, and of those, stopped by `cancel()` before their end.
   */
  private readonly speculation = { started: 0, promoted: 0, cancelled: 0, ranUnconfirmed: 0, aborted: 0 };
  private closed = false;
  private fatal: Error | undefined;

  constructor(private readonly options: RecognizerPoolOptions) {
    this.size = options.workers ?? 1;
    this.maxQueue = options.maxQueue ?? 64;
    if (!Number.isInteger(this.size) || this.size < 1 || this.size > 64) throw new RangeError(`workers must be 1..64, not ${this.size}`);
  }

  /** Transcribes one utterance of 8 kHz audio (the buffer is transferred to the worker). */
  recognize(audio: Float32Array, maxTokens: number): Promise<Recognition> {
    if (this.closed) return Promise.reject(new Error('speech engine is closed'));
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.queue.length >= this.maxQueue) return Promise.reject(this.overloaded());
    return new Promise<Recognition>((resolve, reject) => {
      this.queue.push({ audio, maxTokens, speculative: false, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * A speculative decode (see PoolJob), or undefined when the pool cannot take one now (closed,
   * failed, or `maxQueue` speculative jobs already waiting): the caller decodes once confirmed.
   */
  speculate(audio: Float32Array, maxTokens: number): PoolJob | undefined {
    if (this.closed || this.fatal || this.speculative.length >= this.maxQueue) return undefined;
    let job: Job | undefined;
    const result = new Promise<Recognition>((resolve, reject) => {
      job = { audio, maxTokens, speculative: true, resolve, reject };
    });
    result.catch(() => undefined); // a cancelled or failed speculation may never be awaited
    const queued = job as Job;
    this.speculation.started++;
    this.speculative.push(queued);
    this.dispatch();
    return {
      result,
      promote: () => {
        if (!queued.speculative || queued.cancelled) return;
        queued.speculative = false;
        this.speculation.promoted++;
        if (queued.ranSpeculative) this.speculation.ranUnconfirmed--; // counted when it ran; it was not wasted
        const at = this.speculative.indexOf(queued);
        if (at < 0) return; // already on a worker
        this.speculative.splice(at, 1);
        this.queue.push(queued); // may exceed maxQueue by the promoted ones: they were admitted already
        this.dispatch();
      },
      cancel: () => {
        if (!queued.speculative || queued.cancelled) return; // promoted ones are needed
        const at = this.speculative.indexOf(queued);
        if (at >= 0) {
          this.speculative.splice(at, 1);
          this.speculation.cancelled++;
          queued.reject(new Error('speculative decode cancelled'));
          return;
        }
        const slot = this.slots.find((s) => s.job === queued);
        if (!slot) return; // answered already
        queued.cancelled = true;
        queued.reject(new Error('speculative decode cancelled'));
        slot.worker.postMessage({ abort: slot.jobId });
      },
    };
  }

  private overloaded(): EarshotError {
    return new EarshotError('EARSHOT_ASR_OVERLOADED', `speech recognition overloaded: ${this.queue.length} utterances waiting`, {
      retriable: true,
      fields: { queued: this.queue.length, maxQueue: this.maxQueue },
    });
  }

  /**
   * Starts the workers and resolves once each has loaded the model. Workers a job started
   * earlier count too: their load is remembered from spawn, not listened for from here.
   */
  async ready(): Promise<void> {
    while (this.slots.length < this.size) this.spawn();
    await Promise.all(this.slots.map((slot) => slot.loaded));
  }

  stats(): EngineStats {
    return {
      workers: this.slots.length,
      running: this.slots.filter((s) => s.job).length,
      queued: this.queue.length,
      maxQueue: this.maxQueue,
      speculative: this.speculative.length,
      speculation: { ...this.speculation },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of [...this.queue.splice(0), ...this.speculative.splice(0)]) job.reject(new Error('speech engine closed'));
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0 || this.speculative.length > 0) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = (this.queue.shift() ?? this.speculative.shift()) as Job;
      if (job.speculative) {
        job.ranSpeculative = true;
        this.speculation.ranUnconfirmed++;
      }
      slot.job = job;
      slot.jobId = this.nextId++;
      slot.worker.ref();
      slot.worker.postMessage({ id: slot.jobId, audio: job.audio, maxTokens: job.maxTokens }, [job.audio.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL, {
      workerData: {
        encoderPath: this.options.encoderPath,
        decoderPath: this.options.decoderPath,
        intraOpNumThreads: this.options.intraOpNumThreads ?? 1,
      },
    });
    worker.unref();
    let loadedOk = (): void => undefined;
    let loadFailed = (_error: Error): void => undefined;
    const loaded = new Promise<void>((resolve, reject) => {
      loadedOk = resolve;
      loadFailed = reject;
    });
    loaded.catch(() => undefined); // only ready() awaits it; jobs learn of a failure on their own
    const slot: Slot = { worker, job: undefined, jobId: 0, loaded };
    worker.on(
      'message',
      (message: {
        id?: number;
        ok?: boolean;
        result?: Recognition;
        message?: string;
        fatal?: string;
        aborted?: boolean;
        ready?: boolean;
      }) => {
        if (message.ready) loadedOk();
        if (message.fatal) {
          loadFailed(new Error(message.fatal));
          // The model cannot load: every job would fail the same way, so fail fast from now on.
          this.fatal = new EarshotError('EARSHOT_INFRA_PREREQUISITE_MISSING', `speech model failed to load: ${message.fatal}`);
          for (const job of [...this.queue.splice(0), ...this.speculative.splice(0)]) job.reject(this.fatal);
        }
        if (message.id === undefined || message.id !== slot.jobId || !slot.job) return;
        const job = slot.job;
        slot.job = undefined;
        worker.unref();
        if (job.cancelled) {
          if (message.aborted) this.speculation.aborted++; // else it ended before the abort reached it
        } else if (message.ok) job.resolve(message.result as Recognition);
        else job.reject(new Error(`speech model: ${message.message}`));
        this.dispatch();
      },
    );
    const lost = (why: string) => {
      loadFailed(new Error(`speech model worker ${why}`)); // no effect once loaded
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      slot.job?.reject(new Error(`speech model worker ${why}`));
      slot.job = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }
}
