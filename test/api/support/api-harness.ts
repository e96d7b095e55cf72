import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Test } from 'tap';
import { type ApiServer, startApi } from '../../../apps/api/main.js';
import type { Runtime } from '../../../apps/shared/src/runtime.js';
import { createTestApp, testRuntime } from '../../support/runtime.js';
import { startAsrStandIn } from './asr-stand-in.js';
import { type ObservedResponse, OpenApiValidator } from './openapi-validator.js';

/**
 * An API on port 0 over a test runtime, plus a client whose every response is checked
 * against the served /openapi.json (`OpenApiValidator`): a test cannot observe a response
 * the document does not promise without failing.
 */
export interface ApiResponse<T = unknown> {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: T;
  readonly text: string;
}

export interface Credentials {
  readonly apiId: string;
  readonly apiSecret: string;
}

export interface RequestOptions {
  readonly headers?: Record<string, string>;
  /** Sent as JSON with Content-Type application/json. */
  readonly json?: unknown;
  /** Sent as is (set the content type yourself). */
  readonly raw?: string | Buffer;
  /** Credentials to send; default the harness tenant; null sends none. */
  readonly as?: Credentials | null;
}

export interface ApiHarness {
  readonly runtime: Runtime;
  readonly api: ApiServer;
  readonly url: string;
  readonly tenant: Credentials;
  readonly openapi: OpenApiValidator;
  /** A real fetch; the response is validated against /openapi.json. */
  call<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  /** node:http(s) for what fetch cannot do (chunked bodies, a private CA); validated likewise. */
  raw<T = unknown>(method: string, path: string, options: RawRequestOptions): Promise<ApiResponse<T>>;
  /** Validates a response obtained some other way. */
  check(method: string, path: string, response: ApiResponse): void;
  newTenant(name?: string): Promise<Credentials>;
}

export interface RawRequestOptions {
  readonly headers?: Record<string, string>;
  /** Written in pieces (chunked transfer encoding unless a content-length header is given). */
  readonly chunks?: readonly Buffer[];
  /** Write the headers and the chunks but never end the request (to see an answer given before the body). */
  readonly leaveOpen?: boolean;
  readonly ca?: Buffer;
  /** The client address to connect from (any 127.x works on loopback). */
  readonly localAddress?: string;
}

export const credentialHeaders = (c: Credentials): Record<string, string> => ({ 'asapp-api-id': c.apiId, 'asapp-api-secret': c.apiSecret });

export const newCallSid = (): string => `CA${randomBytes(16).toString('hex')}`;

export const startBody = (callSid: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  namespace: 'twilio',
  guid: callSid,
  customerId: 'customer-42',
  agentId: 'agent-7',
  ...extra,
});

export async function startTestApi(
  t: Test,
  options: {
    env?: Record<string, string>;
    kafka?: boolean;
    runtime?: Runtime;
    wrap?: (runtime: Runtime) => Runtime;
    /** The CA of a TLS listener: requests then go through node:https (Node 20's fetch takes no CA). */
    ca?: Buffer;
    /** Answer stop commands as the asr consumer would (default true). */
    asrStandIn?: boolean;
  } = {},
): Promise<ApiHarness> {
  let runtime = options.runtime;
  if (!runtime) {
    const created = await testRuntime({ kafka: options.kafka, env: { EARSHOT_API_PORT: '0', ...options.env } });
    t.teardown(() => created.cleanup());
    runtime = created;
  }
  if (options.asrStandIn !== false) {
    const standIn = await startAsrStandIn(runtime);
    t.teardown(() => standIn.stop());
  }
  const api = await startApi(options.wrap ? options.wrap(runtime) : runtime);
  t.teardown(() => api.stop());
  const tenant = await createTestApp(runtime, 'tenant a');
  const rt = runtime;

  let validator: OpenApiValidator | undefined;
  const observe = (method: string, path: string, response: ApiResponse): void => {
    const observed: ObservedResponse = {
      method,
      path: path.split('?')[0] ?? path,
      status: response.status,
      headers: response.headers,
      text: response.text,
    };
    (validator as OpenApiValidator).assert(observed);
  };

  const call = async <T>(method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse<T>> => {
    const who = o.as === undefined ? tenant : o.as;
    const headers: Record<string, string> = { ...(who ? credentialHeaders(who) : {}), ...o.headers };
    let body: string | Buffer | undefined = o.raw;
    if (o.json !== undefined) {
      body = JSON.stringify(o.json);
      headers['content-type'] ??= 'application/json';
    }
    let response: ApiResponse<T>;
    if (options.ca) {
      const bytes = body === undefined ? undefined : Buffer.from(body);
      if (bytes) headers['content-length'] = String(bytes.length);
      response = await rawRequest<T>(api.url, method, path, { headers, chunks: bytes ? [bytes] : [], ca: options.ca });
    } else {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers,
        body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body),
      });
      const text = await res.text();
      response = toResponse<T>(res.status, Object.fromEntries(res.headers), text);
    }
    observe(method, path, response);
    return response;
  };

  const raw = <T>(method: string, path: string, o: RawRequestOptions): Promise<ApiResponse<T>> =>
    rawRequest<T>(api.url, method, path, { ca: options.ca, ...o }).then((response) => {
      observe(method, path, response);
      return response;
    });

  const document = await rawRequest<Record<string, unknown>>(api.url, 'GET', '/openapi.json', { ca: options.ca });
  validator = new OpenApiValidator(document.body);
  observe('GET', '/openapi.json', document);

  return {
    runtime: rt,
    api,
    url: api.url,
    tenant,
    openapi: validator,
    call,
    raw,
    check: observe,
    newTenant: (name = 'another tenant') => createTestApp(rt, name),
  };
}

function toResponse<T>(status: number, headers: Record<string, string>, text: string): ApiResponse<T> {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics): keep the text
  }
  return { status, headers, body: body as T, text };
}

export function rawRequest<T>(base: string, method: string, path: string, o: RawRequestOptions): Promise<ApiResponse<T>> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method, headers: o.headers, ca: o.ca, localAddress: o.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(toResponse<T>(res.statusCode ?? 0, flatten(res.headers), text));
        if (o.leaveOpen) req.destroy();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const chunk of o.chunks ?? []) req.write(chunk);
    if (!o.leaveOpen) req.end();
  });
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
  );
}
