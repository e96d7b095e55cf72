import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import twilio from 'twilio';
import { startApi } from '../../apps/api/main.js';
import { startAsrApp } from '../../apps/asr/main.js';
import { ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { startIngest } from '../../apps/ingest/main.js';
import { createKafkaEventLog } from '../../apps/shared/src/adapters/kafka-event-log.js';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import { createRuntime } from '../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startWebhooksApp } from '../../apps/webhooks/main.js';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { TwilioStream } from '../ingest/support.js';
import { testConfig } from '../support/infra.js';
import { waitFor } from '../support/wait.js';

/**
 * Issue 9, "logs contain nothing sensitive": a realistic run on the real broker and registry,
 * every app logging at debug level into one file: an app with a Twilio auth token and a
 * webhook secret token, a stream URL, a redacted call whose customer reads out a card number
 * (real speech through ingest and the real model), its webhooks, stop, the recording listed and
 * downloaded, plus the usual bad requests (wrong secret, forged stream token, bad frames).
 * Then the file is searched for every secret and every piece of content of that run.
 */

const FRAME = 160;
const CONTENT_WORDS = /four one one one|4111|card number/i;

t.test('a full call logged at debug level leaks no secret, token, audio or utterance text', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-log-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = join(dir, 'earshot.log');
  const logStream = createWriteStream(logFile);

  const secretsKey = randomBytes(32).toString('base64');
  const streamTokenKey = randomBytes(32).toString('base64');
  const config = loadEarshotConfig({
    env: {
      EARSHOT_MODE: 'distributed',
      EARSHOT_DATA_DIR: dir,
      EARSHOT_LOG_LEVEL: 'debug',
      EARSHOT_SECRETS_KEY: secretsKey,
      EARSHOT_STREAM_TOKEN_KEYS: `k1:${streamTokenKey}`,
      EARSHOT_KAFKA_NAMESPACE: `test-logs-${randomBytes(4).toString('hex')}`,
      EARSHOT_API_PORT: '0',
      EARSHOT_INGEST_PORT: '0',
      EARSHOT_TWILIO_SIGNATURE: 'required',
    },
  });
  const logger = createLogger({ level: 'debug', name: 'security-logs', destination: logStream });
  const eventLog = createKafkaEventLog({
    brokers: testConfig.EARSHOT_KAFKA_BROKERS.split(','),
    clientId: 'earshot-log-secrets',
    schemaRegistryUrl: testConfig.EARSHOT_SCHEMA_REGISTRY_URL,
    partitions: config.EARSHOT_TOPIC_PARTITIONS,
    logger,
    fetchMaxWaitMs: 50,
    heartbeatMs: 300,
    sessionTimeoutMs: 6000,
    namespace: config.EARSHOT_KAFKA_NAMESPACE,
  });
  const runtime = await createRuntime(config, { logger, eventLog, name: 'security-logs' });
  let closed = false;
  const closeRuntime = async () => {
    if (closed) return;
    closed = true;
    await runtime.close();
  };
  t.teardown(closeRuntime);

  // A webhook target that records what it got (plain HTTP is allowed on loopback).
  const deliveries: { headers: IncomingHttpHeaders; body: string }[] = [];
  const target = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => target.close(() => resolve())));

  const corpus = generateTestAudio();
  await ensureModels(config.EARSHOT_MODELS_DIR);
  const asr = await startAsrApp(runtime);
  const webhooks = await startWebhooksApp(runtime);
  const ingest = await startIngest(runtime);
  const api = await startApi({ ...runtime, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
  const stopApps = async () => {
    await ingest.stop();
    await api.stop();
    await asr.stop();
    await webhooks.stop();
  };

  const twilioAuthToken = randomBytes(16).toString('hex');
  const webhookToken = `whk-${randomBytes(24).toString('hex')}`;
  const tenant = await new AppAdmin(runtime.eventLog, runtime.credentials).create({
    name: 'log audit tenant',
    twilioAuthToken,
    webhookUrl: `http://127.0.0.1:${(target.address() as AddressInfo).port}/hook`,
    webhookAuth: { tokenName: 'x-hook-token', tokenValue: webhookToken },
  });
  await waitFor('the app reaches the directory', () => runtime.apps.get(tenant.apiId) !== undefined);
  const auth = { 'asapp-api-id': tenant.apiId, 'asapp-api-secret': tenant.apiSecret };
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = auth) =>
    fetch(`${api.url}${path}`, {
      method,
      headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  // Bad requests first: their error paths log too.
  t.equal(
    (await call('GET', '/mg-autotranscribe/v1/twilio-media-stream-url', undefined, { ...auth, 'asapp-api-secret': 'wrong' })).status,
    401,
  );

  const { streamingUrl } = (await (await call('GET', '/mg-autotranscribe/v1/twilio-media-stream-url')).json()) as { streamingUrl: string };
  const token = streamingUrl.split('/').at(-1) as string;
  const forged = `${token.slice(0, -4)}AAAA`;
  const refused = await TwilioStream.open(streamingUrl.replace(token, forged)).catch((error: { status?: number }) => error.status);
  t.equal(refused, 401, 'a forged stream token is refused');

  const callSid = `CA${randomBytes(16).toString('hex')}`;
  const start = await call('POST', '/mg-autotranscribe/v1/start-streaming', {
    namespace: 'twilio',
    guid: callSid,
    customerId: 'customer-secure',
    agentId: 'agent-secure',
    autotranscribeParams: { redactionOutput: 'redacted', audioRecordingAllowed: true },
  });
  t.equal(start.status, 200, 'start-streaming');

  const signature = twilio.getExpectedTwilioSignature(twilioAuthToken, streamingUrl, {});
  const stream = await TwilioStream.open(streamingUrl, { callSid, headers: { 'x-twilio-signature': signature } });
  stream.start({ tracks: ['inbound', 'outbound'], customParameters: { caller: '+15550001111' } });
  const speech = readFileSync(corpus.sentences.find((s) => s.id === 'card-number')?.mulaw as string);
  const silence = Buffer.alloc(FRAME, 0xff);
  const frames = Math.ceil(speech.length / FRAME) + 100; // 2 s of silence after the speech ends the utterance
  const payloads: string[] = [];
  for (let i = 0; i < frames; i++) {
    const frame = i * FRAME < speech.length ? Buffer.alloc(FRAME, 0xff) : silence;
    if (i * FRAME < speech.length) speech.copy(frame, 0, i * FRAME, Math.min(speech.length, (i + 1) * FRAME));
    const payload = frame.toString('base64');
    payloads.push(payload);
    stream.media('inbound', i + 1, i * 20, payload);
    stream.media('outbound', i + 1, i * 20, silence);
    if (i % 50 === 49) await stream.flushed();
  }
  stream.media('inbound', frames + 1, frames * 20, 'not base64!'); // a bad frame: logged with the Call SID
  await stream.flushed();

  const utterances: UtteranceRecognized[] = [];
  const consumer = runtime.eventLog.createConsumer({ groupId: `logs-${Math.random()}`, topics: [TOPICS.utterances], fromBeginning: true });
  await consumer.run(async (batch) => {
    for (const r of batch.records) if (r.key === callSid) utterances.push(r.value as UtteranceRecognized);
  });
  t.teardown(() => consumer.stop());
  await waitFor('the customer utterance', () => utterances.some((u) => u.role === 'customer'), 90_000);
  await waitFor('its webhook delivery', () => deliveries.some((d) => d.body.includes(callSid)), 30_000);
  t.equal(deliveries[0]?.headers['x-hook-token'], webhookToken, 'the webhook secret was used');
  t.match(utterances[0]?.text ?? '', /#{4}/, 'the card number was redacted');

  const stop = await call('POST', '/mg-autotranscribe/v1/stop-streaming', { namespace: 'twilio', guid: callSid });
  t.equal(stop.status, 200, 'stop-streaming');
  stream.stop();
  await stream.flushed();
  stream.close();
  const listing = (await (await call('GET', `/mg-autotranscribe/v1/recordings?externalId=${callSid}`)).json()) as {
    items: { audioPath: string }[];
  };
  t.equal(listing.items.length, 1, 'one recording');
  const wav = await call('GET', listing.items[0]?.audioPath as string);
  t.equal(wav.status, 200, 'recording downloaded');
  await wav.arrayBuffer();

  await consumer.stop();
  await stopApps();
  await closeRuntime();
  await new Promise<void>((resolve) => logStream.end(resolve));

  // ---- the search ------------------------------------------------------------------------
  const log = readFileSync(logFile, 'utf8');
  const lines = log.split('\n').filter(Boolean);
  // The search means something only if the run's events were logged: each step left its line.
  for (const msg of [
    'api.request',
    'ingest.upgrade_rejected',
    'ingest.stream_started',
    'ingest.message_dropped',
    'ingest.stream_ended',
    'asr.started',
    'webhooks.started',
  ])
    t.ok(log.includes(`"msg":"${msg}`), `${msg} was logged`);
  t.ok(
    lines.every((l) => l.startsWith('{')),
    'every line is JSON',
  );
  t.ok(log.includes('"level":20'), 'debug lines were written');
  t.ok(log.includes(callSid), 'the call is in the logs (so a leak of its content would be too)');

  const secrets: Record<string, string> = {
    'api secret': tenant.apiSecret,
    'stream token': token,
    'stream token signature': token.split('.')[2] as string,
    EARSHOT_SECRETS_KEY: secretsKey,
    'EARSHOT_SECRETS_KEY (hex)': Buffer.from(secretsKey, 'base64').toString('hex'),
    'stream token signing key': streamTokenKey,
    'Twilio auth token': twilioAuthToken,
    'X-Twilio-Signature': signature,
    'webhook secret token': webhookToken,
  };
  const lineWith = (value: string) => lines.find((l) => l.includes(value));
  for (const [name, value] of Object.entries(secrets)) t.notOk(lineWith(value), `no ${name} in the logs`, { line: lineWith(value) });
  const speechPayloads = payloads.filter((p) => p !== silence.toString('base64'));
  t.ok(speechPayloads.length > 100, 'speech frames were sent');
  t.notOk(
    speechPayloads.some((p) => log.includes(p.slice(0, 40))),
    'no audio payload (not even its first 40 base64 characters)',
  );
  t.notOk(/[A-Za-z0-9+/]{120,}/.test(log), 'no long base64 run of any kind');
  for (const text of utterances.map((u) => u.text ?? '').filter(Boolean))
    t.notOk(log.includes(text), `no utterance text ("${text.slice(0, 24)}…")`);
  const said = corpus.sentences.find((s) => s.id === 'card-number')?.utterances[0]?.text as string;
  t.notOk(log.includes(said), 'no unredacted text of the redacted call');
  t.notOk(CONTENT_WORDS.test(log), 'not even its words');
  t.notOk(log.includes('+15550001111'), "no Twilio custom parameter value (the caller's number)");
});
