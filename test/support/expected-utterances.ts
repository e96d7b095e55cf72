import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ENDPOINTING, endpointingFromConfig, endpointOptions } from '../../apps/asr/src/engine/endpointer.js';
import { defaultModelsDir, ensureModels, MODEL_PACKAGES } from '../../apps/asr/src/engine/model-files.js';
import { createMoonshineEngine } from '../../apps/asr/src/engine/moonshine-engine.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { type CorpusManifest, type CorpusUtterance, defaultTestAudioDir } from '../../scripts/test-audio/corpus.js';

export type CallUtterances = Readonly<Record<'customer' | 'agent', readonly CorpusUtterance[]>>;

/**
 * The corpus call's utterances as the engine ends them offline (the `earshot transcribe` path)
 * with the endpointing settings of `env`: what a pipeline test must see from a live call, since
 * a turn of two sentences may be two utterances. The stream gives the same utterances whatever
 * the chunking (test/asr/engine/engine.int.test.ts), so live and offline agree exactly.
 * Cached on disk per corpus version, endpointing options, model files and engine code: one
 * decode for all test processes.
 */
export async function expectedCallUtterances(
  corpus: CorpusManifest,
  env: Record<string, string | undefined> = {},
): Promise<CallUtterances> {
  const options = endpointOptions(DEFAULT_ENDPOINTING, endpointingFromConfig(loadEarshotConfig({ env: { ...process.env, ...env } })));
  // Keyed by everything that decides the utterances: the audio, the settings, the model files
  // and the engine's own code (a change there must not be judged against a stale cache).
  const engineDir = fileURLToPath(new URL('../../apps/asr/src/engine/', import.meta.url));
  const hash = createHash('sha256').update(JSON.stringify([corpus.version, options, MODEL_PACKAGES]));
  for (const name of readdirSync(engineDir).sort()) if (name.endsWith('.ts')) hash.update(readFileSync(join(engineDir, name)));
  const key = hash.digest('hex').slice(0, 16);
  const dir = process.env.EARSHOT_TEST_AUDIO_DIR ?? defaultTestAudioDir();
  const file = join(dir, `call-utterances-${key}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as CallUtterances;

  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const engine = createMoonshineEngine({ modelsDir: models.dir, endpointing: options });
  try {
    const result = { customer: [] as CorpusUtterance[], agent: [] as CorpusUtterance[] };
    for (const role of ['customer', 'agent'] as const) {
      const stream = engine.createStream();
      const audio = new Uint8Array(readFileSync(corpus.call.tracks[role].mulaw));
      const got = [...(await stream.push(audio)), ...(await stream.flush())];
      result[role] = got.map((u) => ({ startMs: u.startMs, endMs: u.endMs, text: u.text }));
    }
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(result));
    renameSync(tmp, file); // atomic: parallel test processes may race to write it
    return result;
  } finally {
    await engine.close();
  }
}
