import t from 'tap';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { mulawToPcm16 } from '../../apps/shared/src/audio/mulaw.js';
import { readWav } from '../../apps/shared/src/audio/wav.js';
import { startGateway } from './support.js';

/**
 * SPEC §6 audioRecordingAllowed through the real pipeline (ingest, embedded log, asr with the
 * real model, api): a two-party call started with recording allowed can be downloaded as a
 * WAV whose left channel is exactly the customer's audio sent and whose right is the agent's.
 */
t.test('a recorded call downloads as a stereo WAV equal to the audio sent, customer left, agent right', async (t) => {
  const gw = await startGateway(t);
  const { customer, agent } = gw.corpus.call.tracks;
  const inbound = gw.audio(customer.mulaw);
  const outbound = gw.audio(agent.mulaw);
  const callSid = newCallSid();
  const result = await simulateCall({
    apiUrl: gw.apiUrl,
    ...gw.tenant,
    callSid,
    inbound,
    outbound,
    speed: 4,
    stopDelayMs: 1000, // every frame is on the log before the stop command
    startBody: { autotranscribeParams: { audioRecordingAllowed: true } },
  });
  t.equal((result.stop as { status: number } | null)?.status, 200, 'stop-streaming answered: the session closed');

  const headers = { 'asapp-api-id': gw.tenant.apiId, 'asapp-api-secret': gw.tenant.apiSecret };
  const list = await fetch(`${gw.apiUrl}/mg-autotranscribe/v1/recordings?externalId=${callSid}`, { headers });
  t.equal(list.status, 200, 'listed as soon as stop-streaming answered');
  const { items } = (await list.json()) as { items: { audioPath: string; durationMs: number; startMs: number; bytes: number }[] };
  t.equal(items.length, 1, 'one recording: one session');
  const item = items[0];
  if (!item) return;
  const res = await fetch(`${gw.apiUrl}${item.audioPath}`, { headers });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'audio/wav');
  const wav = Buffer.from(await res.arrayBuffer());
  t.equal(wav.length, item.bytes);

  // What was sent, on the media clock: 160-byte frames every 20 ms (the last one padded with silence).
  const frames = Math.max(result.framesSent.inbound, result.framesSent.outbound);
  const sent = (audio: Uint8Array) => {
    const mulaw = new Uint8Array(frames * 160).fill(0xff);
    mulaw.set(audio);
    return mulawToPcm16(mulaw);
  };
  t.equal(item.startMs, 0);
  t.equal(item.durationMs, frames * 20);
  const decoded = readWav(wav);
  t.equal(decoded.sampleRate, 8000);
  t.equal(decoded.channels.length, 2);
  t.same([wav.readUInt16LE(20), wav.readUInt16LE(34)], [1, 16], 'PCM, 16 bit');
  for (const [channel, name, audio] of [
    [0, 'left = customer', inbound],
    [1, 'right = agent', outbound],
  ] as const) {
    const got = decoded.channels[channel] as Float32Array;
    const want = sent(audio);
    t.equal(got.length, want.length, `${name}: ${want.length} samples`);
    const diff = want.findIndex((v, i) => Math.round((got[i] as number) * 32768) !== v);
    t.equal(diff, -1, `${name}: sample-exact${diff >= 0 ? ` (first difference at sample ${diff})` : ''}`);
  }
});
