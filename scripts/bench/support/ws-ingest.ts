import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { type WebSocket, WebSocketServer } from 'ws';
import { authorizeUpgrade } from '../../../apps/ingest/src/upgrade-auth.js';
import type { CallEvent, CallEventPayload, Track } from '../../../apps/shared/src/events.js';
import type { ProduceRecord } from '../../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../../apps/shared/src/runtime.js';
import type { TopicSpec } from '../../../apps/shared/src/topics.js';

/**
 * The baseline of ingest.bench.ts: the smallest `ws`-based ingest that does the same work per
 * frame as apps/ingest, so that CPU per frame of the two is a fair ratio for uWebSockets.js.
 *
 * Same as apps/ingest: one port, `/twilio-media/<token>` upgrades checked by the same
 * `authorizeUpgrade` (token, app, signature policy), text frames decoded as UTF-8 and
 * `JSON.parse`d, `start` → StreamStarted, `media` → base64 decoded into a per-track buffer of
 * EARSHOT_INGEST_CHUNK_MS / 20 frames → AudioChunkReceived, `stop`/close → partial batches
 * flushed + StreamEnded, all records of one event-loop turn coalesced into one `produce` (≤ 500
 * records) on the same event log and Avro codec, key = Call SID.
 *
 * Not done (apps/ingest does): validation of chunk/timestamp/track/payload size, duplicate
 * and out-of-order detection, gap detection (batches close only when full), per-call ordering
 * with one produce in flight per call, the backpressure bound, retries (a failed produce is
 * counted and its records lost), idle timeouts and stale-batch sweeps, replaced streams, DTMF,
 * metrics and logs. `ws` runs with permessage-deflate off and its native helpers (bufferutil,
 * utf-8-validate), as it would be deployed.
 */
export interface WsIngest {
  readonly url: string;
  readonly framesAccepted: () => number;
  readonly produceFailures: () => number;
  stop(): Promise<void>;
}

const FRAME_BYTES = 160;
const FRAME_MS = 20;
const MAX_RECORDS_PER_PRODUCE = 500;
const TRACKS: readonly Track[] = ['inbound', 'outbound'];

class Batch {
  buffer: Buffer;
  frames = 0;
  firstChunk = 0;
  lastChunk = 0;
  timestampMs = 0;
  constructor(readonly size: number) {
    this.buffer = Buffer.allocUnsafe(size * FRAME_BYTES);
  }
}

export async function startWsIngest(runtime: Runtime, topic: TopicSpec<CallEvent>): Promise<WsIngest> {
  const config = runtime.config;
  const framesPerBatch = config.EARSHOT_INGEST_CHUNK_MS / FRAME_MS;
  const ingestNode = config.EARSHOT_NODE_ID ?? hostname();
  let queue: ProduceRecord<CallEvent>[] = [];
  let scheduled = false;
  let accepted = 0;
  let failures = 0;
  const inFlight = new Set<Promise<void>>();

  const flush = (): void => {
    scheduled = false;
    while (queue.length > 0) {
      const records = queue.length <= MAX_RECORDS_PER_PRODUCE ? queue : queue.slice(0, MAX_RECORDS_PER_PRODUCE);
      queue = queue.length <= MAX_RECORDS_PER_PRODUCE ? [] : queue.slice(MAX_RECORDS_PER_PRODUCE);
      const sent = runtime.eventLog.produce(topic, records).catch(() => {
        failures++;
      });
      inFlight.add(sent);
      void sent.then(() => inFlight.delete(sent));
    }
  };
  const publish = (callSid: string, tenantId: string, payload: CallEventPayload): void => {
    const occurredAtMs = Date.now();
    const value = { eventId: randomUUID(), callSid, tenantId, occurredAtMs, ...payload } as CallEvent;
    queue.push({ key: callSid, value, timestampMs: occurredAtMs });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  const wss = new WebSocketServer({
    host: config.EARSHOT_INGEST_HOST,
    port: config.EARSHOT_INGEST_PORT,
    perMessageDeflate: false,
    maxPayload: 64 * 1024,
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, status?: number) => void) => {
      const [path = '', query = ''] = (info.req.url ?? '').split('?', 2);
      void authorizeUpgrade(runtime, config, false, { path, query, host: info.req.headers.host ?? '', signature: '' }).then(
        (decision) => {
          if (decision.ok) (info.req as IncomingMessage & { apiId?: string }).apiId = decision.apiId;
          done(decision.ok, decision.ok ? undefined : decision.status);
        },
        () => done(false, 500),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const tenantId = (req as IncomingMessage & { apiId?: string }).apiId as string;
    let callSid = '';
    let streamSid = '';
    let framesReceived = 0;
    let batches: Batch[] | null = null;
    let ended = false;

    const closeBatch = (track: number, batch: Batch): void => {
      if (batch.frames === 0) return;
      const payload = batch.frames === framesPerBatch ? batch.buffer : batch.buffer.subarray(0, batch.frames * FRAME_BYTES);
      publish(callSid, tenantId, {
        type: 'AudioChunkReceived',
        data: {
          streamSid,
          track: TRACKS[track] as Track,
          firstChunk: batch.firstChunk,
          lastChunk: batch.lastChunk,
          timestampMs: batch.timestampMs,
          durationMs: batch.frames * FRAME_MS,
          payload,
        },
      });
      batch.buffer = Buffer.allocUnsafe(framesPerBatch * FRAME_BYTES);
      batch.frames = 0;
    };
    const end = (reason: 'stopped' | 'closed_without_stop'): void => {
      if (ended || !batches) return;
      ended = true;
      for (const [track, batch] of batches.entries()) closeBatch(track, batch);
      publish(callSid, tenantId, {
        type: 'StreamEnded',
        data: { streamSid, reason, detail: null, framesReceived, framesDropped: 0 },
      });
    };

    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary || ended) return;
      let message: { event?: string; media?: Record<string, string>; start?: Record<string, unknown> };
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      if (message.event === 'media' && batches && message.media) {
        const media = message.media;
        framesReceived++;
        const track = media.track === 'inbound' ? 0 : 1;
        const batch = batches[track] as Batch;
        const chunk = Number(media.chunk);
        if (batch.buffer.write(media.payload ?? '', batch.frames * FRAME_BYTES, FRAME_BYTES, 'base64') !== FRAME_BYTES) return;
        if (batch.frames === 0) {
          batch.firstChunk = chunk;
          batch.timestampMs = Number(media.timestamp);
        }
        batch.lastChunk = chunk;
        batch.frames++;
        accepted++;
        if (batch.frames === framesPerBatch) closeBatch(track, batch);
      } else if (message.event === 'start' && !batches && message.start) {
        const start = message.start as {
          callSid: string;
          streamSid: string;
          accountSid: string;
          tracks: Track[];
          customParameters?: Record<string, string>;
        };
        callSid = start.callSid;
        streamSid = start.streamSid;
        batches = [new Batch(framesPerBatch), new Batch(framesPerBatch)];
        publish(callSid, tenantId, {
          type: 'StreamStarted',
          data: {
            streamSid,
            accountSid: start.accountSid,
            tracks: start.tracks,
            customParameters: start.customParameters ?? {},
            encoding: 'audio/x-mulaw',
            sampleRate: 8000,
            channels: 1,
            ingestNode,
          },
        });
      } else if (message.event === 'stop') {
        end('stopped');
      }
    });
    ws.on('close', () => end('closed_without_stop'));
  });

  const address = wss.address() as { port: number };
  return {
    url: `ws://${config.EARSHOT_INGEST_HOST}:${address.port}`,
    framesAccepted: () => accepted,
    produceFailures: () => failures,
    stop: async () => {
      for (const client of wss.clients) client.close(1001, 'ingest shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      flush();
      await Promise.all(inFlight);
    },
  };
}
