import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { httpJson } from './http-json.js';

/**
 * Plays one call to Earshot the way Twilio and a contact center's backend would: fetch the
 * stream URL, call start-streaming, open the media WebSocket with Twilio's real message
 * shapes (string sequenceNumber/chunk/timestamp, 160-byte mu-law frames every 20 ms, both
 * tracks interleaved), stop-streaming, then Twilio's `stop`. Used by tests, benchmarks, demos.
 */
export const FRAME_BYTES = 160;
export const FRAME_MS = 20;

export interface SimulatedCallOptions {
  readonly apiUrl: string;
  readonly apiId: string;
  readonly apiSecret: string;
  /** Raw 8 kHz mu-law of the caller side (track inbound). */
  readonly inbound: Uint8Array;
  /** Raw 8 kHz mu-law of the agent side (track outbound); absent = an inbound-only stream. */
  readonly outbound?: Uint8Array;
  /** 1 = real time; 10 = ten times faster; Infinity = as fast as the socket takes it. */
  readonly speed?: number;
  /** Call start-streaming at this media time (ms); null = never. Default 0 (before any audio). */
  readonly startAtMs?: number | null;
  /** Call stop-streaming at this media time (ms); default: after the last frame. */
  readonly stopAtMs?: number;
  /** With the default stop: wait this long after the last frame first (a backend that stops after hang-up). */
  readonly stopDelayMs?: number;
  readonly callSid?: string;
  readonly customParameters?: Readonly<Record<string, string>>;
  readonly startBody?: Readonly<Record<string, unknown>>;
  /** Private CA for https/wss with a self-signed certificate. */
  readonly ca?: Buffer;
  /**
   * Retry start/stop-streaming refused at the connection level (an API node restarting behind
   * its address) for up to this long, as a backend behind a load balancer would. Default 0.
   */
  readonly apiRetryMs?: number;
  /** Called for each frame sent, with the wall-clock time (for latency measurements). */
  readonly onFrame?: (track: 'inbound' | 'outbound', chunk: number, mediaMs: number) => void;
}

export interface SimulatedCallResult {
  readonly callSid: string;
  readonly streamSid: string;
  readonly framesSent: { readonly inbound: number; readonly outbound: number };
  readonly mediaMs: number;
  readonly wallMs: number;
  readonly start: { readonly status: number; readonly body: unknown } | null;
  readonly stop: { readonly status: number; readonly body: unknown } | null;
}

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
export const newCallSid = (): string => `CA${hex(16)}`;

export async function simulateCall(o: SimulatedCallOptions): Promise<SimulatedCallResult> {
  const began = Date.now();
  const headers = { 'asapp-api-id': o.apiId, 'asapp-api-secret': o.apiSecret };
  const callSid = o.callSid ?? newCallSid();
  const streamSid = `MZ${hex(16)}`;
  const accountSid = `AC${hex(16)}`;
  const speed = o.speed ?? 1;

  const url = await httpJson('GET', `${o.apiUrl}/mg-autotranscribe/v1/twilio-media-stream-url`, { headers, ca: o.ca });
  const streamingUrl = (url.body as { streamingUrl?: string } | null)?.streamingUrl;
  if (url.status !== 200 || !streamingUrl) throw new Error(`stream url: HTTP ${url.status} ${JSON.stringify(url.body)}`);

  const startBody = {
    namespace: 'twilio',
    guid: callSid,
    customerId: `customer-${callSid.slice(2, 10)}`,
    agentId: 'agent-007',
    ...o.startBody,
  };
  let start: SimulatedCallResult['start'] = null;
  let stop: SimulatedCallResult['stop'] = null;
  const callStart = async () => {
    start = await retryRefused(o.apiRetryMs ?? 0, () =>
      httpJson('POST', `${o.apiUrl}/mg-autotranscribe/v1/start-streaming`, { headers, body: startBody, ca: o.ca }),
    );
  };
  const callStop = async () => {
    stop = await retryRefused(o.apiRetryMs ?? 0, () =>
      httpJson('POST', `${o.apiUrl}/mg-autotranscribe/v1/stop-streaming`, {
        headers,
        body: { namespace: 'twilio', guid: callSid },
        ca: o.ca,
      }),
    );
  };
  const startAt = o.startAtMs === undefined ? 0 : o.startAtMs;
  if (startAt === 0) await callStart();

  const ws = new WebSocket(streamingUrl, { ca: o.ca });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`media socket refused: HTTP ${res.statusCode}`)));
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  let sequence = 0;
  const send = (message: Record<string, unknown>) => ws.send(JSON.stringify({ ...message, sequenceNumber: String(++sequence) }));

  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  const tracks = o.outbound ? ['inbound', 'outbound'] : ['inbound'];
  send({
    event: 'start',
    start: {
      accountSid,
      streamSid,
      callSid,
      tracks,
      customParameters: o.customParameters ?? {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
    streamSid,
  });

  const framesIn = Math.ceil(o.inbound.length / FRAME_BYTES);
  const framesOut = o.outbound ? Math.ceil(o.outbound.length / FRAME_BYTES) : 0;
  const frames = Math.max(framesIn, framesOut);
  const sent = { inbound: 0, outbound: 0 };
  const pending: Promise<void>[] = [];
  const t0 = Date.now();
  for (let i = 0; i < frames; i++) {
    const mediaMs = i * FRAME_MS;
    if (startAt !== null && startAt > 0 && mediaMs === Math.floor(startAt / FRAME_MS) * FRAME_MS) pending.push(callStart());
    if (o.stopAtMs !== undefined && mediaMs === Math.floor(o.stopAtMs / FRAME_MS) * FRAME_MS) pending.push(callStop());
    for (const [track, audio] of [
      ['inbound', o.inbound],
      ['outbound', o.outbound],
    ] as const) {
      if (!audio || i * FRAME_BYTES >= audio.length) continue;
      const frame = Buffer.alloc(FRAME_BYTES, 0xff); // the last frame is padded with mu-law silence
      Buffer.from(audio.buffer, audio.byteOffset + i * FRAME_BYTES, Math.min(FRAME_BYTES, audio.length - i * FRAME_BYTES)).copy(frame);
      send({
        event: 'media',
        media: { track, chunk: String(i + 1), timestamp: String(mediaMs), payload: frame.toString('base64') },
        streamSid,
      });
      sent[track]++;
      o.onFrame?.(track, i + 1, mediaMs);
    }
    if (Number.isFinite(speed)) {
      const due = t0 + ((i + 1) * FRAME_MS) / speed;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else if (ws.bufferedAmount > 1 << 20) {
      await new Promise((r) => setImmediate(r)); // let the socket drain
    }
  }
  await Promise.all(pending);
  if (start !== null && stop === null && o.stopAtMs === undefined) {
    if (o.stopDelayMs) await new Promise((r) => setTimeout(r, o.stopDelayMs));
    await callStop();
  }
  send({ event: 'stop', stop: { accountSid, callSid }, streamSid });
  ws.close(1000);
  await closed;
  return { callSid, streamSid, framesSent: sent, mediaMs: frames * FRAME_MS, wallMs: Date.now() - began, start, stop };
}

/** Runs `request`, retrying while the connection is refused or reset, until `forMs` have passed. */
async function retryRefused<T>(forMs: number, request: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + forMs;
  for (;;) {
    try {
      return await request();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ECONNRESET') || Date.now() >= deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
