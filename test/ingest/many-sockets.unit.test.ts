import t from 'tap';
import { sleep, waitFor } from '../support/wait.js';
import { audioOf, eventsOf, expectedAudio, range, startHarness, TwilioStream, waitForEnd } from './support.js';

/**
 * 1,000 sockets opened and dropped (some before start, some mid-stream, some after garbage)
 * while one healthy call streams: the server stays up, counts them, and the healthy call
 * keeps every byte. Clients are spawned asynchronously in waves so the test never blocks the
 * event loop the in-process server runs on.
 */
t.test('1,000 sockets opened and dropped: the server stays up, counts them, a concurrent call keeps all its audio', async (t) => {
  const h = await startHarness();
  t.teardown(() => h.close());
  const healthy = await TwilioStream.open(h.mediaUrl());
  healthy.start();
  let chunk = 0;
  let streaming = true;
  const streamer = (async () => {
    while (streaming) {
      for (let i = 0; i < 5; i++) {
        chunk++;
        healthy.frame('inbound', chunk);
        healthy.frame('outbound', chunk);
      }
      await sleep(1);
    }
  })();

  const started = Date.now();
  let startedStreams = 0;
  for (let wave = 0; wave < 10; wave++) {
    const sockets = await Promise.all(range(1, 100).map(() => TwilioStream.open(h.mediaUrl())));
    sockets.forEach((s, i) => {
      if (i % 3 === 1) {
        s.start();
        s.frame('inbound', 1);
        startedStreams++;
      } else if (i % 3 === 2) {
        s.send('garbage');
      }
    });
    await Promise.all(sockets.map((s) => s.flushed()));
    for (const s of sockets) s.ws.terminate();
  }
  const openMs = Date.now() - started;
  await waitFor('only the healthy session is left', async () => (await h.metric('earshot_ingest_sessions_open')) === 1);
  t.equal((await fetch(`${h.server.url.replace(/^ws/, 'http')}/healthz`)).status, 200, 'the server is up');
  t.equal(await h.metric('earshot_ingest_upgrades_accepted_total'), 1001);

  const endedWithoutStop = await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'closed_without_stop' });
  const endedBeforeStart = await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'closed_before_start' });
  t.equal(endedWithoutStop + endedBeforeStart, 1000, 'every dropped socket is counted');
  t.equal(endedWithoutStop, startedStreams, 'the ones that had started ended as closed_without_stop');

  streaming = false;
  await streamer;
  healthy.stop();
  const ended = await waitForEnd(h.events, healthy.streamSid);
  t.match(ended, { reason: 'stopped', framesReceived: chunk * 2, framesDropped: 0 });
  const events = eventsOf(h.events, healthy.callSid);
  for (const track of ['inbound', 'outbound'] as const) {
    const audio = Buffer.concat(audioOf(events, track).map((b) => b.payload));
    t.ok(audio.equals(expectedAudio(track, range(1, chunk))), `${track}: all ${chunk} frames intact and in order`);
  }
  t.comment(`opened and dropped 1,000 sockets in ${openMs} ms while streaming ${chunk} frames per track`);
  healthy.close();
});
