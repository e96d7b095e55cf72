import { z } from 'zod';
import { ERROR_STATUSES, type ErrorStatus } from '../errors.js';
import type { RouteSpec } from '../route.js';
import { ErrorResponse, RoleStream, StreamStatus } from '../schemas.js';

/**
 * The OpenAPI 3.1 document of the API, generated from the route specs and their zod
 * schemas: request bodies as zod's input type (defaults optional), responses as its output.
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what `z.toJSONSchema` writes.
 */
export type OpenApiDocument = Record<string, unknown> & { openapi: string; paths: Record<string, Record<string, unknown>> };

const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
  400: 'Invalid request: malformed JSON, wrong Content-Type, or a field of the wrong shape (the message names it)',
  401: 'Missing or invalid asapp-api-id / asapp-api-secret, or the app is disabled',
  403: 'Forbidden',
  404: 'Unknown route, or a call or recording unknown to this app (another app’s are not found either)',
  409: 'The call is not in a state that allows this (already started / not started)',
  413: 'Request body over 64 KiB',
  422: 'Well-formed but unsupported: a language no model serves, or a forbidden combination of options',
  429: 'Rate limit of the app, or too many failed authentications from the client address; see Retry-After',
  500: 'Internal error; nothing internal is disclosed, quote the request id',
  503: 'Not ready, or the event log is unavailable; see Retry-After',
};

const ref = (kind: string, id: string) => ({ $ref: `#/components/${kind}/${id}` });

export function buildOpenApiDocument(routes: readonly RouteSpec[]): OpenApiDocument {
  const requests = z.registry<{ id: string }>();
  const responses = z.registry<{ id: string }>();
  responses.add(ErrorResponse, { id: 'Error' });
  responses.add(StreamStatus, { id: 'StreamStatus' });
  responses.add(RoleStream, { id: 'RoleStream' });
  for (const route of routes) {
    if (route.requestBody) requests.add(route.requestBody.schema, { id: route.requestBody.id });
    if ('id' in route.success.body) responses.add(route.success.body.schema, { id: route.success.body.id });
  }
  const uri = (id: string) => `#/components/schemas/${id}`;
  const schemas: Record<string, unknown> = {};
  for (const [io, registry] of [
    ['input', requests],
    ['output', responses],
  ] as const) {
    for (const [id, schema] of Object.entries(z.toJSONSchema(registry, { io, uri, target: 'draft-2020-12' }).schemas)) {
      if (id in schemas) throw new Error(`OpenAPI schema id ${id} is used twice`);
      const { $schema: _dialect, $id: _id, ...rest } = schema as Record<string, unknown>;
      schemas[id] = rest;
    }
  }

  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const body = route.success.body;
    const success = {
      description: route.success.description,
      headers: { 'x-request-id': ref('headers', 'RequestId') },
      content:
        'id' in body ? { 'application/json': { schema: ref('schemas', body.id) } } : { [body.contentType]: { schema: { type: 'string' } } },
    };
    const path = openApiPath(route.path);
    paths[path] = {
      ...paths[path],
      [route.method]: {
        operationId: route.operationId,
        summary: route.summary,
        ...(route.description ? { description: route.description } : {}),
        tags: [route.tag],
        security: route.authenticated ? [{ apiId: [], apiSecret: [] }] : route.cookieSession ? [{ liveSession: [] }] : [],
        parameters: [ref('parameters', 'RequestId'), ...routeParameters(route)],
        ...(route.requestBody
          ? { requestBody: { required: true, content: { 'application/json': { schema: ref('schemas', route.requestBody.id) } } } }
          : {}),
        responses: {
          '200': success,
          ...Object.fromEntries(route.errors.map((status) => [String(status), ref('responses', `Error${status}`)])),
        },
      },
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Earshot API',
      version: '1.0.0',
      description:
        'Call control for Earshot, wire-compatible with ASAPP AutoTranscribe’s Twilio Media Gateway. Every response carries x-request-id; every error is {"error": {"requestId", "code", "message"}} with code "<HTTP status>-01".',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'call control', description: 'Stream URLs and start/stop of transcription (SPEC §3.1–3.3)' },
      { name: 'conversation', description: 'A call’s utterances after the fact, from the transcript store (SPEC §3.4)' },
      { name: 'recordings', description: 'Session audio kept when start-streaming had audioRecordingAllowed (SPEC §6)' },
      { name: 'operations', description: 'Health, readiness, metrics and this document' },
      {
        name: 'file exporter',
        description:
          'The daily utterances feed: list feeds, versions, formats, dates, intervals and files; signed download links (SPEC §3.5)',
      },
      {
        name: 'live transcripts',
        description: 'The live transcript page: log in with the app credentials, watch a call’s utterances as they arrive',
      },
    ],
    paths,
    components: {
      schemas,
      responses: Object.fromEntries(
        ERROR_STATUSES.map((status) => [
          `Error${status}`,
          {
            description: ERROR_DESCRIPTIONS[status],
            headers: {
              'x-request-id': ref('headers', 'RequestId'),
              ...(status === 429 || status === 503 ? { 'retry-after': ref('headers', 'RetryAfter') } : {}),
            },
            content: { 'application/json': { schema: ref('schemas', 'Error') } },
          },
        ]),
      ),
      headers: {
        RequestId: {
          description: 'The request id: the caller’s x-request-id if sane (1–128 of A-Z a-z 0-9 . _ : -), else a new UUID',
          schema: { type: 'string' },
        },
        RetryAfter: { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 1 } },
      },
      parameters: {
        RequestId: {
          name: 'x-request-id',
          in: 'header',
          required: false,
          // No pattern: a value outside it is replaced, never refused, so the document must accept it (schemathesis, issue 9).
          description:
            'Your id for the request, echoed back and logged when it is 1–128 of A-Z a-z 0-9 . _ : -; any other value is replaced by a new UUID (never refused)',
          schema: { type: 'string' },
        },
      },
      securitySchemes: {
        liveSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'earshot_live',
          description: 'The live page session (POST /live/session): HttpOnly, SameSite=Strict, short-lived',
        },
        apiId: { type: 'apiKey', in: 'header', name: 'asapp-api-id', description: 'The app’s api id (earshot apps create)' },
        apiSecret: {
          type: 'apiKey',
          in: 'header',
          name: 'asapp-api-secret',
          description: 'The app’s secret, shown once at creation or rotation',
        },
      },
    },
  };
}

/** Koa's `/a/:id/b` is OpenAPI's `/a/{id}/b`. */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function routeParameters(route: RouteSpec): Record<string, unknown>[] {
  const parameters: Record<string, unknown>[] = [];
  for (const [where, schema] of [
    ['path', route.params],
    ['query', route.query],
  ] as const) {
    for (const [name, field] of Object.entries(schema?.shape ?? {})) {
      const json = z.toJSONSchema(field as z.ZodType, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
      const { $schema: _dialect, description, ...fieldSchema } = json;
      parameters.push({
        name,
        in: where,
        required: where === 'path' || !(field as z.ZodType).safeParse(undefined).success,
        ...(typeof description === 'string' ? { description } : {}),
        schema: fieldSchema,
      });
    }
  }
  return parameters;
}

export const OpenApiResponse = z.looseObject({
  openapi: z.string().regex(/^3\.1\.\d+$/),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.unknown()),
});

/** GET /openapi.json: documents every route including itself; built once, at start-up. */
export function openApiRoute(others: readonly RouteSpec[]): RouteSpec {
  const route: RouteSpec = {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This OpenAPI 3.1 document',
    tag: 'operations',
    authenticated: false,
    success: { description: 'The OpenAPI document', body: { id: 'OpenApiDocument', schema: OpenApiResponse } },
    errors: [],
    handle: async (ctx) => {
      ctx.body = document;
    },
  };
  const document = buildOpenApiDocument([...others, route]);
  return route;
}
