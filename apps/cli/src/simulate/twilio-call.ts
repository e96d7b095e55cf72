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
  /**
   * Called for each frame sent (for latency measurements): `chunk` is the stream's chunk number
   * (from 1 again on a reconnected stream), `mediaMs` the position in the call's audio.
   */
  readonly onFrame?: (track: 'inbound' | 'outbound', chunk: number, mediaMs: number) => void;
  /**
   * What Twilio does when the media socket dies mid-call (closed by the other end, not by us):
   * it opens a NEW stream to the stream URL (new streamSid, `connected` and `start` again, chunk
   * numbers and media timestamps from 0 again, same Call SID), retrying every `retryMs` (default
   * 250) for up to `withinMs` (default 60 s). Twilio buffers nothing: the new stream goes on from
   * where the call is in real time, and the audio of the gap is lost. Absent: frames after a
   * lost socket go nowhere and the call plays on to its end.
   */
  readonly reconnect?: { readonly withinMs?: number; readonly retryMs?: number };
}

/** One media stream (socket) of a simulated call. */
export interface SimulatedStream {
  readonly streamSid: string;
  /** The call's audio this stream carried: from `fromMediaMs` up to (not including) `toMediaMs`. */
  readonly fromMediaMs: number;
  readonly toMediaMs: number;
  readonly framesSent: { readonly inbound: number; readonly outbound: number };
  /** Wall-clock times (ms) of the socket's open and of its end. */
  readonly openedAt: number;
  readonly endedAt: number;
  /** `stop`: ended by us with Twilio's `stop`; `lost`: the other end closed it. */
  readonly ended: 'stop' | 'lost';
}

export interface SimulatedCallResult {
  readonly callSid: string;
  /** The first stream's SID (see `streams` when the call reconnected). */
  readonly streamSid: string;
  /** Frames sent on open sockets, all streams together. */
  readonly framesSent: { readonly inbound: number; readonly outbound: number };
  readonly mediaMs: number;
  readonly wallMs: number;
  readonly start: { readonly status: number; readonly body: unknown } | null;
  readonly stop: { readonly status: number; readonly body: unknown } | null;
  /** Every media stream in order: more than one when the socket was lost and `reconnect` is set. */
  readonly streams: readonly SimulatedStream[];
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

  const tracks = o.outbound ? ['inbound', 'outbound'] : ['inbound'];
  const retry = o.reconnect ? { withinMs: o.reconnect.withinMs ?? 60_000, retryMs: o.reconnect.retryMs ?? 250 } : null;
  const streams: SimulatedStream[] = [];
  /** The socket and `connected` of a new stream; `begin` sends its `start` once its first frame is known. */
  const openStream = async (sid: string, withRetry: boolean): Promise<LiveStream> => {
    const ws = await connect(streamingUrl, o.ca, withRetry ? retry : null);
    const live: LiveStream = {
      sid,
      ws,
      firstFrame: 0,
      endFrame: 0,
      sequence: 0,
      sent: { inbound: 0, outbound: 0 },
      openedAt: Date.now(),
      endedAt: 0,
      closing: false,
      lost: false,
      closed: Promise.resolve(),
    };
    live.closed = new Promise<void>((resolve) =>
      ws.once('close', () => {
        live.endedAt = Date.now();
        live.lost = !live.closing; // closed by the other end: Twilio would start a new stream
        resolve();
      }),
    );
    ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    return live;
  };
  const send = (live: LiveStream, message: Record<string, unknown>) =>
    live.ws.send(JSON.stringify({ ...message, sequenceNumber: String(++live.sequence) }));
  const begin = (live: LiveStream, firstFrame: number) => {
    live.firstFrame = firstFrame;
    live.endFrame = firstFrame;
    send(live, {
      event: 'start',
      start: {
        accountSid,
        streamSid: live.sid,
        callSid,
        tracks,
        customParameters: o.customParameters ?? {},
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: live.sid,
    });
  };
  const finished = (live: LiveStream): SimulatedStream => ({
    streamSid: live.sid,
    fromMediaMs: live.firstFrame * FRAME_MS,
    toMediaMs: live.endFrame * FRAME_MS,
    framesSent: live.sent,
    openedAt: live.openedAt,
    endedAt: live.endedAt,
    ended: live.lost ? 'lost' : 'stop',
  });

  let stream = await openStream(streamSid, false);
  begin(stream, 0);

  const framesIn = Math.ceil(o.inbound.length / FRAME_BYTES);
  const framesOut = o.outbound ? Math.ceil(o.outbound.length / FRAME_BYTES) : 0;
  const frames = Math.max(framesIn, framesOut);
  const sent = { inbound: 0, outbound: 0 };
  const pending: Promise<void>[] = [];
  // Due times as frame positions; `>=` so that a reconnect gap cannot skip them.
  let startDue = startAt !== null && startAt > 0 ? Math.floor(startAt / FRAME_MS) : null;
  let stopDue = o.stopAtMs !== undefined ? Math.floor(o.stopAtMs / FRAME_MS) : null;
  const t0 = Date.now();
  for (let i = 0; i < frames; i++) {
    if (stream.lost && retry) {
      streams.push(finished(stream));
      const next = await openStream(`MZ${hex(16)}`, true);
      // The call went on while the socket was down: resume at the frame of this moment.
      if (Number.isFinite(speed)) i = Math.max(i, Math.floor(((Date.now() - t0) * speed) / FRAME_MS));
      stream = next;
      begin(stream, i);
      if (i >= frames) break;
    }
    const mediaMs = i * FRAME_MS;
    if (startDue !== null && i >= startDue) {
      startDue = null;
      pending.push(callStart());
    }
    if (stopDue !== null && i >= stopDue) {
      stopDue = null;
      pending.push(callStop());
    }
    const chunk = i - stream.firstFrame + 1;
    for (const [track, audio] of [
      ['inbound', o.inbound],
      ['outbound', o.outbound],
    ] as const) {
      if (!audio || i * FRAME_BYTES >= audio.length) continue;
      if (stream.ws.readyState !== WebSocket.OPEN) continue; // a lost socket: this audio goes nowhere
      const frame = Buffer.alloc(FRAME_BYTES, 0xff); // the last frame is padded with mu-law silence
      Buffer.from(audio.buffer, audio.byteOffset + i * FRAME_BYTES, Math.min(FRAME_BYTES, audio.length - i * FRAME_BYTES)).copy(frame);
      send(stream, {
        event: 'media',
        media: { track, chunk: String(chunk), timestamp: String((chunk - 1) * FRAME_MS), payload: frame.toString('base64') },
        streamSid: stream.sid,
      });
      sent[track]++;
      stream.sent[track]++;
      stream.endFrame = i + 1;
      o.onFrame?.(track, chunk, mediaMs);
    }
    if (Number.isFinite(speed)) {
      const due = t0 + ((i + 1) * FRAME_MS) / speed;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    } else if (stream.ws.bufferedAmount > 1 << 20) {
      await new Promise((r) => setImmediate(r)); // let the socket drain
    }
  }
  await Promise.all(pending);
  if (start !== null && stop === null && o.stopAtMs === undefined) {
    if (o.stopDelayMs) await new Promise((r) => setTimeout(r, o.stopDelayMs));
    await callStop();
  }
  if (stream.ws.readyState === WebSocket.OPEN) {
    stream.closing = true;
    send(stream, { event: 'stop', stop: { accountSid, callSid }, streamSid: stream.sid });
    stream.ws.close(1000);
  }
  await stream.closed;
  streams.push(finished(stream));
  return { callSid, streamSid, framesSent: sent, mediaMs: frames * FRAME_MS, wallMs: Date.now() - began, start, stop, streams };
}

interface LiveStream {
  readonly sid: string;
  readonly ws: WebSocket;
  /** The call's frame this stream's chunk 1 carries. */
  firstFrame: number;
  /** One past the last frame sent on the open socket. */
  endFrame: number;
  sequence: number;
  readonly sent: { inbound: number; outbound: number };
  readonly openedAt: number;
  endedAt: number;
  /** We are closing it (after `stop`): its close is no loss. */
  closing: boolean;
  lost: boolean;
  closed: Promise<void>;
}

/** Opens the media socket, retrying a refused or failed attempt while `retry` allows. */
async function connect(url: string, ca: Buffer | undefined, retry: { withinMs: number; retryMs: number } | null): Promise<WebSocket> {
  const deadline = Date.now() + (retry?.withinMs ?? 0);
  for (;;) {
    try {
      return await openSocket(url, ca);
    } catch (error) {
      if (!retry || Date.now() >= deadline) throw error;
      await new Promise((r) => setTimeout(r, retry.retryMs));
    }
  }
}

function openSocket(url: string, ca: Buffer | undefined): Promise<WebSocket> {
  const ws = new WebSocket(url, { ca });
  // Errors after the open show as a close (a lost stream); never as an unhandled 'error'.
  ws.on('error', () => undefined);
  return new Promise<WebSocket>((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      reject(new Error(`media socket refused: HTTP ${res.statusCode}`));
    });
  });
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
