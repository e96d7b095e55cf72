import t from 'tap';
import { sleep } from '../support/wait.js';
import { audioOf, eventsOf, expectedAudio, startHarness, TwilioStream, waitForEnd } from './support.js';

/**
 * EARSHOT_INGEST_IDLE_TIMEOUT_S (minimum 8 s) ends sockets that send no Twilio message.
 * WebSocket pings do not count: the `ws` client answers them, as Twilio would.
 */
t.test('a socket that opens and sends nothing is closed after the idle timeout; an active one stays', async (t) => {
  const h = await startHarness({ env: { EARSHOT_INGEST_IDLE_TIMEOUT_S: '8' } });
  t.teardown(() => h.close());
  const opened = Date.now();
  const silent = await TwilioStream.open(h.mediaUrl());
  const quiet = await TwilioStream.open(h.mediaUrl());
  quiet.start({ tracks: ['inbound'] });
  quiet.frame('inbound', 1);
  quiet.frame('inbound', 2);
  const active = await TwilioStream.open(h.mediaUrl());
  active.start({ tracks: ['inbound'] });
  let chunk = 0;
  const ticker = setInterval(() => active.frame('inbound', ++chunk), 1000);
  t.teardown(() => clearInterval(ticker));

  const [silentClose, quietClose] = await Promise.all([silent.closed, quiet.closed]);
  const elapsed = Date.now() - opened;
  t.ok(elapsed >= 8000, `closed after ${elapsed} ms (not before the timeout)`);
  t.equal(silentClose.code, 1008);
  t.match(silentClose.reason, /idle timeout: no message for 8 s/);
  t.equal(quietClose.code, 1008);
  const ended = await waitForEnd(h.events, quiet.streamSid);
  t.match(ended, { reason: 'errored', detail: 'idle timeout: no message for 8 s', framesReceived: 2 });
  t.ok(
    audioOf(eventsOf(h.events, quiet.callSid), 'inbound')[0]?.payload.equals(expectedAudio('inbound', [1, 2])),
    'its partial batch was flushed',
  );
  t.equal(await h.metric('earshot_ingest_sessions_ended_total', { outcome: 'idle_before_start' }), 1);

  await sleep(200);
  t.equal(active.ws.readyState, active.ws.OPEN, 'a socket that keeps sending stays open');
  t.ok(
    audioOf(eventsOf(h.events, active.callSid), 'inbound').length >= 1,
    'and its quiet-track partial batches are flushed by the sweep meanwhile',
  );
  clearInterval(ticker);
  active.stop();
  await waitForEnd(h.events, active.streamSid);
  active.close();
});
