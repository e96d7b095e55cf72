import { randomUUID } from 'node:crypto';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';

/** An UtteranceRecognized as the asr consumer writes it; tests name what matters to them. */
export function utterance(fields: Partial<UtteranceRecognized> & Pick<UtteranceRecognized, 'callSid' | 'tenantId'>): UtteranceRecognized {
  const startMs = fields.startMs ?? 1000;
  const occurredAtMs = fields.occurredAtMs ?? Date.now();
  return {
    eventId: randomUUID(),
    utteranceId: `${fields.callSid}:MZ00:inbound:${startMs * 8}`,
    streamId: '00000000-0000-4000-8000-000000000001',
    role: 'customer',
    senderExternalId: 'customer-1',
    track: 'inbound',
    startMs,
    endMs: startMs + 1500,
    text: 'hello there',
    unredactedText: null,
    language: 'en-US',
    tokens: null,
    engine: 'moonshine',
    model: 'moonshine-tiny',
    speechEndedAtMs: occurredAtMs - 700,
    occurredAtMs,
    ...fields,
  };
}

export async function publishUtterances(runtime: Runtime, utterances: readonly UtteranceRecognized[]): Promise<void> {
  await runtime.eventLog.produce(
    TOPICS.utterances,
    utterances.map((u) => ({ key: u.callSid, value: u })),
  );
}

export interface SseEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
}

/** A server-sent events client that records every event (node:http, so a test can also stop reading). */
export interface SseClient {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly events: SseEvent[];
  /** Raw text received (comments included). */
  text(): string;
  readonly closed: Promise<void>;
  readonly response: IncomingMessage;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = [];
      let raw = '';
      let pending = '';
      const closed = new Promise<void>((done) => {
        res.once('close', () => done());
        res.once('error', () => done());
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        pending += chunk;
        let end = pending.indexOf('\n\n');
        while (end >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
          }
          if (fields.data !== undefined) events.push({ event: fields.event ?? 'message', id: fields.id, data: fields.data });
          end = pending.indexOf('\n\n');
        }
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        text: () => raw,
        closed,
        response: res,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
