import { readFileSync } from 'node:fs';
import t from 'tap';
import { configSchema } from '../../apps/shared/src/config.js';
import { configReference } from '../../scripts/docs/config-reference.js';
import { expectedDocs } from '../../scripts/docs/generate.js';
import { findMetrics } from '../../scripts/docs/metrics-reference.js';

/**
 * The generated docs match the code: docs/api.md (from GET /openapi.json), the configuration
 * reference and the metrics list of docs/operations.md. A new route, setting or metric makes
 * this fail until `npm run docs` is run and its output committed.
 */
t.test('docs/api.md and docs/operations.md are what npm run docs generates now', async (t) => {
  for (const { path, content } of await expectedDocs()) {
    const name = path.slice(path.indexOf('docs/'));
    t.equal(readFileSync(path, 'utf8'), content, `${name} is up to date (if not: npm run docs)`);
  }
});

t.test('the configuration reference has every setting of the schema, with its default and comment', async (t) => {
  const reference = configReference();
  for (const name of Object.keys(configSchema.shape)) t.match(reference, `| \`${name}\` |`, name);
  t.match(reference, '| `EARSHOT_API_PORT` | `8080` | integer 0–65535 | 0: any free port (tests) |');
  t.match(reference, '| `EARSHOT_MODELS_DIR` | `~/.cache/earshot/models` |', 'no machine-specific home directory');
  t.match(reference, '| `EARSHOT_KAFKA_BROKERS` | `127.0.0.1:19092` (derived) | text; a comma-separated list of host:port |');
});

t.test('the metrics list finds the metrics of every app', async (t) => {
  const metrics = findMetrics();
  const names = new Set(metrics.map((m) => m.name));
  t.equal(names.size, metrics.length, 'each metric defined once');
  for (const name of [
    'earshot_api_requests_total',
    'earshot_ingest_frames_dropped_total',
    'earshot_asr_end_of_speech_to_utterance_seconds',
  ]) {
    t.ok(names.has(name), name);
  }
  t.match(
    metrics.find((m) => m.name === 'earshot_api_requests_total'),
    { app: 'api', kind: 'counter', labels: ['method', 'route', 'status'] },
  );
  t.ok(
    metrics.every((m) => m.name.startsWith('earshot_') && m.help.length > 0),
    'named earshot_* with a help text',
  );
});
