import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateTestAudio } from '../../../../scripts/test-audio/corpus.js';
import { startApi } from '../../../api/main.js';
import { startAsrApp } from '../../../asr/main.js';
import { startIngest } from '../../../ingest/main.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { createLogger } from '../../../shared/src/logger.js';
import { createRuntime } from '../../../shared/src/runtime.js';
import { AppAdmin } from '../../../shared/src/tenants/app-admin.js';
import { createTranscriptStore } from '../../../shared/src/transcript-store/transcript-store.js';
import { startStoreApp } from '../../../store/main.js';
import { parseOptions } from '../args.js';
import { readCredentials } from '../credentials.js';
import { httpJson } from '../simulate/http-json.js';
import { newCallSid, simulateCall } from '../simulate/twilio-call.js';

const USAGE = `Usage: earshot demo [--api URL --credentials FILE] [--speed N] [--json]

Plays a two-party sample call (a customer and an agent on their own tracks, synthesized by the
project's test-audio script on first use) to a gateway exactly as Twilio would, shows each
utterance in this terminal as it is transcribed (role, time into the call, latency from the end
of speech), then prints the after-call transcript from
GET /conversation/v1/conversation/messages?externalId=<Call SID>.

Without --api it starts a gateway in this process (embedded mode: ingest, api, asr and store,
free ports, state in a temporary folder removed afterwards). With --api it uses a running one,
embedded or distributed: the utterances are followed through its live page (/live).

  --api URL            a running gateway's API (e.g. http://127.0.0.1:8080)
  --credentials FILE   JSON {"apiId", "apiSecret"} of an app on that gateway (earshot apps create)
  --ca FILE            CA certificate for a gateway with a private certificate
  --speed N            1 = real time (default, about 45 s), 4 = four times faster
  --json               one JSON line per utterance, then one with the transcript`;

interface LiveUtterance {
  readonly utteranceId: string;
  readonly role: 'customer' | 'agent';
  readonly text: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly createdTimestamp: string;
  readonly latencyMs: number;
}

interface Message {
  readonly text: string;
  readonly sender: { readonly role: string; readonly externalId: string };
  readonly createdTimestamp: string;
}

interface Target {
  readonly apiUrl: string;
  readonly apiId: string;
  readonly apiSecret: string;
  readonly ca?: Buffer;
  readonly stop: () => Promise<void>;
}

export async function demoCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      api: { type: 'string' },
      credentials: { type: 'string' },
      ca: { type: 'string' },
      speed: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if ((values.api === undefined) !== (values.credentials === undefined)) throw usage('--api and --credentials go together');
  const speed = Number(values.speed ?? '1');
  if (!Number.isFinite(speed) || speed < 0.25 || speed > 100)
    throw usage(`--speed must be a number from 0.25 to 100, not '${values.speed}'`);
  const json = values.json === true;
  const say = (line: string): void => {
    if (!json) console.log(line);
  };

  say('Preparing the sample call (synthesized once with festival, then cached)...');
  const corpus = generateTestAudio(undefined, { log: (line) => say(`  ${line}`) });
  const { customer, agent } = corpus.call.tracks;

  const target = values.api
    ? {
        apiUrl: values.api.replace(/\/$/, ''),
        ...readCredentials(values.credentials as string, USAGE),
        ca: values.ca ? readFileSync(values.ca) : undefined,
        stop: async () => {},
      }
    : await startEmbeddedGateway(loadConfig(), say);
  let interrupted = false;
  // Ctrl-C: stop the embedded gateway cleanly (its temporary folder goes too), then exit.
  const onSignal = (): void => {
    interrupted = true;
    say('\nInterrupted: stopping.');
    void target.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    const cookie = await liveLogin(target);
    const callSid = newCallSid();
    say(`\nCall ${callSid}: ${Math.round(corpus.call.durationMs / 1000)} s of audio at ${speed}x, played as Twilio would.`);
    say('Utterances as they are transcribed (time into the call, role, latency from end of speech to text):\n');
    const call = simulateCall({
      apiUrl: target.apiUrl,
      apiId: target.apiId,
      apiSecret: target.apiSecret,
      ca: target.ca,
      callSid,
      inbound: new Uint8Array(readFileSync(customer.mulaw)),
      outbound: new Uint8Array(readFileSync(agent.mulaw)),
      speed,
      stopDelayMs: 500,
    });
    let callDone = false;
    call.then(
      () => {
        callDone = true;
      },
      () => {
        callDone = true;
      },
    );

    const seen: LiveUtterance[] = [];
    const events = await followCall(
      target,
      cookie,
      callSid,
      () => callDone || interrupted,
      (u) => {
        if (seen.some((s) => s.utteranceId === u.utteranceId)) return;
        seen.push(u);
        if (json) console.log(JSON.stringify({ type: 'utterance', callSid, ...u }));
        else say(`  ${mediaTime(u.startMs).padStart(7)}  ${u.role.padEnd(8)}  ${u.text}  (${u.latencyMs} ms)`);
      },
    );
    const result = await call;
    if (result.start?.status !== 200) throw new EarshotError('EARSHOT_DEMO_FAILED', `start-streaming answered ${result.start?.status}`);
    // stop-streaming answers once the session closed, with its transcript count: wait until all of them arrived here.
    // A 503 means the asr consumer is behind (a busy machine): then wait until each track's last
    // scripted turn has arrived (a turn may come as more than one utterance: pauses between sentences).
    let expected: number | undefined;
    if (result.stop?.status === 200) {
      const summary = (result.stop.body as { autotranscribeResponse?: Record<string, { summary?: { transcripts?: number } }> })
        .autotranscribeResponse;
      expected = (summary?.customer?.summary?.transcripts ?? 0) + (summary?.agent?.summary?.transcripts ?? 0);
    } else {
      console.error(`earshot: stop-streaming answered ${result.stop?.status}: transcription is behind; waiting for the rest`);
    }
    const lastTurnIn = (role: 'customer' | 'agent', track: typeof customer) =>
      seen.some((u) => u.role === role && u.endMs >= (track.utterances.at(-1)?.endMs ?? 0) - 300);
    const allIn = () => (expected === undefined ? lastTurnIn('customer', customer) && lastTurnIn('agent', agent) : seen.length >= expected);
    await until(() => allIn() || interrupted, 60_000);
    events.close();
    if (!allIn())
      say(`  (only ${seen.length}${expected === undefined ? '' : ` of the ${expected}`} utterances of the session arrived in time)`);
    const latencies = seen.map((u) => u.latencyMs).sort((a, b) => a - b);
    if (latencies.length > 0) {
      say(
        `\n${seen.length} utterances; latency from end of speech: median ${latencies[Math.floor((latencies.length - 1) / 2)]} ms, max ${latencies.at(-1)} ms.`,
      );
    }

    const transcript = await afterCallTranscript(target, callSid, seen);
    if (json) {
      console.log(JSON.stringify({ type: 'transcript', callSid, source: transcript.source, items: transcript.items }));
    } else {
      say(
        transcript.source === 'messages-api'
          ? `\nAfter-call transcript (GET /conversation/v1/conversation/messages?externalId=${callSid}):\n`
          : `\nAfter-call transcript (from the live utterances: ${transcript.reason}):\n`,
      );
      for (const m of transcript.items) say(`  ${m.createdTimestamp.slice(11, 19)}  ${m.sender.role.padEnd(8)}  ${m.text}`);
    }
    return seen.length > 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    await target.stop();
  }
}

/** ingest, api, asr and store in this process, on free ports, with state in a temporary folder. */
async function startEmbeddedGateway(base: Config, say: (line: string) => void): Promise<Target> {
  say('Starting an embedded gateway in this process (ingest, api, asr, store)...');
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-demo-'));
  const config: Config = {
    ...base,
    EARSHOT_MODE: 'embedded',
    EARSHOT_DATA_DIR: dataDir,
    EARSHOT_STORE_FILE: undefined,
    EARSHOT_RECORDINGS_DIR: undefined,
    EARSHOT_EXPORT_DIR: undefined,
    EARSHOT_API_HOST: '127.0.0.1',
    EARSHOT_API_PORT: 0,
    EARSHOT_INGEST_HOST: '127.0.0.1',
    EARSHOT_INGEST_PORT: 0,
    EARSHOT_INGEST_PUBLIC_URL: undefined,
    EARSHOT_TLS_CERT_FILE: undefined,
    EARSHOT_TLS_KEY_FILE: undefined,
    EARSHOT_LIVE_PAGE: 'on', // the demo follows the call through it
    EARSHOT_LOG_LEVEL: base.EARSHOT_LOG_LEVEL === 'info' ? 'warn' : base.EARSHOT_LOG_LEVEL, // the terminal is for the transcript
  };
  const logger = createLogger({ level: config.EARSHOT_LOG_LEVEL, name: 'earshot-demo' });
  const runtime = await createRuntime(config, { logger, name: 'earshot-demo' });
  // One transcript store shared by the store app (writes) and the API (reads), as in earshot start.
  const transcripts = createTranscriptStore(config, logger.child({ app: 'store' }));
  const stops: Partial<Record<'ingest' | 'api' | 'asr' | 'store', () => Promise<void>>> = {};
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopAll();
    return stopping;
  };
  const stopAll = async (): Promise<void> => {
    // As earshot start: ingest stops taking audio, the API commands, asr finishes, the store flushes.
    for (const name of ['ingest', 'api', 'asr', 'store'] as const) {
      await stops[name]?.().catch((error) => logger.error({ err: error }, `demo.${name}_stop_failed`));
    }
    await transcripts.close().catch((error) => logger.error({ err: error }, 'demo.store_close_failed'));
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await transcripts.migrate();
    stops.store = (await startStoreApp(runtime, { store: transcripts })).stop;
    stops.asr = (await startAsrApp(runtime)).stop;
    const ingest = await startIngest(runtime);
    stops.ingest = ingest.stop;
    // The API hands out stream URLs for the ingest port just picked.
    const api = await startApi({ ...runtime, config: { ...config, EARSHOT_INGEST_PUBLIC_URL: ingest.url } }, { store: transcripts });
    stops.api = api.stop;
    const app = await new AppAdmin(runtime.eventLog, runtime.credentials).create({ name: 'demo' });
    await until(() => runtime.apps.get(app.apiId) !== undefined, 10_000);
    say(`  api ${api.url} (live page: ${api.url}/live), ingest ${ingest.url}`);
    return { apiUrl: api.url, apiId: app.apiId, apiSecret: app.apiSecret, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The live page's login: the session cookie for the event stream. */
async function liveLogin(target: Target): Promise<string> {
  const res = await httpJson('POST', `${target.apiUrl}/live/session`, {
    body: { apiId: target.apiId, apiSecret: target.apiSecret },
    ca: target.ca,
  });
  if (res.status === 404)
    throw new EarshotError(
      'EARSHOT_DEMO_FAILED',
      'the gateway has no live page (EARSHOT_LIVE_PAGE=off?); the demo follows the call through it',
    );
  if (res.status !== 200)
    throw new EarshotError('EARSHOT_DEMO_FAILED', `logging in to the live page failed: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  const header = res.headers['set-cookie'];
  const cookie = /^(earshot_live=[^;]+)/.exec(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''))?.[1];
  if (!cookie) throw new EarshotError('EARSHOT_DEMO_FAILED', 'the live page answered without a session cookie');
  return cookie;
}

/**
 * Follows the call's server-sent events (GET /live/calls/{id}/events). The call is known to the
 * API once start-streaming was accepted; until then the stream is a 404 and is retried. A
 * dropped stream reconnects with Last-Event-ID (the API replays what was missed).
 */
async function followCall(
  target: Target,
  cookie: string,
  callSid: string,
  finished: () => boolean,
  onUtterance: (u: LiveUtterance) => void,
): Promise<{ close(): void }> {
  let closed = false;
  let current: IncomingMessage | undefined;
  let lastId: string | undefined;
  const url = new URL(`${target.apiUrl}/live/calls/${callSid}/events`);
  const open = (): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        { ca: target.ca, headers: { accept: 'text/event-stream', cookie, ...(lastId ? { 'last-event-id': lastId } : {}) } },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
  const loop = async (): Promise<void> => {
    while (!closed) {
      const res = await open().catch(() => undefined);
      if (res?.statusCode !== 200) {
        res?.resume();
        // 404 until start-streaming is accepted, 503 while the API loads; anything else will not get better.
        if (res && res.statusCode !== 404 && res.statusCode !== 503) {
          console.error(`earshot: following the call on the live page failed: HTTP ${res.statusCode}`);
          return;
        }
        if (finished() && !lastId) await sleep(1000);
        await sleep(100);
        continue;
      }
      current = res;
      res.setEncoding('utf8');
      let pending = '';
      for await (const chunk of res as AsyncIterable<string>) {
        pending += chunk;
        for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!/^event: utterance$/m.test(block) || data === undefined) continue;
          const utterance = JSON.parse(data) as LiveUtterance;
          lastId = utterance.utteranceId;
          onUtterance(utterance);
        }
      }
      if (!closed) await sleep(200);
    }
  };
  const running = loop();
  running.catch(() => undefined);
  return {
    close: () => {
      closed = true;
      current?.destroy();
    },
  };
}

/**
 * The messages API has the call once the store app wrote it (batches of up to a second or so);
 * wait until it has as many utterances as were seen live. Without that route (404) or a store
 * (503), the utterances seen live are the transcript.
 */
async function afterCallTranscript(
  target: Target,
  callSid: string,
  seen: readonly LiveUtterance[],
): Promise<{ source: 'messages-api' | 'live'; reason?: string; items: Message[] }> {
  const headers = { 'asapp-api-id': target.apiId, 'asapp-api-secret': target.apiSecret };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await httpJson('GET', `${target.apiUrl}/conversation/v1/conversation/messages?externalId=${callSid}`, {
      headers,
      ca: target.ca,
    });
    const items = (res.body as { items?: Message[] } | null)?.items;
    if (res.status === 200 && items && items.length >= seen.length) return { source: 'messages-api', items };
    if (res.status === 200 && Date.now() > deadline) {
      return fromLive(seen, `the messages API had ${items?.length ?? 0} of them after 15 s: is the store app running?`);
    }
    if (res.status === 404) return fromLive(seen, 'this gateway has no messages API');
    if (res.status !== 200 && res.status !== 503) {
      throw new EarshotError(
        'EARSHOT_DEMO_FAILED',
        `the messages API answered HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`,
      );
    }
    if (Date.now() > deadline) return fromLive(seen, 'the transcript store did not answer (HTTP 503)');
    await sleep(300);
  }
}

function fromLive(seen: readonly LiveUtterance[], reason: string): { source: 'live'; reason: string; items: Message[] } {
  const items = [...seen]
    .sort((a, b) => a.startMs - b.startMs)
    .map((u) => ({ text: u.text, sender: { role: u.role, externalId: u.role }, createdTimestamp: u.createdTimestamp }));
  return { source: 'live', reason, items };
}

function mediaTime(ms: number): string {
  const tenths = Math.floor(ms / 100);
  return `${Math.floor(tenths / 600)}:${String(Math.floor(tenths / 10) % 60).padStart(2, '0')}.${tenths % 10}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(50);
}

const usage = (message: string) => new EarshotError('EARSHOT_USAGE', `${message}\n\n${USAGE}`);
