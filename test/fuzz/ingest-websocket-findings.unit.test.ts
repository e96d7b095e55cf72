import t from 'tap';
import { Session } from '../../apps/ingest/src/session.js';
import { audioOf, eventsOf, expectedAudio, fileHarness, range, TwilioStream, waitForEnd } from '../ingest/support.js';

/**
 * Regressions for what the WebSocket fuzzer (ingest-websocket.unit.test.ts) found: a JSON
 * object with a `toString` key, as an event name or a track, made `String()` throw inside the
 * uWS message handler, an uncaught exception that ended the process and every call in it.
 */
const h = await fileHarness();

const dropped = (reason: string) => h.metric('earshot_ingest_frames_dropped_total', { reason });

t.test('{"toString":1} as an event or a track is dropped and counted; the stream goes on', async (t) => {
  const before = { event: await dropped('unknown_event'), track: await dropped('unknown_track') };
  const call = await TwilioStream.open(h.mediaUrl());
  call.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) call.frame('inbound', chunk);
  call.send('{"event":{"toString":1}}');
  call.send({ event: 'media', media: { track: { toString: 1, valueOf: 2 }, chunk: '6', timestamp: '105', payload: '' } });
  for (const chunk of range(6, 10)) call.frame('inbound', chunk);
  call.stop();
  t.match(await waitForEnd(h.events, call.streamSid), { reason: 'stopped', framesReceived: 11, framesDropped: 1 });
  t.equal((await dropped('unknown_event')) - before.event, 1);
  t.equal((await dropped('unknown_track')) - before.track, 1);
  const audio = Buffer.concat(audioOf(eventsOf(h.events, call.callSid), 'inbound').map((b) => b.payload));
  t.ok(audio.equals(expectedAudio('inbound', range(1, 10))), 'audio intact');
  t.ok(
    h.logs.some((l) => l.reason === 'unknown_event' && l.detail === '{"toString":1}'),
    'the value is logged as JSON text',
  );
  call.close();
});

t.test('a message that makes ingest throw ends only its own stream (1011), counted and logged', async (t) => {
  // Stand-in for the next bug of that kind: a marker message makes the session's handler throw.
  const original = Session.prototype.onMessage;
  Session.prototype.onMessage = function (this: Session, data: ArrayBuffer, isBinary: boolean) {
    if (!isBinary && Buffer.from(data).toString().includes('boom-for-test')) throw new TypeError('boom');
    original.call(this, data, isBinary);
  };
  t.teardown(() => {
    Session.prototype.onMessage = original;
  });
  const before = await dropped('internal_error');
  const healthy = await TwilioStream.open(h.mediaUrl());
  healthy.start({ tracks: ['inbound'] });
  const victim = await TwilioStream.open(h.mediaUrl());
  victim.start({ tracks: ['inbound'] });
  for (const chunk of range(1, 5)) {
    healthy.frame('inbound', chunk);
    victim.frame('inbound', chunk);
  }
  victim.send({ event: 'boom-for-test' });
  const closed = await victim.closed;
  t.equal(closed.code, 1011, 'closed as an internal error');
  t.match(await waitForEnd(h.events, victim.streamSid), { reason: 'errored', detail: /internal error/, framesReceived: 5 });
  const victimAudio = Buffer.concat(audioOf(eventsOf(h.events, victim.callSid), 'inbound').map((b) => b.payload));
  t.ok(victimAudio.equals(expectedAudio('inbound', range(1, 5))), "the failed stream's audio before the error was flushed");
  t.equal((await dropped('internal_error')) - before, 1);
  t.ok(h.logs.some((l) => l.msg === 'ingest.message_failed' && l.callSid === victim.callSid));

  for (const chunk of range(6, 10)) healthy.frame('inbound', chunk);
  healthy.stop();
  t.match(
    await waitForEnd(h.events, healthy.streamSid),
    { reason: 'stopped', framesReceived: 10, framesDropped: 0 },
    'the other stream is untouched',
  );
  healthy.close();
});
