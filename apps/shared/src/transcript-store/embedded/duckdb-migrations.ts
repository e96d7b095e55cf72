/**
 * The embedded store's schema, versioned like the ClickHouse migrations (same tables and
 * column names, docs/sql.md) but in DuckDB's dialect. Append new versions; never edit an
 * applied one.
 */
export interface DuckDbMigration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

export const DUCKDB_MIGRATIONS: readonly DuckDbMigration[] = [
  {
    version: 1,
    name: 'initial_tables',
    statements: [
      `CREATE MACRO split_list(s) AS CASE WHEN s = '' THEN []::VARCHAR[] ELSE string_split(s, chr(31)) END`,
      `CREATE TABLE utterances (
        tenant_id VARCHAR NOT NULL, call_sid VARCHAR NOT NULL, start_ms UINTEGER NOT NULL,
        utterance_id VARCHAR PRIMARY KEY, event_id VARCHAR NOT NULL, stream_id VARCHAR NOT NULL,
        role VARCHAR NOT NULL, sender_external_id VARCHAR NOT NULL, track VARCHAR NOT NULL,
        end_ms UINTEGER NOT NULL, text VARCHAR NOT NULL, language VARCHAR NOT NULL,
        engine VARCHAR NOT NULL, model VARCHAR NOT NULL, speech_ended_at_ms UBIGINT NOT NULL,
        occurred_at_ms UBIGINT NOT NULL, created_at UBIGINT NOT NULL, stored_at_ms UBIGINT NOT NULL)`,
      'CREATE INDEX utterances_by_call ON utterances (tenant_id, call_sid)',
      `CREATE TABLE session_events (
        tenant_id VARCHAR NOT NULL, call_sid VARCHAR NOT NULL, occurred_at_ms UBIGINT NOT NULL,
        event_id VARCHAR PRIMARY KEY, type VARCHAR NOT NULL, request_id VARCHAR NOT NULL,
        reason VARCHAR NOT NULL, customer_stream_id VARCHAR NOT NULL, agent_stream_id VARCHAR NOT NULL,
        language VARCHAR NOT NULL, summary_roles VARCHAR[], summary_stream_ids VARCHAR[],
        summary_audio_ms UBIGINT[], summary_transcripts UBIGINT[],
        created_at UBIGINT NOT NULL, stored_at_ms UBIGINT NOT NULL)`,
      `CREATE TABLE deliveries (
        tenant_id VARCHAR NOT NULL, call_sid VARCHAR NOT NULL, occurred_at_ms UBIGINT NOT NULL,
        event_id VARCHAR PRIMARY KEY, utterance_id VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
        http_status USMALLINT, latency_ms UINTEGER NOT NULL, attempt USMALLINT NOT NULL,
        error VARCHAR NOT NULL, created_at UBIGINT NOT NULL, stored_at_ms UBIGINT NOT NULL)`,
      `CREATE TABLE audit_events (
        app_id VARCHAR NOT NULL, occurred_at_ms UBIGINT NOT NULL, event_id VARCHAR PRIMARY KEY,
        action VARCHAR NOT NULL, request_id VARCHAR NOT NULL, call_sid_hash VARCHAR NOT NULL,
        client_address_hash VARCHAR NOT NULL, created_at UBIGINT NOT NULL, stored_at_ms UBIGINT NOT NULL)`,
    ],
  },
  {
    // Primary keys and ART indexes are loaded on every open and rewritten on every close, and
    // this store opens and closes the file about once a second (DuckDbFile): that cost grew with
    // the table (measured ~0.3 s per 1,000-row batch at 50k rows, docs/benchmarks.md, store).
    // Duplicates are now kept out by the insert itself (an anti-join on the id).
    version: 2,
    name: 'no_indexes',
    statements: [
      'DROP INDEX IF EXISTS utterances_by_call',
      ...['utterances', 'session_events', 'deliveries', 'audit_events'].flatMap((table) => [
        `CREATE TABLE ${table}_v2 AS SELECT * FROM ${table}`,
        `DROP TABLE ${table}`,
        `ALTER TABLE ${table}_v2 RENAME TO ${table}`,
      ]),
    ],
  },
];

/** The column that identifies a row (one event); inserts skip ids already present. */
export const ID_COLUMN: Readonly<Record<string, string>> = {
  utterances: 'utterance_id',
  session_events: 'event_id',
  deliveries: 'event_id',
  audit_events: 'event_id',
};
