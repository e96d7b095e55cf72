import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import t from 'tap';
import { type WebSocket, WebSocketServer } from 'ws';
import { FRAME_BYTES, FRAME_MS, type SimulatedCallOptions, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';

/**
 * The call simulator's Twilio-style reconnect (issue 9: ingest killed mid-call). A small
 * Twilio-facing server records every message of every socket; it kills the first socket
 * after a few frames (no close frame, as a dead process) and refuses upgrades for DOWN_MS.
 * The player must open a NEW stream (new streamSid, `connected` and `start` again, chunks and
 * timestamps from 0, same Call SID) and go on with the audio of the moment it got back: the
 * gap's audio is never sent. Frame k of the audio is filled with byte k, so every payload
 * tells which part of the call it carries.
 */
const SPEED = 4;
const DOWN_MS = 400;
const CUT_AFTER_FRAMES = 40; // both tracks: 20 frames of each, 400 ms of the call
const FRAMES = 150; // 3 s of audio

interface Message {
  readonly event: string;
  readonly sequenceNumber?: string;
  readonly streamSid?: string;
  readonly start?: { readonly streamSid: string; readonly callSid: string; readonly tracks: string[] };
  readonly media?: { readonly track: string; readonly chunk: string; readonly timestamp: string; readonly payload: string };
}

interface Gateway {
  readonly url: string;
  /** Messages of each socket, in the order the sockets opened. */
  readonly sockets: Message[][];
  readonly calls: { start: number; stop: number };
  refusedUpgrades: number;
  close(): Promise<void>;
}

async function startGateway(options: { comeBack: boolean }): Promise<Gateway> {
  const wss = new WebSocketServer({ noServer: true });
  let down = false;
  const server: Server = createServer((req, res) => {
    const reply = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.url?.endsWith('/twilio-media-stream-url'))
      return reply({ streamingUrl: `${gateway.url.replace('http', 'ws')}/twilio-media/token` });
    if (req.url?.endsWith('/start-streaming')) gateway.calls.start++;
    if (req.url?.endsWith('/stop-streaming')) gateway.calls.stop++;
    req.resume();
    reply({ isOk: true });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (down) {
      gateway.refusedUpgrades++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const messages: Message[] = [];
      const first = gateway.sockets.length === 0;
      gateway.sockets.push(messages);
      let media = 0;
      ws.on('message', (data) => {
        if (down && first) return; // what the dead node never got
        const message = JSON.parse(String(data)) as Message;
        messages.push(message);
        if (message.event === 'media' && ++media === CUT_AFTER_FRAMES && first) {
          down = true;
          ws.terminate(); // the node dies: no close frame
          if (options.comeBack) setTimeout(() => (down = false), DOWN_MS);
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const gateway: Gateway = {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    sockets: [],
    calls: { start: 0, stop: 0 },
    refusedUpgrades: 0,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return gateway;
}

/** Frame k of the inbound audio is all k, of the outbound all 255 - k. */
const audio = (outbound: boolean): Uint8Array => {
  const bytes = new Uint8Array(FRAMES * FRAME_BYTES);
  for (let k = 0; k < FRAMES; k++) bytes.fill(outbound ? 255 - k : k, k * FRAME_BYTES, (k + 1) * FRAME_BYTES);
  return bytes;
};
const frameOf = (m: Message): number => {
  const byte = Buffer.from(m.media?.payload ?? '', 'base64')[0] as number;
  return m.media?.track === 'outbound' ? 255 - byte : byte;
};
const mediaOf = (messages: Message[], track: string) => messages.filter((m) => m.event === 'media' && m.media?.track === track);
/** A call against `gateway`: the inbound audio at SPEED, unless `options` say otherwise. */
const play = (gateway: Gateway, options: Partial<SimulatedCallOptions> = {}) =>
  simulateCall({ apiUrl: gateway.url, apiId: 'id', apiSecret: 'secret', inbound: audio(false), speed: SPEED, ...options });

t.test('a lost media socket: a new stream goes on from the current moment of the call', async (t) => {
  const gateway = await startGateway({ comeBack: true });
  t.teardown(() => gateway.close());
  const result = await play(gateway, { outbound: audio(true), reconnect: { withinMs: 10_000, retryMs: 50 } });

  t.equal(gateway.sockets.length, 2, 'two sockets: the lost one and its replacement');
  t.ok(gateway.refusedUpgrades > 0, 'reconnect attempts were refused while the node was down, and retried');
  t.same(gateway.calls, { start: 1, stop: 1 }, 'start- and stop-streaming once each: the backend does not notice');
  t.equal(result.streams.length, 2);
  const [lost, resumed] = result.streams as [(typeof result.streams)[0], (typeof result.streams)[0]];
  t.equal(lost.ended, 'lost');
  t.equal(resumed.ended, 'stop');
  t.equal(result.streamSid, lost.streamSid, 'streamSid is the first stream');

  const [first, second] = gateway.sockets as [Message[], Message[]];
  for (const [i, messages] of [first, second].entries()) {
    const stream = result.streams[i] as (typeof result.streams)[0];
    t.same(
      messages.slice(0, 2).map((m) => m.event),
      ['connected', 'start'],
      `socket ${i + 1} begins with connected and start`,
    );
    t.equal(messages[1]?.start?.callSid, result.callSid, `socket ${i + 1}: same Call SID`);
    t.equal(messages[1]?.start?.streamSid, stream.streamSid, `socket ${i + 1}: its own streamSid`);
    t.same(messages[1]?.start?.tracks, ['inbound', 'outbound']);
    t.same(
      messages.slice(1).map((m) => Number(m.sequenceNumber)),
      messages.slice(1).map((_, k) => k + 1),
      `socket ${i + 1}: sequence numbers from 1`,
    );
    t.ok(
      messages.slice(2).every((m) => m.streamSid === stream.streamSid),
      `socket ${i + 1}: every message names its stream`,
    );
    for (const track of ['inbound', 'outbound']) {
      const media = mediaOf(messages, track);
      const firstFrame = stream.fromMediaMs / FRAME_MS;
      t.same(
        media.map((m) => [Number(m.media?.chunk), Number(m.media?.timestamp), frameOf(m)]),
        media.map((_, k) => [k + 1, k * FRAME_MS, firstFrame + k]),
        `socket ${i + 1} ${track}: chunks and timestamps from 0, the call's audio from ${stream.fromMediaMs} ms on`,
      );
    }
  }
  t.notOk(
    first.some((m) => m.event === 'stop'),
    'no stop on the lost socket',
  );
  t.equal(second.at(-1)?.event, 'stop', 'the last stream ends with stop');

  // The gap: the node was down DOWN_MS after it got its last frame, and the call went on at
  // SPEED meanwhile, so the new stream starts at least that much call audio later.
  const lastReceived = Math.max(...mediaOf(first, 'inbound').map(frameOf));
  const resumedAt = resumed.fromMediaMs / FRAME_MS;
  t.ok(
    resumedAt >= lastReceived + Math.floor((DOWN_MS * SPEED) / FRAME_MS) - 1,
    `resumed at frame ${resumedAt}, after the ${DOWN_MS} ms outage (last frame received ${lastReceived})`,
  );
  t.ok(resumed.fromMediaMs >= lost.toMediaMs, 'no audio sent twice');
  t.equal(resumed.toMediaMs, FRAMES * FRAME_MS, 'the new stream carries the call to its end');
  t.equal(result.framesSent.inbound, lost.framesSent.inbound + resumed.framesSent.inbound, 'frames sent are the two streams together');
  t.equal(resumed.framesSent.inbound, mediaOf(second, 'inbound').length, 'every frame of the new stream arrived');
});

t.test('without reconnect, a lost socket ends the stream and the call plays on', async (t) => {
  const gateway = await startGateway({ comeBack: true });
  t.teardown(() => gateway.close());
  const result = await play(gateway, { speed: SPEED * 2 });
  t.equal(gateway.sockets.length, 1, 'no second socket');
  t.equal(result.streams.length, 1);
  t.equal(result.streams[0]?.ended, 'lost');
  t.ok(result.framesSent.inbound < FRAMES, 'frames after the loss are not counted as sent');
  t.equal(result.framesSent.inbound, (result.streams[0]?.toMediaMs ?? 0) / FRAME_MS);
  t.same(gateway.calls, { start: 1, stop: 1 }, 'stop-streaming still at the end');
});

t.test('a node that never comes back: the reconnect gives up after withinMs', async (t) => {
  const gateway = await startGateway({ comeBack: false });
  t.teardown(() => gateway.close());
  await t.rejects(play(gateway, { reconnect: { withinMs: 300, retryMs: 50 } }), /media socket refused: HTTP 503/);
  t.ok(gateway.refusedUpgrades >= 2, 'it retried before giving up');
});
