import t from 'tap';
import { EarshotError } from '../../apps/shared/src/errors.js';
import { sleep, waitFor } from '../support/wait.js';
import { audioOf, endOf, eventsOf, expectedAudio, range, startHarness, TwilioStream, waitForEnd } from './support.js';

/** A slow or unavailable event log: bounded buffering per call, oldest audio shed, order kept. */

t.test('when the log stalls, each call keeps at most EARSHOT_INGEST_MAX_BUFFERED_MS of audio and sheds the oldest', async (t) => {
  const h = await startHarness({ env: { EARSHOT_INGEST_MAX_BUFFERED_MS: '1000' } });
  t.teardown(() => h.close());
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let produces = 0;
  h.gate.wait = () => {
    produces++;
    return released;
  };

  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  await waitFor('StreamStarted is in flight', () => produces === 1);
  for (const chunk of range(1, 150)) call.frame('inbound', chunk); // 3 s of audio, 30 batches
  await waitFor('all frames received', async () => (await h.metric('earshot_ingest_frames_received_total')) === 150);
  t.equal((await fetch(`${h.server.url.replace(/^ws/, 'http')}/healthz`)).status, 200, 'the server keeps answering');
  t.equal(await h.metric('earshot_ingest_buffered_audio_ms'), 1000, 'one second of audio is buffered, no more');
  t.equal(await h.metric('earshot_ingest_frames_dropped_total', { reason: 'backpressure' }), 100);
  call.stop();
  await call.flushed();
  await sleep(50);
  release();

  const ended = await waitForEnd(h.events, call.streamSid);
  t.match(ended, { reason: 'stopped', framesReceived: 150, framesDropped: 100 }, 'StreamEnded reports what was shed');
  const events = eventsOf(h.events, call.callSid);
  t.same(
    events.map((e) => e.type),
    ['StreamStarted', ...Array(10).fill('AudioChunkReceived'), 'StreamEnded'],
    'lifecycle records are never shed',
  );
  const audio = Buffer.concat(audioOf(events, 'inbound').map((b) => b.payload));
  t.ok(audio.equals(expectedAudio('inbound', range(101, 150))), 'the newest second survives, intact and in order');
  const warnings = h.logs.filter((l) => l.reason === 'backpressure');
  t.equal(warnings.length, 1, 'logged once');
  t.equal(warnings[0]?.callSid, call.callSid, 'with the Call SID');
  call.close();
});

t.test('a log that is down for a while gets every record, in order, once it recovers', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  let failures = 0;
  h.gate.wait = async () => {
    if (failures < 4) {
      failures++;
      throw new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', 'broker down', { retriable: true });
    }
  };
  const call = await TwilioStream.open(h.mediaUrl());
  call.start();
  for (const chunk of range(1, 20)) {
    call.frame('inbound', chunk);
    call.frame('outbound', chunk);
  }
  call.dtmf('5');
  call.stop();
  const ended = await waitForEnd(h.events, call.streamSid, 20_000);
  t.match(ended, { reason: 'stopped', framesReceived: 40, framesDropped: 0 });
  t.equal(failures, 4);
  const events = eventsOf(h.events, call.callSid);
  t.equal(events[0]?.type, 'StreamStarted');
  t.equal(events.at(-1)?.type, 'StreamEnded');
  t.equal(events.filter((e) => e.type === 'DtmfReceived').length, 1);
  for (const track of ['inbound', 'outbound'] as const) {
    t.ok(Buffer.concat(audioOf(events, track).map((b) => b.payload)).equals(expectedAudio(track, range(1, 20))), `${track} intact`);
  }
  t.ok((await h.metric('earshot_ingest_produce_failures_total', { retriable: 'true' })) >= 1);
  call.close();
});

t.test('with a slow, jittery log, concurrent calls each land in Twilio order', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  h.gate.wait = () => sleep(Math.random() * 15);
  const calls = await Promise.all(range(1, 8).map(() => TwilioStream.open(h.mediaUrl())));
  for (const call of calls) call.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 60)) {
    for (const call of calls) call.frame('inbound', chunk);
    if (chunk % 10 === 0) await sleep(5); // let produces interleave with arriving audio
  }
  for (const call of calls) call.stop();
  for (const call of calls) await waitForEnd(h.events, call.streamSid);
  for (const call of calls) {
    const events = eventsOf(h.events, call.callSid);
    const batches = audioOf(events, 'inbound');
    t.same(
      batches.map((b) => b.firstChunk),
      range(0, 11).map((i) => i * 5 + 1),
      `${call.callSid}: batches in order`,
    );
    t.equal(events[0]?.type, 'StreamStarted');
    t.equal(events.at(-1)?.type, 'StreamEnded');
    call.close();
  }
});

t.test('stop() waits for the log, then gives up after the drain timeout and counts what was lost', async (t) => {
  const h = await startHarness({ ingest: { drainTimeoutMs: 300 } });
  t.teardown(() => h.close());
  let produces = 0;
  h.gate.wait = () => {
    produces++;
    return new Promise(() => {}); // never acknowledges
  };
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  await waitFor('StreamStarted is in flight', () => produces === 1);
  for (const chunk of range(1, 10)) call.frame('inbound', chunk);
  await waitFor('frames received', async () => (await h.metric('earshot_ingest_frames_received_total')) === 10);
  const started = Date.now();
  await h.server.stop();
  const took = Date.now() - started;
  t.ok(took >= 280 && took < 3000, `stop took ${took} ms`);
  t.equal(endOf(h.events, call.streamSid), undefined, 'nothing was acknowledged');
  t.equal(await h.metric('earshot_ingest_records_lost_total'), 4, 'StreamStarted in flight; two batches and StreamEnded queued');
});
