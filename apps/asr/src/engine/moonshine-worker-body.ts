import { parentPort, workerData } from 'node:worker_threads';
import { Moonshine, type MoonshineOptions } from './moonshine.js';
import { upsample2x } from './upsample.js';

/**
 * One model worker: loads its own Moonshine sessions (sessions cannot cross threads), then
 * answers jobs one at a time. Protocol (structured clone; the audio buffer is transferred):
 *   in:  { id, audio: Float32Array (8 kHz), maxTokens } | { abort: id }
 *   out: { id, ok: true, result: Recognition, ms } | { id, ok: false, message, aborted? }
 * `abort` stops job `id` at its next model run (the pool sends it for a speculative decode whose
 * pause ended in speech: its text would be thrown away); it answers { ok: false, aborted: true }.
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

/** The job on this worker now (the pool sends one at a time) and how to stop it. */
let current: { readonly id: number; readonly controller: AbortController } | undefined;

port.on('message', async (message: WorkerJob | { readonly abort: number }) => {
  if ('abort' in message) {
    // An abort may cross the job's answer: it then names a finished job and changes nothing.
    if (current?.id === message.abort) current.controller.abort(new Error('decode aborted'));
    return;
  }
  const job = message;
  const controller = new AbortController();
  current = { id: job.id, controller };
  try {
    const model = await loading;
    const started = performance.now();
    const result = await model.recognize(upsample2x(job.audio), job.maxTokens, controller.signal);
    port.postMessage({ id: job.id, ok: true, result, ms: performance.now() - started });
  } catch (error) {
    port.postMessage({ id: job.id, ok: false, message: (error as Error).message, aborted: controller.signal.aborted });
  } finally {
    if (current?.id === job.id) current = undefined;
  }
});
