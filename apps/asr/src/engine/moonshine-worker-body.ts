import { parentPort, workerData } from 'node:worker_threads';
import { Moonshine, type MoonshineOptions } from './moonshine.js';
import { upsample2x } from './upsample.js';

/**
 * One model worker: loads its own Moonshine sessions (sessions cannot cross threads), then
 * answers jobs one at a time. Protocol (structured clone; the audio buffer is transferred):
 *   in:  { id, audio: Float32Array (8 kHz), maxTokens }
 *   out: { id, ok: true, result: Recognition, ms } | { id, ok: false, message }
 *        { ready: true } | { fatal: message } once the model is loaded or failed to load.
 */
export interface WorkerJob {
  readonly id: number;
  readonly audio: Float32Array;
  readonly maxTokens: number;
}

const port = parentPort;
if (!port) throw new Error('moonshine worker body must run in a worker thread');

const loading = Moonshine.load(workerData as MoonshineOptions);
loading.then(
  () => port.postMessage({ ready: true }),
  (error: unknown) => port.postMessage({ fatal: (error as Error).message }),
);

port.on('message', async (job: WorkerJob) => {
  try {
    const model = await loading;
    const started = performance.now();
    const result = await model.recognize(upsample2x(job.audio), job.maxTokens);
    port.postMessage({ id: job.id, ok: true, result, ms: performance.now() - started });
  } catch (error) {
    port.postMessage({ id: job.id, ok: false, message: (error as Error).message });
  }
});
