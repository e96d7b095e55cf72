import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { httpJson } from '../../apps/cli/src/simulate/http-json.js';
import { FRAME_BYTES, newCallSid } from '../../apps/cli/src/simulate/twilio-call.js';
import type { CallEvent, SessionEvent } from '../../apps/shared/src/events.js';
import { readToEnd } from '../../apps/shared/src/read-to-end.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { metricValue, scrapeMetrics, startTopology } from '../support/topology.js';
import { sleep, waitFor } from '../support/wait.js';
import { assertWer, runScenario } from './support/scenario.js';

/**
 * Issue 9, scenario 5, through the whole pipeline: 200 Twilio streams (valid token) open and
 * drop within a second while one real call is transcribed. Each dropped call does one of ten
 * things (nothing; `connected`; `start`; `start` and audio; `start`, audio and `stop`; ...), most
 * end by closing the socket (a close frame or a dead TCP connection), and its backend calls
 * start-streaming before the socket opens, after it dropped, before and stop-streaming after,
 * or not at all. Then:
 * - the real call: every utterance stored once, WER as in the baseline (runScenario);
 * - every process is still up and healthy;
 * - ingest's metrics count each dropped stream by how it ended, every message and frame;
 * - the event log holds each dropped stream's audio whole, and no utterance of a call whose
 *   audio came before its start-streaming (SPEC §3.2);
 * - asr: its `earshot_asr_calls` gauge counts every dropped call that reached it, no asr error,
 *   every session that was stopped (Twilio `stop` or stop-streaming) is closed, and the sessions
 *   left open are exactly those of calls that were started and then got neither stop.
 * asr has no HTTP port, so its process runs an API too, whose /metrics is that process's.
 */
const DROPPED = 200;
const BURST_AT_MS = 4000; // speed 2: 8 s into the real call, the customer speaking

type Kind = 'silent' | 'connected' | 'start' | 'media' | 'media-stop' | 'start-stop';
/** What the i-th dropped call does, by i % 10: 70 % end by closing the socket, 30 % with `stop`. */
const KINDS: readonly Kind[] = [
  'silent',
  'connected',
  'start',
  'start',
  'media',
  'media',
  'media',
  'media-stop',
  'media-stop',
  'start-stop',
];
type Backend = 'none' | 'start-before' | 'start-after' | 'start-before-stop-after';
/** What its backend does, by floor(i / 10) % 4, so that every kind meets every backend. */
const BACKENDS: readonly Backend[] = ['none', 'start-before', 'start-after', 'start-before-stop-after'];

interface Dropped {
  readonly callSid: string;
  readonly kind: Kind;
  readonly backend: Backend;
  /** Media frames sent per track. */
  readonly frames: number;
  readonly abrupt: boolean;
  startStatus: number | null;
  stopStatus: number | null;
  /** Wall-clock times of the socket's open, of our close (or terminate) and of its end (reported, not asserted). */
  openedAt: number;
  droppedAt: number;
  closedAt: number;
}

const planOf = (i: number): Dropped => {
  const kind = KINDS[i % 10] as Kind;
  return {
    callSid: newCallSid(),
    kind,
    backend: BACKENDS[Math.floor(i / 10) % 4] as Backend,
    frames: kind === 'media' || kind === 'media-stop' ? 10 + (i % 7) * 5 : 0, // 200-800 ms
    abrupt: i % 3 === 0 && kind !== 'media-stop' && kind !== 'start-stop', // no close frame
    startStatus: null,
    stopStatus: null,
    openedAt: 0,
    droppedAt: 0,
    closedAt: 0,
  };
};
const sendsStart = (d: Dropped) => d.kind !== 'silent' && d.kind !== 'connected';
const sendsStop = (d: Dropped) => d.kind === 'media-stop' || d.kind === 'start-stop';
const started = (d: Dropped) => d.backend !== 'none';

t.test('200 calls opened and dropped within a second do not disturb a live call or leave asr state behind', async (t) => {
  const topology = await startTopology(t, { apps: ['webhooks', 'store'] });
  const [ingest, asr] = await Promise.all([topology.start('ingest'), topology.start('asr', {}, { withApi: true })]);
  await topology.start('api');
  // Ingest prints its ws:// address; /metrics and /healthz are plain HTTP on the same port.
  const ingestUrl = ingest.url('ingest').replace(/^ws/, 'http');
  const apiUrl = topology.apiUrl();
  const asrMetricsUrl = asr.url('api');
  const headers = { 'asapp-api-id': topology.tenant.apiId, 'asapp-api-secret': topology.tenant.apiSecret };
  const { customer, agent } = topology.corpus.call.tracks;
  // The dropped calls' audio: the agent's first words (from 1 s on), the customer's silence.
  const inbound = readFileSync(customer.mulaw).subarray(8000);
  const outbound = readFileSync(agent.mulaw).subarray(8000);

  const baseline = await runScenario(t, topology, 'undisturbed baseline (dropped calls)', null, { record: false });

  const ingestBefore = await scrapeMetrics(ingestUrl);
  const asrBefore = await scrapeMetrics(asrMetricsUrl);
  const dropped = Array.from({ length: DROPPED }, (_, i) => planOf(i));

  const startStreaming = async (d: Dropped, i: number): Promise<void> => {
    const body = { namespace: 'twilio', guid: d.callSid, customerId: `c-${i}`, agentId: `a-${i}` };
    d.startStatus = (await httpJson('POST', `${apiUrl}/mg-autotranscribe/v1/start-streaming`, { headers, body })).status;
  };
  const stopStreaming = async (d: Dropped): Promise<void> => {
    const body = { namespace: 'twilio', guid: d.callSid };
    d.stopStatus = (await httpJson('POST', `${apiUrl}/mg-autotranscribe/v1/stop-streaming`, { headers, body })).status;
  };
  /** One dropped stream: open, say what its kind says, close within a second. */
  const playSocket = async (d: Dropped, i: number, streamingUrl: string): Promise<void> => {
    const ws = new WebSocket(streamingUrl);
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`dropped call ${i}: upgrade refused, HTTP ${res.statusCode}`)));
    });
    d.openedAt = Date.now();
    const closed = new Promise<void>((resolve) =>
      ws.once('close', () => {
        d.closedAt = Date.now();
        resolve();
      }),
    );
    const streamSid = `MZ${randomBytes(16).toString('hex')}`;
    let sequence = 0;
    const send = (m: Record<string, unknown>) => ws.send(JSON.stringify({ ...m, sequenceNumber: String(++sequence), streamSid }));
    if (d.kind !== 'silent') ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    if (sendsStart(d)) {
      send({
        event: 'start',
        start: {
          accountSid: 'AC00000000000000000000000000000000',
          streamSid,
          callSid: d.callSid,
          tracks: ['inbound', 'outbound'],
          customParameters: {},
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
      });
    }
    for (let k = 0; k < d.frames; k++) {
      for (const [track, audio] of [
        ['inbound', inbound],
        ['outbound', outbound],
      ] as const) {
        const payload = audio.subarray(k * FRAME_BYTES, (k + 1) * FRAME_BYTES).toString('base64');
        send({ event: 'media', media: { track, chunk: String(k + 1), timestamp: String(k * 20), payload } });
      }
    }
    if (sendsStop(d)) send({ event: 'stop', stop: { accountSid: 'AC00000000000000000000000000000000', callSid: d.callSid } });
    await sleep(50 + ((i * 37) % 900)); // every socket lives less than a second
    d.droppedAt = Date.now();
    if (d.abrupt) ws.terminate();
    else ws.close(1000);
    await closed;
  };

  let socketsMs = 0;
  const outcome = await runScenario(
    t,
    topology,
    `${DROPPED} calls opened and dropped within a second, one real call`,
    async () => {
      await sleep(BURST_AT_MS);
      // One stream URL for all: a URL may open any number of sessions within its TTL (SPEC §3.1).
      const url = await httpJson('GET', `${apiUrl}/mg-autotranscribe/v1/twilio-media-stream-url`, { headers });
      const streamingUrl = (url.body as { streamingUrl: string }).streamingUrl;
      const startsBefore = (d: Dropped) => d.backend === 'start-before' || d.backend === 'start-before-stop-after';
      await Promise.all(dropped.map((d, i) => (startsBefore(d) ? startStreaming(d, i) : undefined)));
      // All 200 sockets at once, each closed less than a second after it opened.
      const began = Date.now();
      await Promise.all(dropped.map((d, i) => playSocket(d, i, streamingUrl)));
      socketsMs = Date.now() - began;
      // The backend reacts to the drop: starts late, or stops.
      await Promise.all(
        dropped.map((d, i) =>
          d.backend === 'start-after' ? startStreaming(d, i) : d.backend === 'start-before-stop-after' ? stopStreaming(d) : undefined,
        ),
      );
    },
    { calls: DROPPED + 1 },
  );
  assertWer(t, outcome, baseline);
  const opens = dropped.map((d) => d.openedAt);
  const longest = (f: (d: Dropped) => number) => Math.max(...dropped.map(f));
  t.comment(
    `${DROPPED} sockets in ${socketsMs} ms: opened over ${Math.max(...opens) - Math.min(...opens)} ms, each dropped at most ${longest((d) => d.droppedAt - d.openedAt)} ms after its open, closing took up to ${longest((d) => d.closedAt - d.droppedAt)} ms`,
  );

  // The backend's calls were all accepted (start before or after the stream, stop after it).
  const startedCalls = dropped.filter(started);
  t.same(
    startedCalls.filter((d) => d.startStatus !== 200).map((d) => [d.kind, d.backend, d.startStatus]),
    [],
    'every start-streaming of a dropped call answered 200',
  );
  // Stop after the drop: 200 with the summary, or 409 where the session had already ended with
  // Twilio's `stop` (SPEC §3.3: stop on a call that is not started). Never 503: that is "asr did
  // not answer in time", and asr is not slow here.
  const stoppedByApi = dropped.filter((d) => d.backend === 'start-before-stop-after');
  t.same(
    stoppedByApi.filter((d) => d.stopStatus !== 200 && d.stopStatus !== 409).map((d) => [d.kind, d.stopStatus]),
    [],
    'every stop-streaming after the drop answered 200 or 409 (503: the API waited for an asr answer that never came)',
  );

  // Every process is still up and answering.
  for (const [app, ps] of topology.processes)
    for (const p of ps) t.ok(p.child.exitCode === null && p.child.signalCode === null, `${app} (pid ${p.child.pid}) still running`);
  for (const url of [ingestUrl, apiUrl, asrMetricsUrl])
    t.equal((await httpJson('GET', `${url}/healthz`)).status, 200, `${url}/healthz answers 200`);

  // ingest counted every dropped stream by how it ended, and every message and frame.
  const ingestAfter = await scrapeMetrics(ingestUrl);
  const delta = (name: string, labels: Record<string, string> = {}) =>
    metricValue(ingestAfter, name, labels) - metricValue(ingestBefore, name, labels);
  const count = (f: (d: Dropped) => boolean) => dropped.filter(f).length;
  const realFrames = {
    inbound: Math.ceil(readFileSync(customer.mulaw).length / FRAME_BYTES),
    outbound: Math.ceil(readFileSync(agent.mulaw).length / FRAME_BYTES),
  };
  const droppedFrames = dropped.reduce((n, d) => n + d.frames, 0);
  t.equal(
    delta('earshot_ingest_upgrades_accepted_total'),
    DROPPED + 1,
    'ingest: every upgrade accepted (the dropped calls and the real one)',
  );
  t.equal(delta('earshot_ingest_upgrades_rejected_total'), 0, 'ingest: no upgrade refused');
  t.equal(
    delta('earshot_ingest_sessions_ended_total', { outcome: 'closed_before_start' }),
    count((d) => !sendsStart(d)),
    'ingest: sockets closed before start counted',
  );
  t.equal(
    delta('earshot_ingest_sessions_ended_total', { outcome: 'closed_without_stop' }),
    count((d) => sendsStart(d) && !sendsStop(d)),
    'ingest: streams closed without stop counted',
  );
  t.equal(
    delta('earshot_ingest_sessions_ended_total', { outcome: 'stopped' }),
    count(sendsStop) + 1,
    'ingest: streams ended by stop counted (and the real call)',
  );
  t.equal(delta('earshot_ingest_sessions_ended_total'), DROPPED + 1, 'ingest: every session ended exactly once');
  t.equal(metricValue(ingestAfter, 'earshot_ingest_sessions_open'), 0, 'ingest: no session left open');
  t.equal(
    delta('earshot_ingest_messages_total', { event: 'connected' }),
    count((d) => d.kind !== 'silent') + 1,
    'ingest: connected messages',
  );
  t.equal(delta('earshot_ingest_messages_total', { event: 'start' }), count(sendsStart) + 1, 'ingest: start messages');
  t.equal(delta('earshot_ingest_messages_total', { event: 'stop' }), count(sendsStop) + 1, 'ingest: stop messages');
  for (const track of ['inbound', 'outbound'] as const)
    t.equal(
      delta('earshot_ingest_frames_received_total', { track }),
      droppedFrames + realFrames[track],
      `ingest: every ${track} frame accepted`,
    );
  t.equal(delta('earshot_ingest_frames_dropped_total'), 0, 'ingest: no message dropped');

  // The log has each dropped stream whole: one start, one end with the right reason, all audio.
  const events = (await readToEnd(topology.runtime.eventLog, TOPICS.callEvents)).map((r) => r.value as CallEvent);
  const byCall = new Map<string, CallEvent[]>();
  for (const e of events) byCall.set(e.callSid, [...(byCall.get(e.callSid) ?? []), e]);
  const mismatches: unknown[] = [];
  for (const d of dropped) {
    const own = byCall.get(d.callSid) ?? [];
    const ends = own.flatMap((e) => (e.type === 'StreamEnded' ? [e.data.reason] : []));
    const frames = (track: string) =>
      own.reduce(
        (n, e) => n + (e.type === 'AudioChunkReceived' && e.data.track === track ? e.data.lastChunk - e.data.firstChunk + 1 : 0),
        0,
      );
    const seen = {
      starts: own.filter((e) => e.type === 'StreamStarted').length,
      ends,
      inbound: frames('inbound'),
      outbound: frames('outbound'),
    };
    const expected = {
      starts: sendsStart(d) ? 1 : 0,
      ends: sendsStart(d) ? [sendsStop(d) ? 'stopped' : 'closed_without_stop'] : [],
      inbound: d.frames,
      outbound: d.frames,
    };
    if (JSON.stringify(seen) !== JSON.stringify(expected)) mismatches.push({ callSid: d.callSid, kind: d.kind, seen, expected });
  }
  t.same(mismatches, [], 'the event log has every dropped stream whole (start, end and reason, every frame)');

  // asr: sessions opened for every started call; closed for those stopped by Twilio before the
  // start was late, or by stop-streaming. A started call with neither stop keeps its session:
  // asr waits for Twilio's reconnect or the backend's stop, with no time limit (see the report).
  const closedExpected = dropped.filter((d) => d.backend === 'start-before-stop-after' || (d.backend === 'start-before' && sendsStop(d)));
  const sessionsOf = async () => {
    const sessions = (await readToEnd(topology.runtime.eventLog, TOPICS.sessions)).map((r) => r.value as SessionEvent);
    const of = (type: SessionEvent['type']) => new Set(sessions.filter((s) => s.type === type).map((s) => s.callSid));
    return { opened: of('TranscriptionSessionOpened'), closed: of('TranscriptionSessionClosed') };
  };
  await waitFor(
    'asr opened every started call and closed every stopped one',
    async () => {
      const { opened, closed } = await sessionsOf();
      return startedCalls.every((d) => opened.has(d.callSid)) && closedExpected.every((d) => closed.has(d.callSid));
    },
    60_000,
  ).catch(() => undefined); // the assertions below say which
  const { opened, closed } = await sessionsOf();
  const ids = (list: Dropped[]) => list.map((d) => d.callSid).sort();
  const droppedIds = new Set(dropped.map((d) => d.callSid));
  t.same(
    [...opened].filter((c) => droppedIds.has(c)).sort(),
    ids(startedCalls),
    'asr: a session for each started dropped call, none for the others',
  );
  t.same([...closed].filter((c) => droppedIds.has(c)).sort(), ids(closedExpected), 'asr: closed exactly the sessions that were stopped');
  const leftOpen = startedCalls.filter((d) => !closed.has(d.callSid));
  t.comment(
    `asr sessions of dropped calls left open: ${leftOpen.length} (${['start-before', 'start-after'].map((b) => `${b}: ${leftOpen.filter((d) => d.backend === b).length}`).join(', ')})`,
  );

  // asr's metrics: every dropped call that reached it has state (until its idle expiry), and nothing failed.
  const reachedAsr = dropped.filter((d) => sendsStart(d) || started(d)).length;
  const asrCallsExpected = metricValue(asrBefore, 'earshot_asr_calls') + reachedAsr + 1;
  let asrAfter = await scrapeMetrics(asrMetricsUrl);
  await waitFor(
    'the asr calls gauge to settle',
    async () => {
      asrAfter = await scrapeMetrics(asrMetricsUrl);
      return metricValue(asrAfter, 'earshot_asr_calls') === asrCallsExpected;
    },
    10_000,
  ).catch(() => undefined);
  t.equal(
    metricValue(asrAfter, 'earshot_asr_calls'),
    asrCallsExpected,
    `asr: earshot_asr_calls counts the ${reachedAsr} dropped calls that reached it and the real one`,
  );
  t.equal(metricValue(asrAfter, 'earshot_asr_errors_total') - metricValue(asrBefore, 'earshot_asr_errors_total'), 0, 'asr: no error');

  // Audio before start-streaming is never transcribed: utterances only for calls started before their audio.
  const rows = (await (
    await topology.clickhouse.query({
      query: `SELECT call_sid, count() AS n FROM ${topology.database}.utterances FINAL GROUP BY call_sid`,
      format: 'JSONEachRow',
    })
  ).json()) as { call_sid: string; n: string }[];
  const transcribable = new Set(
    dropped.filter((d) => d.frames > 0 && (d.backend === 'start-before' || d.backend === 'start-before-stop-after')).map((d) => d.callSid),
  );
  t.same(
    rows.filter((r) => droppedIds.has(r.call_sid) && !transcribable.has(r.call_sid)),
    [],
    'no utterance for a dropped call whose audio came before its start-streaming (or that had none)',
  );
  t.comment(
    `utterances of dropped calls: ${rows.filter((r) => droppedIds.has(r.call_sid)).reduce((n, r) => n + Number(r.n), 0)} from ${transcribable.size} calls with audio after start-streaming`,
  );
});
