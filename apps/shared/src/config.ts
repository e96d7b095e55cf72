import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { EarshotError } from './errors.js';

/**
 * Configuration shared by every app. Read once at start-up from the environment plus an
 * optional JSON file (EARSHOT_CONFIG_FILE); nothing else in the project reads process.env.
 * Environment variables win over the file. Errors name the variable and what it should be.
 */

const port = z.coerce.number().int().min(1).max(65535);
const duration = z.coerce.number().int().min(1);

/** Every setting of the project, in one place, so a typo in any EARSHOT_* name is caught. */
export const configSchema = z
  .object({
    EARSHOT_CONFIG_FILE: z.string().optional(),
    EARSHOT_MODE: z.enum(['embedded', 'distributed']).default('embedded'),
    EARSHOT_DATA_DIR: z.string().min(1).default('./data'),
    EARSHOT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    EARSHOT_NODE_ID: z.string().min(1).optional(),
    EARSHOT_KAFKA_BROKERS: z
      .string()
      .regex(/^[^\s,:]+:\d+(,[^\s,:]+:\d+)*$/, 'a comma-separated list of host:port')
      .optional(),
    EARSHOT_KAFKA_CLIENT_ID: z.string().min(1).default('earshot'),
    EARSHOT_KAFKA_NAMESPACE: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'lowercase letters, digits and dashes (up to 40)')
      .optional(),
    EARSHOT_KAFKA_FETCH_MAX_WAIT_MS: duration.default(100),
    EARSHOT_KAFKA_HEARTBEAT_MS: duration.default(1000),
    EARSHOT_KAFKA_SESSION_TIMEOUT_MS: duration.default(10000),
    EARSHOT_SCHEMA_REGISTRY_URL: z.url().optional(),
    EARSHOT_CLICKHOUSE_URL: z.url().optional(),
    EARSHOT_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(6),
    // Tenants and credentials.
    EARSHOT_SECRETS_KEY: z
      .string()
      .regex(/^[A-Za-z0-9+/]{43}=$/, '32 random bytes, base64 (openssl rand -base64 32)')
      .optional(),
    EARSHOT_STREAM_TOKEN_KEYS: z
      .string()
      .regex(
        /^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=(,[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/]{43}=)*$/,
        'comma-separated kid:key pairs, each key 32 random bytes in base64; the first one signs',
      )
      .optional(),
    EARSHOT_STREAM_TOKEN_TTL_S: z.coerce.number().int().min(10).max(86_400).default(300),
    // HTTP API and media ingest.
    EARSHOT_API_HOST: z.string().min(1).default('127.0.0.1'),
    EARSHOT_API_PORT: z.coerce.number().int().min(0).max(65535).default(8080), // 0: any free port (tests)
    EARSHOT_API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(600),
    EARSHOT_API_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(30),
    // /healthz, /readyz, /metrics for a process without the api or ingest (asr, webhooks, store,
    // export on their own): unset = none. apps/shared/src/ops-server.ts
    EARSHOT_OPS_HOST: z.string().min(1).default('127.0.0.1'),
    EARSHOT_OPS_PORT: z.coerce.number().int().min(0).max(65535).optional(), // 0: any free port (tests)
    EARSHOT_INGEST_HOST: z.string().min(1).default('127.0.0.1'),
    EARSHOT_INGEST_PORT: z.coerce.number().int().min(0).max(65535).default(8081), // 0: any free port (tests)
    EARSHOT_INGEST_PUBLIC_URL: z
      .string()
      .regex(/^wss?:\/\/[^/?#\s]+$/, 'ws:// or wss:// and a host, with no path or query')
      .optional(),
    EARSHOT_INGEST_CHUNK_MS: z.coerce
      .number()
      .int()
      .min(20)
      .max(1000)
      .refine((ms) => ms % 20 === 0, 'a multiple of 20 (Twilio frames are 20 ms)')
      .default(100),
    EARSHOT_INGEST_MAX_BUFFERED_MS: z.coerce.number().int().min(1000).default(30_000),
    EARSHOT_INGEST_IDLE_TIMEOUT_S: z.coerce.number().int().min(8).max(960).default(30),
    EARSHOT_TWILIO_SIGNATURE: z.enum(['off', 'when-configured', 'required']).default('when-configured'),
    EARSHOT_TLS_CERT_FILE: z.string().min(1).optional(),
    EARSHOT_TLS_KEY_FILE: z.string().min(1).optional(),
    // TLS certificate reloading (issue 9): how often the API and ingest look at the two files
    // for a new certificate (0 = never; SIGHUP always reloads). apps/shared/src/tls-certificate.ts
    EARSHOT_TLS_WATCH_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
    // Speech recognition.
    EARSHOT_MODELS_DIR: z
      .string()
      .min(1)
      .default(join(homedir(), '.cache', 'earshot', 'models')),
    // Model worker threads: each loads its own Moonshine (~250 MiB, ~2 s of CPU at start). Default
    // 2: on this 2-core machine 25 calls held in 5 of 6 runs with two, in 1 of 3 with one
    // (docs/benchmarks.md, change 11). `npm test` runs its apps with 1 (apps/cli/src/commands/test.command.ts).
    EARSHOT_ASR_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
    EARSHOT_ASR_MAX_QUEUE: z.coerce.number().int().min(1).max(10_000).default(64),
    // Endpointing (issue 8), for `earshot start` and `earshot transcribe` alike; unset = the
    // engine's defaults (apps/asr/src/engine/endpointer.ts: 400 ms silence, 200 ms of made silence after the speech).
    // Shorter silence = sooner text but more sentences split (WER in docs/benchmarks.md).
    EARSHOT_ASR_MIN_SILENCE_MS: z.coerce.number().int().min(100).max(5000).optional(),
    EARSHOT_ASR_TRAILING_PAD_MS: z.coerce.number().int().min(0).max(5000).optional(),
    // Silence appended to each utterance's audio for the model (not waited for: the decode starts sooner).
    EARSHOT_ASR_SILENCE_PAD_MS: z.coerce.number().int().min(0).max(5000).optional(),
    // Pause length at which a decode starts before the endpoint is confirmed: sooner = text
    // sooner under load, later = fewer decodes thrown away when speech resumes.
    EARSHOT_ASR_SPECULATE_AFTER_MS: z.coerce.number().int().min(0).max(5000).optional(),
    // A pause this long ends an utterance whose text ends a sentence (0: off); others wait for the min silence.
    EARSHOT_ASR_SENTENCE_END_SILENCE_MS: z.coerce.number().int().min(0).max(5000).optional(),
    // How long the asr waits after a stop command for audio ingest received before the stop but
    // wrote after it (a Kafka outage, batching); normally the next chunk ends the wait at once.
    EARSHOT_ASR_STOP_GRACE_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
    // A started session whose stream is gone (socket closed without Twilio's stop and no new
    // stream, or its ingest node died) is closed after this long without a record of its call,
    // measured on the partition's event clock (a stalled partition never closes sessions).
    EARSHOT_ASR_SESSION_IDLE_MS: z.coerce.number().int().min(1000).max(86_400_000).default(120_000),
    EARSHOT_STOP_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
    // Recordings (audioRecordingAllowed, SPEC §6): directory (default <EARSHOT_DATA_DIR>/recordings) and cap per session.
    EARSHOT_RECORDINGS_DIR: z.string().min(1).optional(),
    EARSHOT_RECORDINGS_MAX_DURATION_S: z.coerce.number().int().min(1).max(86_400).default(14_400),
    // File exporter (SPEC §3.5): feed files (default <EARSHOT_DATA_DIR>/export), the daily run, download links.
    EARSHOT_EXPORT_DIR: z.string().min(1).optional(),
    EARSHOT_EXPORT_AT_UTC: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM in UTC, e.g. 02:00')
      .default('02:00'),
    EARSHOT_EXPORT_MAX_FILE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(256 * 1024 * 1024), // uncompressed rows per file
    EARSHOT_EXPORT_CLAIM_TTL_S: z.coerce
      .number()
      .int()
      .min(60)
      .default(6 * 3600), // a crashed node's claim on a day expires after this
    EARSHOT_EXPORT_URL_TTL_S: z.coerce.number().int().min(10).max(86_400).default(300), // getfeedfile download links
    EARSHOT_EXPORT_URL_BASE: z
      .string()
      .regex(/^https?:\/\/[^/?#\s]+$/, 'http(s):// and a host, no path')
      .optional(), // public origin of the API for download links (default: the request's own)
    // Webhook delivery (SPEC §8, apps/webhooks): limits per target (tenant).
    EARSHOT_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(5000), // one request, connect to response end
    EARSHOT_WEBHOOK_CONNECTIONS: z.coerce.number().int().min(1).max(256).default(8), // keep-alive connections = requests in flight per target
    EARSHOT_WEBHOOK_MAX_PENDING: z.coerce.number().int().min(1).max(1_000_000).default(1000), // waiting messages per target; beyond: oldest dropped
    EARSHOT_WEBHOOK_MAX_WAIT_MS: z.coerce.number().int().min(50).max(3_600_000).default(30_000), // a message waiting longer is dropped (stale)
    EARSHOT_WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).max(60_000).default(250), // opt-in retries: base of the jittered backoff
    // Live transcript page (GET /live on the API): login session lifetime and concurrent event streams.
    EARSHOT_LIVE_PAGE: z.enum(['on', 'off']).default('on'), // off: no /live routes at all
    EARSHOT_LIVE_SESSION_TTL_S: z.coerce.number().int().min(60).max(86_400).default(3600), // the login cookie's lifetime
    EARSHOT_LIVE_MAX_STREAMS: z.coerce.number().int().min(1).max(100_000).default(500), // open event streams per API node
    EARSHOT_LIVE_MAX_STREAMS_PER_APP: z.coerce.number().int().min(1).max(100_000).default(50), // open event streams per app per API node
    // Transcript store (SPEC §9, apps/store). auto: ClickHouse in distributed mode, an embedded DuckDB file in embedded mode.
    EARSHOT_STORE_BACKEND: z.enum(['auto', 'clickhouse', 'embedded']).default('auto'),
    EARSHOT_CLICKHOUSE_DATABASE: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'letters, digits and underscores, not starting with a digit')
      .default('earshot'),
    EARSHOT_STORE_FILE: z.string().min(1).optional(), // embedded store; default <EARSHOT_DATA_DIR>/store/transcripts.duckdb
    EARSHOT_STORE_BATCH_MAX_RECORDS: z.coerce.number().int().min(1).max(100_000).default(1000),
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    EARSHOT_STORE_RETRY_MAX_MS: z.coerce.number().int().min(100).max(600_000).default(30_000), // backoff cap while the store is down
    // Local servers run by `earshot infra` (and used by the tests).
    EARSHOT_INFRA_DIR: z.string().min(1).default('./.earshot/infra'),
    EARSHOT_INFRA_CACHE_DIR: z.string().min(1).optional(),
    EARSHOT_INFRA_KAFKA_PORT: port.default(19092),
    EARSHOT_INFRA_KAFKA_CONTROLLER_PORT: port.default(19093),
    EARSHOT_INFRA_REGISTRY_PORT: port.default(18081),
    EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT: port.default(18123),
    EARSHOT_INFRA_CLICKHOUSE_TCP_PORT: port.default(19000),
    EARSHOT_INFRA_START_TIMEOUT_MS: duration.default(180_000),
  })
  .strict();

type ParsedConfig = z.infer<typeof configSchema>;

/** Parsed settings; server addresses default to the local servers of `earshot infra`. */
export type Config = ParsedConfig & {
  readonly EARSHOT_KAFKA_BROKERS: string;
  readonly EARSHOT_SCHEMA_REGISTRY_URL: string;
  readonly EARSHOT_CLICKHOUSE_URL: string;
};

export function loadEarshotConfig(options: LoadConfigOptions = {}): Config {
  const parsed = loadConfig(configSchema, options);
  return {
    ...parsed,
    EARSHOT_KAFKA_BROKERS: parsed.EARSHOT_KAFKA_BROKERS ?? `127.0.0.1:${parsed.EARSHOT_INFRA_KAFKA_PORT}`,
    EARSHOT_SCHEMA_REGISTRY_URL:
      parsed.EARSHOT_SCHEMA_REGISTRY_URL ?? `http://127.0.0.1:${parsed.EARSHOT_INFRA_REGISTRY_PORT}/apis/ccompat/v7`,
    EARSHOT_CLICKHOUSE_URL: parsed.EARSHOT_CLICKHOUSE_URL ?? `http://127.0.0.1:${parsed.EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT}`,
  };
}

/** Variables that were renamed: using the old name fails and points at the new one. */
const RENAMED: Record<string, string> = {
  EARSHOT_KAFKA_BROKER: 'EARSHOT_KAFKA_BROKERS',
  EARSHOT_REGISTRY_URL: 'EARSHOT_SCHEMA_REGISTRY_URL',
};

export interface LoadConfigOptions {
  env?: Record<string, string | undefined>;
}

/**
 * Validates `EARSHOT_*` variables against `schema`. Unknown `EARSHOT_*` variables are
 * rejected too: a typo would otherwise silently fall back to a default.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, options: LoadConfigOptions = {}): z.infer<S> {
  const env = options.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const file = env.EARSHOT_CONFIG_FILE;
  if (file) Object.assign(raw, readConfigFile(file));
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('EARSHOT_') && value !== undefined && value !== '') {
      raw[name] = value;
    }
  }
  const problems: string[] = [];
  for (const name of Object.keys(raw)) {
    const renamed = RENAMED[name];
    if (renamed) problems.push(`${name} was renamed to ${renamed}`);
  }
  const known = new Set(Object.keys(schema.shape));
  for (const name of Object.keys(raw)) {
    if (!known.has(name) && !RENAMED[name]) problems.push(`${name} is not a known setting`);
  }
  const candidate = Object.fromEntries(Object.entries(raw).filter(([name]) => known.has(name)));
  const parsed = schema.safeParse(candidate);
  if (parsed.success && Boolean(candidate.EARSHOT_TLS_CERT_FILE) !== Boolean(candidate.EARSHOT_TLS_KEY_FILE)) {
    problems.push('EARSHOT_TLS_CERT_FILE and EARSHOT_TLS_KEY_FILE go together: set both or neither');
  }
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.join('.') || '(config)';
      problems.push(`${name}: ${issue.message} (got ${JSON.stringify(candidate[name as keyof typeof candidate])})`);
    }
  }
  if (problems.length > 0) {
    throw new EarshotError('EARSHOT_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      fields: { problems },
    });
  }
  return parsed.data as z.infer<S>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new EarshotError('EARSHOT_CONFIG_INVALID', `EARSHOT_CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new EarshotError('EARSHOT_CONFIG_INVALID', `EARSHOT_CONFIG_FILE: ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EarshotError('EARSHOT_CONFIG_INVALID', `EARSHOT_CONFIG_FILE: ${path} must hold a JSON object of EARSHOT_* settings`);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]));
}
