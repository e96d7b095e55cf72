import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startApi } from '../../apps/api/main.js';
import { startAsrApp } from '../../apps/asr/main.js';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { startIngest } from '../../apps/ingest/main.js';
import type { loadEarshotConfig } from '../../apps/shared/src/config.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import type { WebhookSettingsInput } from '../../apps/shared/src/tenants/webhook-settings.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startWebhooksApp } from '../../apps/webhooks/main.js';
import { startOAuthServer } from '../../test/webhooks/support/oauth-server.js';
import { createTestCa } from '../../test/webhooks/support/pki.js';
import { type Receiver, startReceiver } from '../../test/webhooks/support/receiver.js';
import { generateTestAudio } from '../test-audio/corpus.js';
import { openRuntime, pct, sleep, until } from './latency.bench.js';
import type { BenchResult } from './run.js';
import { benchRun } from './support/bench-env.js';
import { dropNamespace } from './support/namespace.js';
import { xorshift } from './support/stats.js';

/**
 * Webhook delivery on the real Kafka broker and schema registry (a namespace of the run's own).
 *
 *   npm run bench -- webhooks [--messages 3000] [--calls 1,10] [--seed 1] [--no-latency]
 *
 * 1. Throughput, per auth mode: `--messages` utterance events (100 calls) are written to
 *    earshot.utterances.v1 first; then a webhooks app (fresh group) starts and drains them to
 *    a local HTTPS receiver (certificate of a CA made for the run, given as the tenant's CA).
 *    deliveries/s = messages received / (first → last arrival at the receiver). Outcomes are
 *    written to earshot.deliveries.v1 as in production.
 * 2. Latency: N concurrent two-party corpus calls at real time through ingest → asr
 *    (Moonshine) → webhooks → the receiver; end of speech = wall time the simulator sent the
 *    frame holding the true end of speech; → received = the receiver has the transcript.
 */
interface Options {
  readonly messages: number;
  readonly calls: readonly number[];
  readonly latency: boolean;
  /** Seeds the calls' start offsets, as in the latency bench: the same seed, the same bursts. */
  readonly seed: number;
}

function parse(args: readonly string[]): Options {
  const value = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const messages = Number(value('messages') ?? 3000);
  if (!Number.isInteger(messages) || messages < 100) throw new Error('--messages: a whole number, at least 100');
  const calls = (value('calls') ?? '1,10').split(',').map(Number);
  if (calls.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--calls: a comma-separated list of positive integers');
  const seed = Number(value('seed') ?? 1);
  if (!Number.isInteger(seed)) throw new Error('--seed: a whole number');
  return { messages, calls, latency: !args.includes('--no-latency'), seed };
}

const progress = (line: string) => console.error(`webhooks: ${line}`);

export async function run(args: string[]): Promise<BenchResult> {
  const o = parse(args);
  const began = Date.now();
  const {
    config,
    namespace,
    dataDir: dir,
  } = benchRun('webhooks', {
    EARSHOT_WEBHOOK_MAX_PENDING: String(o.messages), // the backlog is the point here: nothing dropped
    EARSHOT_WEBHOOK_MAX_WAIT_MS: '3600000', // nor dropped as stale while it drains
    // Ten real-time calls on a shared 2-core machine can fill the model queue (64): room for bursts, so the run measures latency instead of failing.
    EARSHOT_ASR_MAX_QUEUE: process.env.EARSHOT_ASR_MAX_QUEUE ?? '256',
  });
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  let runtime: Runtime | undefined;
  try {
    runtime = await openRuntime(config);
    const rt = runtime;
    const ca = await createTestCa(dir, 'bench');
    const server = await ca.issue('server', 'serverAuth');
    const client = await ca.issue('client', 'clientAuth');
    const oauthClient = { id: 'bench', secret: randomBytes(16).toString('hex') };
    const oauth = await startOAuthServer(server, oauthClient);
    closers.push(() => oauth.close());
    const admin = new AppAdmin(rt.eventLog, rt.credentials);
    const tls = { cert: server.cert, key: server.key };
    const modes: [string, object, (r: Receiver) => WebhookSettingsInput, Parameters<typeof startReceiver>[1]?][] = [
      ['HTTPS, custom CA', tls, () => ({ caPem: ca.cert })],
      ['HTTPS + secret token header', tls, () => ({ caPem: ca.cert, tokenName: 'X-Hook-Token', tokenValue: 'bench-token' })],
      [
        'mTLS',
        { ...tls, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
        () => ({ caPem: ca.cert, clientCertPem: client.cert, clientKeyPem: client.key }),
      ],
      [
        'OAuth2 client_credentials',
        tls,
        () => ({ caPem: ca.cert, oauthTokenUrl: oauth.tokenUrl, oauthClientId: oauthClient.id, oauthClientSecret: oauthClient.secret }),
        async (r) => (String(r.headers.authorization ?? '').startsWith('Bearer ') ? 200 : 401),
      ],
    ];
    for (const [name, serverTls, auth, behaviour] of modes) {
      const receiver = await startReceiver(serverTls, behaviour ?? (() => 200));
      closers.push(() => receiver.close());
      const { apiId } = await admin.create({ name, webhookUrl: receiver.url, webhookAuth: auth(receiver) });
      await until(() => rt.apps.get(apiId) !== undefined, 10_000);
      const calls = Array.from({ length: 100 }, () => newCallSid());
      for (let i = 0; i < o.messages; i += 500) {
        const batch = Array.from({ length: Math.min(500, o.messages - i) }, (_, j) =>
          utterance(apiId, calls[(i + j) % 100] as string, i + j),
        );
        await rt.eventLog.produce(
          TOPICS.utterances,
          batch.map((u) => ({ key: u.callSid, value: u })),
        );
      }
      const tokensBefore = oauth.tokenRequests;
      const app = await startWebhooksApp(rt, { groupId: `bench-${randomUUID()}` });
      // Timed from the first message received (group join and the first fetch excluded) to the last.
      await until(() => receiver.received.length > 0, 60_000);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const done = await until(() => receiver.received.length >= o.messages, 120_000);
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (performance.now() - t0) / 1000;
      const first = receiver.received[0]?.at ?? 0;
      const last = receiver.received.at(-1)?.at ?? first;
      const seconds = Math.max(0.001, (last - first) / 1000);
      await app.stop();
      const ok = receiver.received.length;
      rows.push([
        name,
        o.messages,
        Math.round((ok - 1) / seconds),
        Number((((cpu.user + cpu.system) / 1e6 / cpuSeconds) * 100).toFixed(0)),
        Number(((cpu.user + cpu.system) / 1000 / Math.max(1, ok)).toFixed(2)),
        done ? '-' : `only ${ok} received`,
        name.startsWith('OAuth2') ? oauth.tokenRequests - tokensBefore : '-',
      ]);
      progress(`${name}: ${Math.round((ok - 1) / seconds)} deliveries/s`);
      // The next mode's dispatcher reads the topic from the start: this tenant's messages are skipped, not sent again.
      await admin.disable(apiId);
      await until(() => rt.apps.get(apiId)?.disabled === true, 10_000);
    }
    notes.push(
      `Throughput: ${o.messages} messages over 100 calls (per-call order kept), ${config.EARSHOT_WEBHOOK_CONNECTIONS} keep-alive connections per target (EARSHOT_WEBHOOK_CONNECTIONS), P-256 certificates, TLS 1.3. The receiver (Node https, JSON parse) and oidc-provider run in this same process and share its CPU: the rates are a lower bound for the dispatcher. CPU ms per delivery (this process: dispatcher, receiver, Kafka client, TLS both ends) depends little on the machine's load; deliveries/s depends on it a lot, since this process gets only its share of the 2 cores. Time includes the Kafka fetches and writing one DeliveryAttempted event per message to Kafka.`,
    );

    if (o.latency) {
      await latency(rt, config, o, admin, ca.cert, tls, rows, notes, closers);
    }
    notes.push(
      `Shared 2-core machine (other helpers' work runs alongside; numbers are noisy). Load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; run took ${Math.round((Date.now() - began) / 1000)} s.`,
    );
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await runtime?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await dropNamespace(namespace, progress);
  }
  return {
    title: 'Webhook delivery through real Kafka: throughput per auth mode to a local HTTPS receiver, and end of speech → webhook received',
    columns: [
      'scenario',
      'messages',
      'deliveries/s (throughput) or latency',
      'process CPU %',
      'CPU ms per delivery',
      'problems',
      'OAuth2 token fetches',
    ],
    rows,
    notes,
  };
}

async function latency(
  rt: Runtime,
  config: ReturnType<typeof loadEarshotConfig>,
  o: Options,
  admin: AppAdmin,
  caPem: string,
  tls: { cert: string; key: string },
  rows: (string | number)[][],
  notes: string[],
  closers: (() => Promise<void>)[],
): Promise<void> {
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR, { log: (line) => progress(`test-audio: ${line}`) });
  await ensureModels(config.EARSHOT_MODELS_DIR);
  const audio = {
    customer: new Uint8Array(readFileSync(corpus.call.tracks.customer.mulaw)),
    agent: new Uint8Array(readFileSync(corpus.call.tracks.agent.mulaw)),
  };
  const receiver = await startReceiver(tls, () => 200);
  closers.push(() => receiver.close());
  const asr = await startAsrApp(rt);
  closers.push(() => asr.stop());
  const webhooks = await startWebhooksApp(rt);
  closers.push(() => webhooks.stop());
  const ingest = await startIngest(rt);
  closers.push(() => ingest.stop());
  const api = await startApi({ ...rt, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
  closers.push(() => api.stop());
  const tenant = await admin.create({ name: 'latency', webhookUrl: receiver.url, webhookAuth: { caPem } });
  // When each utterance event was built (asr's occurredAtMs): separates the webhook hop from recognition.
  const built = new Map<string, number>();
  const reader = rt.eventLog.createConsumer({
    groupId: `bench-utterances-${randomUUID()}`,
    topics: [TOPICS.utterances],
    fromBeginning: true,
  });
  await reader.run(async (batch) => {
    for (const r of batch.records) built.set((r.value as UtteranceRecognized).utteranceId, (r.value as UtteranceRecognized).occurredAtMs);
  });
  closers.push(() => reader.stop());
  await until(() => rt.apps.get(tenant.apiId) !== undefined, 10_000);
  const script = corpus.call.tracks;
  const perCall = script.customer.utterances.length + script.agent.utterances.length;
  const bodyOf = (r: Receiver['received'][number]) =>
    r.body as { externalConversationId: string; sender: { role: string }; autotranscribeResponse: { start: number; end: number } };

  // Warm-up, not measured (connections, schema ids, the model's first runs).
  const warmSid = newCallSid();
  await simulateCall({ apiUrl: api.url, ...tenant, callSid: warmSid, inbound: audio.customer, speed: 4 });
  await until(() => receiver.received.some((r) => bodyOf(r).externalConversationId === warmSid), 30_000);

  for (const n of o.calls) {
    progress(`latency: ${n} call(s) at real time...`);
    const frames = Math.ceil(Math.max(audio.customer.length, audio.agent.length) / 160);
    const random = xorshift(o.seed);
    const plans = Array.from({ length: n }, () => ({
      callSid: newCallSid(),
      delay: random() * 2000,
      sent: { inbound: new Float64Array(frames), outbound: new Float64Array(frames) },
    }));
    await Promise.all(
      plans.map(async (plan) => {
        await sleep(plan.delay);
        await simulateCall({
          apiUrl: api.url,
          ...tenant,
          callSid: plan.callSid,
          inbound: audio.customer,
          outbound: audio.agent,
          speed: 1,
          onFrame: (track, chunk) => {
            plan.sent[track][chunk - 1] = Date.now();
          },
        });
      }),
    );
    const mine = (sid: string) => receiver.received.filter((r) => bodyOf(r).externalConversationId === sid);
    await until(() => plans.every((p) => mine(p.callSid).length >= perCall), 30_000);
    const samples: number[] = [];
    const hops: number[] = [];
    let received = 0;
    for (const plan of plans) {
      const got = mine(plan.callSid);
      received += got.length;
      for (const r of got) {
        const at = built.get(String(r.headers['earshot-utterance-id']));
        if (at !== undefined) hops.push(r.at - at);
      }
      for (const [role, track, side] of [
        ['customer', script.customer, 'inbound'],
        ['agent', script.agent, 'outbound'],
      ] as const) {
        for (const u of track.utterances) {
          // The webhook of the same call and role overlapping the scripted utterance, latest end (a split turn counts at its last piece).
          const covering = got
            .filter((r) => bodyOf(r).sender.role === role)
            .filter(
              (r) =>
                Math.min(bodyOf(r).autotranscribeResponse.end, u.endMs) - Math.max(bodyOf(r).autotranscribeResponse.start, u.startMs) > 0,
            )
            .sort((a, b) => bodyOf(b).autotranscribeResponse.end - bodyOf(a).autotranscribeResponse.end)[0];
          const sentAt = plan.sent[side][Math.floor((u.endMs * 8 - 1) / 160)];
          if (covering && sentAt) samples.push(covering.at - sentAt);
        }
      }
    }
    rows.push([
      `end of speech → webhook received, ${n} call(s)`,
      `${samples.length} of ${n * perCall} utterances (${received} webhooks)`,
      `end of speech → received p50 ${Math.round(pct(samples, 0.5))} ms / p95 ${Math.round(pct(samples, 0.95))} ms; of which the webhook hop (event built → received) p50 ${Math.round(pct(hops, 0.5))} ms / p95 ${Math.round(pct(hops, 0.95))} ms`,
      '-',
      '-',
      samples.length < n * perCall ? `${n * perCall - samples.length} scripted utterances without a webhook` : '-',
      '-',
    ]);
    progress(`latency ${n}: p50 ${pct(samples, 0.5)} p95 ${pct(samples, 0.95)}`);
    await sleep(2000);
  }
  notes.push(
    `Latency: ingest + api + asr (${asr.describe}, EARSHOT_ASR_MAX_QUEUE ${config.EARSHOT_ASR_MAX_QUEUE}) + webhooks in this process on real Kafka (otherwise production settings); each call is the corpus call (${Math.round(corpus.call.durationMs / 1000)} s, ${perCall} scripted utterances), real time, starts staggered 0-2 s (seed ${o.seed}, as in the latency bench: the p95 at 10 calls depends on how many turns end together), one warm-up call first. It includes the endpointing silence (EARSHOT_ASR_MIN_SILENCE_MS, 400 ms by default) and Moonshine; the webhook hop (asr's occurredAtMs → the receiver has it: produce, the webhooks consumer's fetch, the HTTPS POST) is shown apart, since recognition dominates and suffers most from a busy machine.`,
  );
}

function utterance(tenantId: string, callSid: string, i: number): UtteranceRecognized {
  const now = Date.now();
  return {
    eventId: randomUUID(),
    utteranceId: `${callSid}:MZbench:inbound:${i * 8000}`,
    callSid,
    tenantId,
    streamId: '00000000-0000-4000-8000-000000000001',
    role: 'customer',
    senderExternalId: 'customer-1',
    track: 'inbound',
    startMs: i * 1000,
    endMs: i * 1000 + 900,
    text: 'I would like to check the status of my order please',
    unredactedText: null,
    language: 'en-US',
    tokens: null,
    engine: 'bench',
    model: 'bench',
    speechEndedAtMs: now,
    occurredAtMs: now,
  };
}
