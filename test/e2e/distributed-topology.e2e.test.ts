import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import t from 'tap';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { httpJson } from '../../apps/cli/src/simulate/http-json.js';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { pooledWer } from '../../scripts/test-audio/wer.js';
import { type AppProcess, startAppProcess } from '../support/app-process.js';
import { testRuntime } from '../support/runtime.js';
import { randomSuffix, waitFor } from '../support/wait.js';
import { createTestCa } from '../webhooks/support/pki.js';
import { startReceiver } from '../webhooks/support/receiver.js';

/**
 * SPEC §1 distributed mode, the way an operator runs it without Docker: the servers of
 * `earshot infra up` and one `earshot start --mode distributed --apps <app>` process per app
 * (ingest, api, asr, webhooks, store). One two-party call goes in through the API and a
 * Twilio-shaped WebSocket; every utterance must come out at the tenant's HTTPS webhook (own
 * CA), in ClickHouse, and from the after-call messages API of the api process.
 */
t.test('distributed topology: one process per app, a call in, utterances at the webhook and in ClickHouse', async (t) => {
  const corpus = generateTestAudio();
  const database = `earshot_topology_${randomSuffix()}`;
  const runtime = await testRuntime({ kafka: true, env: { EARSHOT_CLICKHOUSE_DATABASE: database } });
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-topology-'));
  const clickhouse = createClient({ url: runtime.config.EARSHOT_CLICKHOUSE_URL });
  const processes: AppProcess[] = [];
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.kill()));
    await runtime.cleanup();
    await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
    await clickhouse.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await ensureModels(runtime.config.EARSHOT_MODELS_DIR);

  // The tenant's webhook target: HTTPS with a certificate from the tenant's own CA.
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
  const env = {
    EARSHOT_MODE: 'distributed',
    EARSHOT_LOG_LEVEL: 'warn',
    EARSHOT_DATA_DIR: dataDir,
    EARSHOT_SECRETS_KEY: c.EARSHOT_SECRETS_KEY as string,
    EARSHOT_STREAM_TOKEN_KEYS: c.EARSHOT_STREAM_TOKEN_KEYS as string,
    EARSHOT_KAFKA_NAMESPACE: c.EARSHOT_KAFKA_NAMESPACE as string,
    EARSHOT_CLICKHOUSE_DATABASE: database,
    EARSHOT_API_PORT: '0',
    EARSHOT_INGEST_PORT: '0',
    EARSHOT_STORE_BATCH_MAX_WAIT_MS: '200',
  };
  const track = async (p: Promise<AppProcess>) => {
    const started = await p;
    processes.push(started);
    return started;
  };
  // Downstream first (they start from the beginning of their topics anyway), then ingest, then
  // the API, which must hand out stream URLs pointing at the ingest process.
  const [ingest] = await Promise.all([
    track(startAppProcess('ingest', env)),
    track(startAppProcess('asr', env)),
    track(startAppProcess('webhooks', env)),
    track(startAppProcess('store', env)),
  ]);
  const api = await track(startAppProcess('api', { ...env, EARSHOT_INGEST_PUBLIC_URL: ingest.url('ingest') }));
  const apiUrl = api.url('api');
  t.equal(new Set(processes.map((p) => p.child.pid)).size, 5, 'five processes, one per app');

  const { customer, agent } = corpus.call.tracks;
  const callSid = newCallSid();
  const result = await simulateCall({
    apiUrl,
    ...tenant,
    callSid,
    inbound: new Uint8Array(readFileSync(customer.mulaw)),
    outbound: new Uint8Array(readFileSync(agent.mulaw)),
    speed: 2,
  });
  t.equal(result.start?.status, 200, 'start-streaming accepted by the api process');
  t.equal(result.stop?.status, 200, 'stop-streaming answered with the summary from the asr process');

  const expected = customer.utterances.length + agent.utterances.length;
  const forCall = () => receiver.received.filter((r) => (r.body as { externalConversationId?: string }).externalConversationId === callSid);
  await waitFor(`${expected} webhook posts`, () => forCall().length >= expected, 60_000);
  const posts = forCall().map((r) => r.body as WebhookBody);
  t.equal(posts.length, expected, 'every utterance posted once to the webhook');
  for (const role of ['customer', 'agent'] as const) {
    const starts = posts.filter((p) => p.sender.role === role).map((p) => p.autotranscribeResponse.start);
    t.same(
      starts,
      [...starts].sort((a, b) => a - b),
      `${role}: posted in transcription order`,
    );
  }

  // ClickHouse, straight from SQL (what an analyst sees), duplicates collapsed.
  const rows = async () => {
    const result = await clickhouse.query({
      query: `SELECT utterance_id, text FROM ${database}.utterances FINAL WHERE call_sid = '${callSid}'`,
      format: 'JSONEachRow',
    });
    return (await result.json()) as { utterance_id: string; text: string }[];
  };
  await waitFor(`${expected} rows in ClickHouse`, async () => (await rows()).length >= expected, 30_000);
  t.equal((await rows()).length, expected, 'every utterance stored once in ClickHouse');

  // The after-call API of the api process reads the same store.
  const messages = await httpJson('GET', `${apiUrl}/conversation/v1/conversation/messages?externalId=${callSid}`, {
    headers: { 'asapp-api-id': tenant.apiId, 'asapp-api-secret': tenant.apiSecret },
  });
  t.equal(messages.status, 200);
  const items = (messages.body as { items: { text: string; sender: { role: string } }[] }).items;
  t.equal(items.length, expected, 'the messages API lists every utterance');
  for (const [role, source] of [
    ['customer', customer],
    ['agent', agent],
  ] as const) {
    const texts = items.filter((i) => i.sender.role === role).map((i) => i.text);
    const wer = pooledWer(source.utterances.map((u, i) => [u.text, texts[i] ?? ''] as const));
    t.ok(wer.wer < 0.2, `${role}: WER ${(wer.wer * 100).toFixed(1)} % through the distributed path`);
  }

  // Graceful shutdown of every process (SIGTERM): each exits 0.
  for (const p of [...processes].reverse()) t.equal(await p.stop(), 0, `${p.apps} stopped cleanly`);
});

interface WebhookBody {
  externalConversationId: string;
  sender: { role: string };
  autotranscribeResponse: { start: number };
}
