import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouseClient, createClient } from '@clickhouse/client';
import type { Test } from 'tap';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { httpJson } from '../../apps/cli/src/simulate/http-json.js';
import { newCallSid, type SimulatedCallOptions, type SimulatedCallResult, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { type CorpusManifest, generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { pooledWer } from '../../scripts/test-audio/wer.js';
import { createTestCa } from '../webhooks/support/pki.js';
import { type Receiver, startReceiver } from '../webhooks/support/receiver.js';
import { type AppProcess, startAppProcess } from './app-process.js';
import { expectedCallUtterances } from './expected-utterances.js';
import { testRuntime } from './runtime.js';
import { byTurn, everyTurnEnded, lostAndDuplicated, type Timed } from './turns.js';
import { freePort, randomSuffix, waitFor } from './wait.js';

/**
 * The distributed gateway as an operator runs it without Docker: the servers of `earshot infra
 * up` (or others given in `env`) and one `earshot start --mode distributed --apps <app>` process
 * per app, on a Kafka namespace and a ClickHouse database of their own. One tenant posts to a
 * real HTTPS webhook receiver (certificate from the tenant's own CA). Used by the topology and
 * fault tests, which kill, restart and cut these parts.
 */
export type GatewayApp = 'ingest' | 'api' | 'asr' | 'webhooks' | 'store';

export interface Topology {
  readonly runtime: Runtime;
  readonly corpus: CorpusManifest;
  readonly tenant: { readonly apiId: string; readonly apiSecret: string };
  readonly receiver: Receiver;
  readonly database: string;
  readonly clickhouse: ClickHouseClient;
  /** Live processes of each app (several for asr when scaled out). */
  readonly processes: Map<GatewayApp, AppProcess[]>;
  /** The current api process's URL. */
  apiUrl(): string;
  /**
   * Starts one more process of `app` (the api is pointed at the current ingest node).
   * `withApi`: an API in the same process, on a port of its own, for the metrics of an app that
   * has no HTTP port (asr, store, webhooks); the process is listed under `app`.
   */
  start(app: GatewayApp, env?: Record<string, string>, options?: { withApi?: boolean }): Promise<AppProcess>;
  /** kill -9 of the app's first (or given) process. */
  kill(app: GatewayApp, which?: AppProcess): Promise<void>;
  /** Plays the corpus two-party call; `speed` 2 by default; `reconnect` as Twilio does when its socket dies. */
  playCall(options?: { speed?: number; callSid?: string; reconnect?: SimulatedCallOptions['reconnect'] }): {
    callSid: string;
    done: Promise<SimulatedCallResult>;
  };
  /** How many utterances a call of the corpus has, both tracks, as the engine ends them offline with this topology's settings (test/support/expected-utterances.ts). */
  readonly expectedUtterances: number;
  stored(callSid: string): Promise<StoredRow[]>;
  posted(callSid: string): WebhookBody[];
  /** The after-call messages API's items. */
  messages(callSid: string): Promise<{ status: number; items: { text: string; sender: { role: string } }[] }>;
  /** Pooled WER of the stored utterances against the corpus script, per role. */
  werOf(rows: readonly StoredRow[]): { customer: number; agent: number };
  /**
   * Stored rows against the script's turns: `lost` counts turns with nothing stored or whose
   * first or last part is missing (stored speech starts or ends > 300 ms off the truth);
   * `duplicated` counts rows overlapping another of their track, or outside every turn. By turn,
   * not by count: a consumer restarted mid-call resumes with a cold VAD, and a pause right at
   * the endpoint (the corpus has two of 416 ms) may then end an utterance or not.
   */
  turnCheck(rows: readonly StoredRow[]): { lost: number; duplicated: number };
}

export interface StoredRow {
  readonly utterance_id: string;
  readonly role: string;
  readonly text: string;
  readonly start_ms: number;
  readonly end_ms: number;
}

export interface WebhookBody {
  readonly externalConversationId: string;
  readonly sender: { readonly role: string };
  readonly autotranscribeResponse: { readonly start: number; readonly utterance: readonly { text: string }[] };
}

export async function startTopology(
  t: Test,
  options: { apps: readonly GatewayApp[]; env?: Record<string, string>; runtimeEnv?: Record<string, string> },
): Promise<Topology> {
  const corpus = generateTestAudio();
  const database = `earshot_topology_${randomSuffix()}`;
  const runtime = await testRuntime({ kafka: true, env: { EARSHOT_CLICKHOUSE_DATABASE: database, ...options.runtimeEnv } });
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-topology-'));
  const clickhouse = createClient({ url: runtime.config.EARSHOT_CLICKHOUSE_URL });
  const processes = new Map<GatewayApp, AppProcess[]>();
  t.teardown(async () => {
    await Promise.all([...processes.values()].flat().map((p) => p.kill()));
    await runtime.cleanup();
    await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
    await clickhouse.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await ensureModels(runtime.config.EARSHOT_MODELS_DIR);
  const expected = await expectedCallUtterances(corpus, options.env);

  const ca = await createTestCa(dataDir, 'tenant');
  const serverCert = await ca.issue('receiver', 'serverAuth');
  const receiver = await startReceiver({ cert: serverCert.cert, key: serverCert.key, minVersion: 'TLSv1.2' });
  t.teardown(() => receiver.close());
  const tenant = await new AppAdmin(runtime.eventLog, runtime.credentials).create({
    name: 'topology tenant',
    webhookUrl: receiver.url,
    webhookAuth: { caPem: ca.cert },
  });

  const c = runtime.config;
  const env: Record<string, string> = {
    EARSHOT_MODE: 'distributed',
    EARSHOT_LOG_LEVEL: 'warn',
    EARSHOT_DATA_DIR: dataDir,
    EARSHOT_SECRETS_KEY: c.EARSHOT_SECRETS_KEY as string,
    EARSHOT_STREAM_TOKEN_KEYS: c.EARSHOT_STREAM_TOKEN_KEYS as string,
    EARSHOT_KAFKA_NAMESPACE: c.EARSHOT_KAFKA_NAMESPACE as string,
    EARSHOT_KAFKA_BROKERS: c.EARSHOT_KAFKA_BROKERS,
    EARSHOT_SCHEMA_REGISTRY_URL: c.EARSHOT_SCHEMA_REGISTRY_URL,
    EARSHOT_CLICKHOUSE_URL: c.EARSHOT_CLICKHOUSE_URL,
    EARSHOT_CLICKHOUSE_DATABASE: database,
    EARSHOT_API_PORT: '0',
    EARSHOT_INGEST_PORT: '0',
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: '200',
    // A killed consumer's partitions move to a survivor within seconds, not the default 10 s.
    EARSHOT_KAFKA_SESSION_TIMEOUT_MS: '6000',
    EARSHOT_KAFKA_HEARTBEAT_MS: '500',
    ...options.env,
  };
  const first = (app: GatewayApp): AppProcess => {
    const p = processes.get(app)?.[0];
    if (!p) throw new Error(`no ${app} process is running`);
    return p;
  };
  // The API keeps one port across restarts, as behind a load balancer: clients keep their URL.
  const apiPort = String(await freePort());
  const start = async (app: GatewayApp, extra: Record<string, string> = {}, o: { withApi?: boolean } = {}): Promise<AppProcess> => {
    const appEnv =
      app === 'api'
        ? { ...env, EARSHOT_API_PORT: apiPort, EARSHOT_INGEST_PUBLIC_URL: first('ingest').url('ingest'), ...extra }
        : { ...env, ...extra };
    const started = await startAppProcess(o.withApi && app !== 'api' ? `${app},api` : app, appEnv);
    processes.set(app, [...(processes.get(app) ?? []), started]);
    return started;
  };
  // Everything but the API at once; the API last, pointed at the ingest node.
  await Promise.all(options.apps.filter((a) => a !== 'api').map((a) => start(a)));
  if (options.apps.includes('api')) await start('api');

  const { customer, agent } = corpus.call.tracks;
  const headers = { 'asapp-api-id': tenant.apiId, 'asapp-api-secret': tenant.apiSecret };
  return {
    runtime,
    corpus,
    tenant,
    receiver,
    database,
    clickhouse,
    processes,
    apiUrl: () => first('api').url('api'),
    start,
    kill: async (app, which) => {
      const victim = which ?? first(app);
      await victim.kill();
      processes.set(
        app,
        (processes.get(app) ?? []).filter((p) => p !== victim),
      );
    },
    playCall: (o = {}) => {
      const callSid = o.callSid ?? newCallSid();
      const done = simulateCall({
        apiUrl: first('api').url('api'),
        ...tenant,
        callSid,
        inbound: new Uint8Array(readFileSync(customer.mulaw)),
        outbound: new Uint8Array(readFileSync(agent.mulaw)),
        speed: o.speed ?? 2,
        apiRetryMs: 180_000, // an API node restarting (fault tests) keeps its address
        reconnect: o.reconnect,
      });
      return { callSid, done };
    },
    expectedUtterances: expected.customer.length + expected.agent.length,
    stored: async (callSid) => {
      const result = await clickhouse.query({
        query: `SELECT utterance_id, role, text, start_ms, end_ms FROM ${database}.utterances FINAL WHERE call_sid = '${callSid}' ORDER BY start_ms`,
        format: 'JSONEachRow',
      });
      return ((await result.json()) as StoredRow[]).map((r) => ({ ...r, start_ms: Number(r.start_ms), end_ms: Number(r.end_ms) }));
    },
    posted: (callSid) => receiver.received.map((r) => r.body as WebhookBody).filter((b) => b && b.externalConversationId === callSid),
    messages: async (callSid) => {
      const res = await httpJson('GET', `${first('api').url('api')}/conversation/v1/conversation/messages?externalId=${callSid}`, {
        headers,
      });
      return { status: res.status, items: (res.body as { items?: [] } | null)?.items ?? [] };
    },
    turnCheck: (rows) => turnCheck(corpus, rows),
    werOf: (rows) => {
      const of = (role: 'customer' | 'agent', source: typeof customer) => {
        const mine = timedOf(rows, role);
        return pooledWer(byTurn(mine, source.utterances).turns.map((r) => [r.turn.text, r.text] as const)).wer;
      };
      return { customer: of('customer', customer), agent: of('agent', agent) };
    },
  };
}

/** One role's stored rows in the shape of test/support/turns.ts. */
export function timedOf(rows: readonly Pick<StoredRow, 'role' | 'start_ms' | 'end_ms' | 'text'>[], role: string): Timed[] {
  return rows.filter((r) => r.role === role).map((r) => ({ startMs: r.start_ms, endMs: r.end_ms, text: r.text }));
}

function turnCheck(corpus: CorpusManifest, rows: readonly StoredRow[]): { lost: number; duplicated: number } {
  let lost = 0;
  let duplicated = 0;
  for (const role of ['customer', 'agent'] as const) {
    const mine = timedOf(rows, role);
    const found = lostAndDuplicated(mine, corpus.call.tracks[role].utterances);
    lost += found.lost;
    duplicated += found.duplicated;
  }
  return { lost, duplicated };
}

/**
 * Waits until the call has the expected number of stored utterances, or every turn of both
 * tracks has reached the store to its end (a restarted asr may split one pause fewer), or the
 * timeout.
 */
export async function waitStored(topology: Topology, callSid: string, timeoutMs = 60_000): Promise<StoredRow[]> {
  const { customer, agent } = topology.corpus.call.tracks;
  await waitFor(
    `${topology.expectedUtterances} stored utterances of ${callSid}`,
    async () => {
      const rows = await topology.stored(callSid);
      return (
        rows.length >= topology.expectedUtterances ||
        (everyTurnEnded(timedOf(rows, 'customer'), customer.utterances) && everyTurnEnded(timedOf(rows, 'agent'), agent.utterances))
      );
    },
    timeoutMs,
  );
  return topology.stored(callSid);
}

/**
 * The ingest nodes behind one address, as a deployment puts them behind a TCP load balancer:
 * the stream URL Twilio holds stays valid when a node dies. Each new connection goes to the
 * first live ingest process of the topology; a node's death closes the connections it carried
 * (the client sees its socket close); with no node up, a connection is closed at once and the
 * client retries. Point the API at it: `start('api', { EARSHOT_INGEST_PUBLIC_URL: balancer.url })`.
 */
export interface IngestBalancer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startIngestBalancer(topology: Topology): Promise<IngestBalancer> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const node = topology.processes.get('ingest')?.[0];
    if (!node) {
      client.destroy();
      return;
    }
    const { hostname, port } = new URL(node.url('ingest'));
    const upstream = createConnection({ host: hostname, port: Number(port) });
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One scrape of an app's `GET /metrics`: every series as printed (`name` or `name{label="value",...}`) and its value. */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const res = await httpJson('GET', `${baseUrl}/metrics`);
  if (res.status !== 200 || typeof res.body !== 'string') throw new Error(`GET ${baseUrl}/metrics: HTTP ${res.status}`);
  const series = new Map<string, number>();
  for (const line of res.body.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{.*\})?)\s+(\S+)$/.exec(line);
    if (match?.[1] && match[2] !== undefined) series.set(match[1], Number(match[2]));
  }
  return series;
}

/** The sum of a metric's series whose labels include `labels` (all of them when none are given). */
export function metricValue(metrics: ReadonlyMap<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [series, value] of metrics) {
    const brace = series.indexOf('{');
    if ((brace < 0 ? series : series.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}
