import WebSocket from 'ws';
import { CONNECTED_MESSAGE, mediaMessage, payloadRing, startMessage, stopMessage } from './twilio-frames.js';

/**
 * Child process of ingest-sockets.bench.ts: `calls` two-track Twilio streams sent as fast as
 * the sockets take them (no pacing), real message shapes. Reports 'sent' when every stream
 * has sent its `stop`.
 *
 *   node --import tsx scripts/bench/support/burst-client.ts <url> <calls> <framesPerTrack>
 */
const [url, callsArg, framesArg] = process.argv.slice(2) as [string, string, string];
const calls = Number(callsArg);
const frames = Number(framesArg);
const payloads = payloadRing();

await Promise.all(
  Array.from({ length: calls }, async (_, i) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const streamSid = `MZburst${i}`;
    const callSid = `CAburst${i}`;
    let sequence = 1;
    ws.send(CONNECTED_MESSAGE);
    ws.send(startMessage({ streamSid, callSid, accountSid: 'AC1', sequenceNumber: sequence++ }));
    for (let chunk = 1; chunk <= frames; chunk++) {
      const p = (chunk - 1) % payloads.inbound.length;
      ws.send(mediaMessage(streamSid, sequence++, 'inbound', chunk, payloads.inbound[p] as string));
      ws.send(mediaMessage(streamSid, sequence++, 'outbound', chunk, payloads.outbound[p] as string));
      if (chunk % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    ws.send(stopMessage(streamSid, callSid, 'AC1', sequence++));
  }),
);
process.send?.({ type: 'sent' });
process.on('disconnect', () => process.exit(0));
