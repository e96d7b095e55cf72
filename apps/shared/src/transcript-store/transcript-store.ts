import { join, resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { TranscriptStore } from '../ports/transcript-store.port.js';
import { ClickHouseTranscriptStore } from './clickhouse/clickhouse-transcript-store.js';
import { DuckDbTranscriptStore } from './embedded/duckdb-transcript-store.js';

/**
 * Picks the transcript-store adapter from config (EARSHOT_STORE_BACKEND, default `auto`:
 * ClickHouse in distributed mode, the embedded DuckDB file in embedded mode). Used by the
 * store app, the API and `earshot export`; call `migrate()` before use (idempotent).
 */
export function createTranscriptStore(config: Config, logger: Logger): TranscriptStore {
  if (storeBackend(config) === 'clickhouse') {
    return new ClickHouseTranscriptStore({
      url: config.EARSHOT_CLICKHOUSE_URL,
      database: config.EARSHOT_CLICKHOUSE_DATABASE,
      logger,
      nodeId: config.EARSHOT_NODE_ID ?? `pid-${process.pid}`,
    });
  }
  return new DuckDbTranscriptStore(embeddedStoreFile(config), { logger });
}

export function storeBackend(config: Config): 'clickhouse' | 'embedded' {
  if (config.EARSHOT_STORE_BACKEND !== 'auto') return config.EARSHOT_STORE_BACKEND;
  return config.EARSHOT_MODE === 'distributed' ? 'clickhouse' : 'embedded';
}

export function embeddedStoreFile(config: Config): string {
  return resolve(config.EARSHOT_STORE_FILE ?? join(config.EARSHOT_DATA_DIR, 'store', 'transcripts.duckdb'));
}

/** Where the store is, for `earshot start`'s banner and logs (no credentials in it). */
export function describeStore(config: Config): string {
  if (storeBackend(config) === 'clickhouse') {
    const url = new URL(config.EARSHOT_CLICKHOUSE_URL);
    return `ClickHouse ${url.protocol}//${url.host} database ${config.EARSHOT_CLICKHOUSE_DATABASE}`;
  }
  return `embedded DuckDB ${embeddedStoreFile(config)}`;
}
