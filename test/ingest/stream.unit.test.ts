import t from 'tap';
import type { CallEvent } from '../../apps/shared/src/events.js';
import { waitFor } from '../support/wait.js';
import {
  audioOf,
  endOf,
  eventsOf,
  expectedAudio,
  fileHarness,
  range,
  startHarness,
  TwilioStream,
  timestampOf,
  waitForEnd,
} from './support.js';

const h = await fileHarness();

t.test('two interleaved tracks arrive as 100 ms batches per track, every byte intact and in order', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.connected();
  call.start();
  // 53 frames per track: ten full 100 ms batches and a partial one flushed by `stop`.
  for (const chunk of range(1, 53)) {
    call.frame('inbound', chunk);
    call.frame('outbound', chunk);
    if (chunk === 20) call.mark('greeting-played');
    if (chunk === 30) call.dtmf('7');
  }
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid);
  const events = eventsOf(h.events, call.callSid);

  t.equal(events[0]?.type, 'StreamStarted', 'StreamStarted comes first');
  t.equal(events.at(-1)?.type, 'StreamEnded', 'StreamEnded comes last');
  const started = events[0] as Extract<CallEvent, { type: 'StreamStarted' }>;
  t.match(started.data, {
    streamSid: call.streamSid,
    accountSid: 'AC00000000000000000000000000000000',
    tracks: ['inbound', 'outbound'],
    customParameters: { FirstName: 'Jane', caller: '+15550001111' },
    encoding: 'audio/x-mulaw',
    sampleRate: 8000,
    channels: 1,
  });
  t.equal(started.tenantId, h.apiId, 'tenant is the token’s app');
  t.ok(events.every((e) => e.callSid === call.callSid && e.tenantId === h.apiId));

  for (const track of ['inbound', 'outbound'] as const) {
    const batches = audioOf(events, track);
    t.same(
      batches.map((b) => [b.firstChunk, b.lastChunk, b.durationMs]),
      [...range(0, 9).map((i) => [i * 5 + 1, i * 5 + 5, 100]), [51, 53, 60]],
      `${track}: ten 5-frame batches and a partial one`,
    );
    t.same(
      batches.map((b) => b.timestampMs),
      batches.map((b) => timestampOf(track, b.firstChunk)),
      `${track}: each batch keeps the Twilio timestamp of its first frame`,
    );
    t.ok(Buffer.concat(batches.map((b) => b.payload)).equals(expectedAudio(track, range(1, 53))), `${track}: every byte, in order`);
    t.ok(
      batches.every((b) => b.streamSid === call.streamSid),
      `${track}: batches name the stream`,
    );
  }
  const dtmf = events.find((e) => e.type === 'DtmfReceived');
  t.same(dtmf?.data, { streamSid: call.streamSid, track: 'inbound', digit: '7' });
  t.match(ended, { reason: 'stopped', detail: null, framesReceived: 106, framesDropped: 0 });
  t.ok((await h.metric('earshot_ingest_messages_total', { event: 'mark' })) >= 1, 'marks are counted');
  t.ok((await h.metric('earshot_ingest_frames_received_total', { track: 'outbound' })) >= 53);
  t.ok((await h.metric('earshot_ingest_batches_produced_total')) >= 22);
  call.close();
});

t.test('numbers instead of digit strings are accepted (chunk, timestamp, sampleRate)', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'], mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: '8000', channels: 1 } });
  for (const chunk of range(1, 5)) {
    call.send({
      event: 'media',
      sequenceNumber: chunk + 1,
      media: { track: 'inbound', chunk, timestamp: (chunk - 1) * 20, payload: expectedAudio('inbound', [chunk]).toString('base64') },
      streamSid: call.streamSid,
    });
  }
  call.stop();
  await waitForEnd(h.events, call.streamSid);
  const [batch] = audioOf(eventsOf(h.events, call.callSid), 'inbound');
  t.match(batch, { firstChunk: 1, lastChunk: 5, timestampMs: 0, durationMs: 100 });
  call.close();
});

t.test('a gap in chunk numbers or timestamps closes the batch so the gap stays visible', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  for (const chunk of [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14]) call.frame('inbound', chunk);
  // Chunk numbers continue but the timestamp jumps by a second (Twilio paused the track).
  call.media('inbound', 15, timestampOf('inbound', 15) + 1000, expectedAudio('inbound', [15]));
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid);
  const batches = audioOf(eventsOf(h.events, call.callSid), 'inbound');
  t.same(
    batches.map((b) => [b.firstChunk, b.lastChunk, b.timestampMs, b.durationMs]),
    [
      [1, 5, timestampOf('inbound', 1), 100],
      [6, 7, timestampOf('inbound', 6), 40],
      [10, 14, timestampOf('inbound', 10), 100],
      [15, 15, timestampOf('inbound', 15) + 1000, 20],
    ],
  );
  t.match(ended, { framesReceived: 13, framesDropped: 0 }, 'missing chunks are not counted as dropped: they never arrived');
  call.close();
});

t.test('out-of-order and duplicate chunks are dropped and counted, the rest is kept in order', async (t) => {
  const dupBefore = await h.metric('earshot_ingest_frames_dropped_total', { reason: 'duplicate' });
  const oooBefore = await h.metric('earshot_ingest_frames_dropped_total', { reason: 'out_of_order' });
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  // 3 again (duplicate), 5 before 4 (4 is then late), 6 twice, 2 again long after.
  for (const chunk of [1, 2, 3, 3, 5, 4, 6, 6, 7, 8, 9, 10, 2]) call.frame('inbound', chunk);
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid);
  const batches = audioOf(eventsOf(h.events, call.callSid), 'inbound');
  const chunks = [1, 2, 3, 5, 6, 7, 8, 9, 10];
  t.ok(Buffer.concat(batches.map((b) => b.payload)).equals(expectedAudio('inbound', chunks)), 'accepted frames, in chunk order');
  t.same(
    batches.map((b) => [b.firstChunk, b.lastChunk]),
    [
      [1, 3],
      [5, 9],
      [10, 10],
    ],
    'the skipped chunk 4 is a visible gap',
  );
  t.match(ended, { framesReceived: 13, framesDropped: 4 });
  t.equal((await h.metric('earshot_ingest_frames_dropped_total', { reason: 'duplicate' })) - dupBefore, 3);
  t.equal((await h.metric('earshot_ingest_frames_dropped_total', { reason: 'out_of_order' })) - oooBefore, 1);
  call.close();
});

t.test('a restarted stream for the same Call SID ends the older one as replaced', async (t) => {
  const first = await TwilioStream.open(h.mediaUrl());
  first.start();
  for (const chunk of range(1, 7)) first.frame('inbound', chunk);
  await waitFor('first stream started', () => h.events.some((e) => e.type === 'StreamStarted' && e.callSid === first.callSid));
  const second = await TwilioStream.open(h.mediaUrl(), { callSid: first.callSid });
  second.start();
  for (const chunk of range(1, 5)) second.frame('inbound', chunk);
  const closed = await first.closed;
  t.equal(closed.code, 1000, 'the older socket is closed normally');
  t.match(closed.reason, /replaced by stream MZ/);
  const ended = await waitForEnd(h.events, first.streamSid);
  t.match(ended, { reason: 'replaced', detail: `replaced by stream ${second.streamSid}`, framesReceived: 7 });
  second.stop();
  await waitForEnd(h.events, second.streamSid);
  const sequence = eventsOf(h.events, first.callSid).map((e) => `${e.type}:${'streamSid' in e.data ? e.data.streamSid : ''}`);
  t.same(
    sequence,
    [
      `StreamStarted:${first.streamSid}`,
      `AudioChunkReceived:${first.streamSid}`,
      `AudioChunkReceived:${first.streamSid}`,
      `StreamEnded:${first.streamSid}`,
      `StreamStarted:${second.streamSid}`,
      `AudioChunkReceived:${second.streamSid}`,
      `StreamEnded:${second.streamSid}`,
    ],
    'the older stream’s partial batch and end precede the new stream, in one ordered sequence',
  );
  t.ok((await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'replaced' })) >= 1);
  second.close();
});

t.test('a socket closed without stop ends the stream as closed_without_stop and flushes partial batches', async (t) => {
  const call = await TwilioStream.open(h.mediaUrl());
  call.start();
  for (const chunk of range(1, 8)) call.frame('outbound', chunk);
  await call.flushed();
  call.ws.terminate(); // the TCP connection drops mid-stream
  const ended = await waitForEnd(h.events, call.streamSid);
  t.match(ended, { reason: 'closed_without_stop', framesReceived: 8, framesDropped: 0 });
  t.match(ended.detail, /socket closed without stop \(code 1006/);
  const batches = audioOf(eventsOf(h.events, call.callSid), 'outbound');
  t.ok(Buffer.concat(batches.map((b) => b.payload)).equals(expectedAudio('outbound', range(1, 8))));
});

t.test('/healthz, /readyz, /metrics and /openapi.json answer on the ingest port', async (t) => {
  const base = h.server.url.replace(/^ws/, 'http');
  const health = await fetch(`${base}/healthz`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  t.equal((await fetch(`${base}/readyz`)).status, 200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  for (const name of [
    'earshot_ingest_sessions_open',
    'earshot_ingest_frames_received_total',
    'earshot_ingest_frames_dropped_total',
    'earshot_ingest_audio_bytes_total',
    'earshot_ingest_batches_produced_total',
    'earshot_ingest_produce_latency_seconds',
    'earshot_ingest_upgrades_rejected_total',
  ]) {
    t.match(metrics, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  const openapi = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string };
  t.equal(openapi.openapi, '3.1.0');
  const missing = await fetch(`${base}/nope`);
  t.equal(missing.status, 404);
  t.match(await missing.json(), { error: { code: '404-01' } });
  t.equal((await fetch(`${base}/twilio-media/abc`)).status, 426, 'a plain GET on the media path is told to upgrade');
});

t.test('stop() ends open streams with StreamEnded "ingest shutting down" and flushes their audio', async (t) => {
  const own = await startHarness();
  t.teardown(() => own.close());
  const call = await TwilioStream.open(own.mediaUrl());
  call.start();
  for (const chunk of range(1, 3)) call.frame('inbound', chunk);
  await waitFor('the server has the frames', async () => (await own.metric('earshot_ingest_frames_received_total')) === 3);
  await own.server.stop();
  const ended = endOf(own.events, call.streamSid);
  t.match(ended, { reason: 'closed_without_stop', detail: 'ingest shutting down', framesReceived: 3 });
  t.equal(audioOf(own.events, 'inbound')[0]?.durationMs, 60, 'the partial batch was flushed before the end');
  const closed = await call.closed;
  t.equal(closed.code, 1001);
  await t.rejects(TwilioStream.open(own.mediaUrl()), 'no new sockets after stop');
});
