import { createLocalRecordingStore, recordingsDir } from '../shared/src/adapters/local-recording-store.js';
import type { RecordingStore } from '../shared/src/ports/recording-store.port.js';
import type { Runtime } from '../shared/src/runtime.js';
import { startAsr } from './src/consumer/asr-consumer.js';
import { endpointingFromConfig } from './src/engine/endpointer.js';
import { createMoonshineEngine } from './src/engine/moonshine-engine.js';
import type { SpeechEngine } from './src/engine/speech-engine.port.js';

/**
 * The asr app (SPEC §5, §6): the speech engine (one per process, shared by every call) and
 * the stateful consumer of earshot.call-events.v1. The only composition root of the app.
 * Model files are fetched at install time (`npm run models`), never here.
 */
export interface AsrServer {
  readonly describe: string;
  readonly engine: SpeechEngine;
  stop(): Promise<void>;
}

export async function startAsrApp(
  runtime: Runtime,
  options: { engine?: SpeechEngine; groupId?: string; recordings?: RecordingStore } = {},
): Promise<AsrServer> {
  const { config } = runtime;
  const engine =
    options.engine ??
    createMoonshineEngine({
      modelsDir: config.EARSHOT_MODELS_DIR,
      workers: config.EARSHOT_ASR_WORKERS,
      maxQueue: config.EARSHOT_ASR_MAX_QUEUE,
      endpointing: endpointingFromConfig(config),
    });
  await engine.ready(); // fail at start-up, not on the first call, if the models are missing
  // Recordings (audioRecordingAllowed): EARSHOT_RECORDINGS_DIR unless the caller brings another store.
  const recordings = options.recordings ?? createLocalRecordingStore(recordingsDir(config));
  const consumer = await startAsr(runtime, engine, { groupId: options.groupId, recordings });
  return {
    describe: `${engine.name}/${engine.model}, ${engine.stats().workers} worker(s)`,
    engine,
    stop: async () => {
      await consumer.stop();
      if (!options.engine) await engine.close();
    },
  };
}
