-- Earshot store, version 1 (SPEC §9). ClickHouse 18.16: no DateTime64, TTL, JSON/Map/Bool.
-- Milliseconds are UInt64 beside a DateTime('UTC') that partitions by day.
-- Every statement is idempotent (IF NOT EXISTS): two store nodes may run it at once.
-- Duplicates (a replay after a crash) share the ORDER BY key, so ReplacingMergeTree merges
-- collapse them; reads never rely on merges having happened (they use LIMIT 1 BY / FINAL).

CREATE TABLE IF NOT EXISTS utterances (
    tenant_id String,
    call_sid String,
    start_ms UInt32,
    utterance_id String,
    event_id String,
    stream_id String,
    role String,
    sender_external_id String,
    track String,
    end_ms UInt32,
    text String,
    language String,
    engine String,
    model String,
    speech_ended_at_ms UInt64,
    occurred_at_ms UInt64,
    created_at DateTime('UTC'),
    stored_at_ms UInt64
) ENGINE = ReplacingMergeTree(stored_at_ms)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (tenant_id, call_sid, start_ms, utterance_id);

CREATE TABLE IF NOT EXISTS session_events (
    tenant_id String,
    call_sid String,
    occurred_at_ms UInt64,
    event_id String,
    type String,
    request_id String,
    reason String,
    customer_stream_id String,
    agent_stream_id String,
    language String,
    summary_roles Array(String),
    summary_stream_ids Array(String),
    summary_audio_ms Array(UInt64),
    summary_transcripts Array(UInt32),
    created_at DateTime('UTC'),
    stored_at_ms UInt64
) ENGINE = ReplacingMergeTree(stored_at_ms)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (tenant_id, call_sid, occurred_at_ms, event_id);

CREATE TABLE IF NOT EXISTS deliveries (
    tenant_id String,
    call_sid String,
    occurred_at_ms UInt64,
    event_id String,
    utterance_id String,
    outcome String,
    http_status Nullable(UInt16),
    latency_ms UInt32,
    attempt UInt16,
    error String,
    created_at DateTime('UTC'),
    stored_at_ms UInt64
) ENGINE = ReplacingMergeTree(stored_at_ms)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (tenant_id, call_sid, occurred_at_ms, event_id);

CREATE TABLE IF NOT EXISTS audit_events (
    app_id String,
    occurred_at_ms UInt64,
    event_id String,
    action String,
    request_id String,
    call_sid_hash String,
    client_address_hash String,
    created_at DateTime('UTC'),
    stored_at_ms UInt64
) ENGINE = ReplacingMergeTree(stored_at_ms)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (app_id, occurred_at_ms, event_id);
