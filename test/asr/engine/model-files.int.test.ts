import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { defaultModelsDir, ensureModels, type ModelPaths, modelPaths } from '../../../apps/asr/src/engine/model-files.js';

// The model files come from pinned npm tarballs, verified by sha256, fetched once.
t.setTimeout(300_000);

let models: ModelPaths;
t.before(async () => {
  models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
});

const scratch = (t: Test) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-models-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

t.test('a second ensureModels needs no npm at all', async (t) => {
  const again = await ensureModels(models.dir, { npm: '/nonexistent/npm' });
  t.same(again, models);
  t.same(modelPaths(models.dir), models);
});

t.test('files copied in by hand are verified and kept; a corrupted one is fetched again', async (t) => {
  const dir = scratch(t);
  const target = modelPaths(dir);
  for (const key of ['encoder', 'decoder', 'vad'] as const) copyFileSync(models[key], target[key]);
  await ensureModels(dir, { npm: '/nonexistent/npm' });
  t.pass('hand-copied files accepted without npm');

  writeFileSync(target.vad, 'not a model');
  const lines: string[] = [];
  await ensureModels(dir, { log: (line) => lines.push(line) });
  t.same(readFileSync(target.vad), readFileSync(models.vad), 'the VAD model was restored');
  t.match(lines.join('\n'), /fetching @ricky0123\/vad-web@0\.0\.31/);
  t.notMatch(lines.join('\n'), /moonshine-js/, 'the intact Moonshine files were not fetched again');
});

t.test('npm failures give a one-line reason naming the package', async (t) => {
  await t.rejects(ensureModels(scratch(t), { npm: 'earshot-no-such-npm' }), {
    code: 'EARSHOT_INFRA_PREREQUISITE_MISSING',
    message: /cannot fetch @moonshine-ai\/moonshine-js@0\.1\.29 with npm pack: 'earshot-no-such-npm' was not found on PATH/,
  });
  await t.rejects(ensureModels(scratch(t), { npm: '/bin/false' }), {
    message: /cannot fetch @moonshine-ai\/moonshine-js@0\.1\.29 .*is the npm registry reachable/,
  });
});
