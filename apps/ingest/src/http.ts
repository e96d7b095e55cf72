import type { HttpResponse } from 'uWebSockets.js';
import { randomUUID } from 'node:crypto';

/** HTTP helpers for the few plain routes ingest serves next to the WebSocket (SPEC §3.6 shapes). */

const STATUS_LINES: Record<number, string> = {
  200: '200 OK',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  426: '426 Upgrade Required',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** Writes a JSON response; call inside `res.cork` when not in the route handler itself. */
export function sendJson(res: HttpResponse, status: number, body: unknown): void {
  res
    .writeStatus(STATUS_LINES[status] ?? String(status))
    .writeHeader('content-type', 'application/json')
    .writeHeader('x-request-id', randomUUID())
    .end(JSON.stringify(body));
}

/** The error shape of SPEC §3.6. */
export function sendError(res: HttpResponse, status: number, message: string): void {
  const requestId = randomUUID();
  res
    .writeStatus(STATUS_LINES[status] ?? String(status))
    .writeHeader('content-type', 'application/json')
    .writeHeader('x-request-id', requestId)
    .end(JSON.stringify({ error: { requestId, code: `${status}-01`, message } }));
}

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Earshot media ingest', version: '1' },
  paths: {
    '/twilio-media/{token}': {
      get: {
        summary: 'Twilio Media Streams WebSocket (upgrade only); the token comes from GET /mg-autotranscribe/v1/twilio-media-stream-url',
        parameters: [
          { name: 'token', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'X-Twilio-Signature', in: 'header', required: false, schema: { type: 'string' } },
        ],
        responses: {
          '101': { description: 'Switching protocols: a media stream session' },
          '401': { description: 'Missing, forged or expired token; missing or wrong X-Twilio-Signature' },
          '403': { description: 'App unknown or disabled; signature required but not configured' },
          '426': { description: 'Not a WebSocket upgrade' },
          '503': { description: 'Ingest is shutting down' },
        },
      },
    },
    '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'Alive' } } } },
    '/readyz': {
      get: { summary: 'Readiness', responses: { '200': { description: 'Accepting streams' }, '503': { description: 'Shutting down' } } },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Prometheus text format' } } } },
  },
} as const;
