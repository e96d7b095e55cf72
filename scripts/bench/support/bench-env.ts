import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, loadEarshotConfig } from '../../../apps/shared/src/config.js';

/**
 * Distributed-mode settings shared by a benchmark and the servers it forks: fixed test keys
 * (the same values as test/support/runtime.ts), so tokens the parent issues verify in the
 * child. Never use these keys outside benchmarks and tests.
 */
export const BENCH_ENV: Readonly<Record<string, string>> = {
  EARSHOT_MODE: 'distributed',
  EARSHOT_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
  EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 9).toString('base64')}`,
  EARSHOT_LOG_LEVEL: 'error',
};

/**
 * A benchmark's own distributed-mode run: a fresh Kafka namespace (drop it after with
 * `dropNamespace`), a temporary data folder, API and ingest on free ports, `BENCH_ENV`'s keys,
 * plus `extra` settings; validated as `earshot start` would.
 */
export function benchRun(name: string, extra: Record<string, string> = {}): { config: Config; namespace: string; dataDir: string } {
  const namespace = `bench-${name}-${randomBytes(4).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), `earshot-bench-${name}-`));
  const config = loadEarshotConfig({
    env: {
      ...process.env,
      ...BENCH_ENV,
      EARSHOT_DATA_DIR: dataDir,
      EARSHOT_KAFKA_NAMESPACE: namespace,
      EARSHOT_API_PORT: '0',
      EARSHOT_INGEST_PORT: '0',
      ...extra,
    },
  });
  return { config, namespace, dataDir };
}
