import { PassThrough } from 'node:stream';
import { Ajv2020 } from 'ajv/dist/2020.js';
import t from 'tap';
import { startApi } from '../../apps/api/main.js';
import { EarshotError } from '../../apps/shared/src/errors.js';
import { createLogger } from '../../apps/shared/src/logger.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { testRuntime } from '../support/runtime.js';
import { newCallSid, startBody, startTestApi } from './support/api-harness.js';
import { addFormats } from './support/openapi-validator.js';

/** SPEC §3.6 operations endpoints, 5xx hygiene, logs, and the OpenAPI document itself. */
const STREAM_URL = '/mg-autotranscribe/v1/twilio-media-stream-url';
const START = '/mg-autotranscribe/v1/start-streaming';
const STOP = '/mg-autotranscribe/v1/stop-streaming';

type ErrorBody = { error: { requestId: string; code: string; message: string } };

/** The value of the one sample of `name` whose labels include `labels` (in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[3]);
  }
  return undefined;
}

/** The runtime's event log with switchable failures. */
function flakyLog(log: EventLog) {
  const failures: { produce: Map<string, Error>; endOffsets: Error | null } = { produce: new Map(), endOffsets: null };
  const wrapped: EventLog = {
    kind: log.kind,
    ensureTopics: (topics) => log.ensureTopics(topics),
    describeTopic: (name) => log.describeTopic(name),
    endOffsets: async (topic) => {
      if (failures.endOffsets) throw failures.endOffsets;
      return log.endOffsets(topic);
    },
    produce: async (topic, records) => {
      const failure = failures.produce.get(topic.name);
      if (failure) throw failure;
      return log.produce(topic, records);
    },
    createConsumer: (options) => log.createConsumer(options),
    close: () => log.close(),
  };
  return { wrapped, failures };
}

t.test('healthz and readyz', async (t) => {
  let flaky: ReturnType<typeof flakyLog> | undefined;
  const api = await startTestApi(t, {
    wrap: (runtime) => {
      flaky = flakyLog(runtime.eventLog);
      return { ...runtime, eventLog: flaky.wrapped };
    },
  });
  t.same((await api.call('GET', '/healthz', { as: null })).body, { status: 'ok' });
  const ready = await api.call('GET', '/readyz', { as: null });
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready', checks: { eventLog: 'ok', appDirectory: 'ok', callState: 'ok' } });

  if (flaky) flaky.failures.endOffsets = new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', 'broker down');
  const notReady = await api.call<ErrorBody>('GET', '/readyz', { as: null });
  t.equal(notReady.status, 503);
  t.equal(notReady.headers['retry-after'], '1');
  t.match(notReady.body.error.message, 'not ready: the event log did not answer within 2000 ms');
  t.equal((await api.call('GET', '/healthz', { as: null })).status, 200, 'still alive');
});

t.test('5xx answers never leak internals; an unavailable event log is 503 with Retry-After', async (t) => {
  let flaky: ReturnType<typeof flakyLog> | undefined;
  const api = await startTestApi(t, {
    wrap: (runtime) => {
      flaky = flakyLog(runtime.eventLog);
      return { ...runtime, eventLog: flaky.wrapped };
    },
  });
  const failures = flaky?.failures.produce ?? new Map();
  failures.set(TOPICS.callEvents.name, new Error('ECONNREFUSED 10.1.2.3:9092 at KafkaClient.internalSecret'));
  const crashed = await api.call<ErrorBody>('POST', START, { json: startBody(newCallSid()) });
  t.equal(crashed.status, 500);
  t.equal(crashed.body.error.message, 'internal error; quote the request id when reporting it');
  t.notMatch(crashed.text, /ECONNREFUSED|10\.1\.2\.3|internalSecret|stack/);

  failures.set(
    TOPICS.callEvents.name,
    new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', 'cannot produce to broker 10.1.2.3', { retriable: true }),
  );
  const unavailable = await api.call<ErrorBody>('POST', START, { json: startBody(newCallSid()) });
  t.equal(unavailable.status, 503);
  t.equal(unavailable.headers['retry-after'], '1');
  t.equal(unavailable.body.error.message, 'the event log is unavailable; retry shortly');

  failures.clear();
  failures.set(TOPICS.audit.name, new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', 'audit down', { retriable: true }));
  t.equal((await api.call('GET', STREAM_URL)).status, 503, 'no stream URL is issued unaudited');
  const callSid = newCallSid();
  t.equal(
    (await api.call('POST', START, { json: startBody(callSid) })).status,
    200,
    'a command that took effect is not reported as failed',
  );
  t.equal((await api.call('POST', STOP, { json: { namespace: 'twilio', guid: callSid } })).status, 200);
  const metrics = await api.call<string>('GET', '/metrics', { as: null });
  t.equal(sample(metrics.text, 'earshot_api_audit_failures_total', {}), 2, 'the lost audit records are counted');
});

t.test('metrics: requests by route and status, latency histogram, Prometheus text', async (t) => {
  const api = await startTestApi(t);
  await api.call('GET', STREAM_URL);
  await api.call('GET', STREAM_URL, { as: null });
  await api.call('GET', '/no/such/route', { as: null });
  const res = await api.call<string>('GET', '/metrics', { as: null });
  t.equal(res.status, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const route = STREAM_URL;
  t.equal(sample(res.text, 'earshot_api_requests_total', { method: 'GET', route, status: '200' }), 1);
  t.equal(
    sample(res.text, 'earshot_api_requests_total', { method: 'GET', route, status: '401' }),
    1,
    'refused before routing, still labelled',
  );
  t.equal(
    sample(res.text, 'earshot_api_requests_total', { method: 'GET', route: 'unmatched', status: '404' }),
    1,
    'raw paths never become labels',
  );
  t.equal(sample(res.text, 'earshot_api_request_duration_seconds_count', { method: 'GET', route }), 2);
  t.equal(sample(res.text, 'earshot_api_request_duration_seconds_bucket', { method: 'GET', route, le: '+Inf' }), 2);
  t.equal(sample(res.text, 'earshot_api_auth_failures_total', {}), 1);
  t.type(sample(res.text, 'earshot_api_calls_tracked', {}), 'number');
  t.notMatch(res.text, new RegExp(api.tenant.apiId), 'no tenant ids in labels');
});

t.test('request logs carry request id, app id, route, status and latency, and never the secret or a body', async (t) => {
  const lines: string[] = [];
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const api = await startTestApi(t, {
    wrap: (runtime: Runtime) => ({ ...runtime, logger: createLogger({ level: 'info', name: 'test', destination }) }),
  });
  const callSid = newCallSid();
  await api.call('POST', START, {
    json: startBody(callSid, { customerId: 'very-private-customer' }),
    headers: { 'x-request-id': 'log-check-1' },
  });
  await api.call('GET', STREAM_URL, {
    as: { apiId: api.tenant.apiId, apiSecret: 'wrong-secret-value' },
    headers: { 'x-request-id': 'log-check-2' },
  });
  const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e.msg === 'api.request');
  const started = entries.find((e) => e.requestId === 'log-check-1');
  t.match(started, { appId: api.tenant.apiId, method: 'POST', route: START, status: 200, latencyMs: Number });
  t.match(
    entries.find((e) => e.requestId === 'log-check-2'),
    { appId: null, route: STREAM_URL, status: 401 },
  );
  const all = lines.join('\n');
  t.notOk(all.includes(api.tenant.apiSecret), 'never the secret');
  t.notOk(all.includes('wrong-secret-value'), 'not even a wrong one');
  t.notOk(all.includes('very-private-customer'), 'never a body');
  t.notOk(all.includes(callSid), 'not even the Call SID of a body');
});

t.test('openapi.json is an OpenAPI 3.1 document covering every route, with compilable schemas', async (t) => {
  const api = await startTestApi(t);
  const doc = (await api.call<Record<string, unknown>>('GET', '/openapi.json', { as: null })).body as {
    openapi: string;
    info: { title: string; version: string };
    paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown>; security: unknown[] }>>;
    components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; in: string; name: string }> };
  };
  t.match(doc.openapi, /^3\.1\.\d+$/);
  t.ok(doc.info.title && doc.info.version, 'info.title and info.version');
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
  t.same(operations.sort(), [
    'GET /conversation/v1/conversation/messages',
    'GET /fileexporter/v1/download/{token}',
    'GET /healthz',
    'GET /live',
    'GET /live/assets/live.css',
    'GET /live/assets/live.js',
    'GET /live/calls',
    'GET /live/calls/{externalId}/events',
    'GET /live/session',
    'GET /metrics',
    'GET /mg-autotranscribe/v1/recordings',
    'GET /mg-autotranscribe/v1/recordings/{recordingId}/audio',
    `GET ${STREAM_URL}`,
    'GET /openapi.json',
    'GET /readyz',
    ...['getfeedfile', 'listfeeddates', 'listfeedfiles', 'listfeedformats', 'listfeedintervals', 'listfeeds', 'listfeedversions'].map(
      (name) => `POST /fileexporter/v1/static/${name}`,
    ),
    'POST /live/session',
    'POST /live/session/end',
    `POST ${START}`,
    `POST ${STOP}`,
  ]);
  const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
  t.equal(new Set(ids).size, ids.length, 'unique operationIds');
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      t.ok(op.responses['200'], `${method} ${path} documents 200`);
      const protectedPath = ['/mg-autotranscribe/', '/conversation/', '/fileexporter/v1/static/'].some((prefix) => path.startsWith(prefix));
      // The live page's routes after login take its session cookie instead of the asapp-* headers.
      const sessionPath = method === 'get' && ['/live/session', '/live/calls'].some((prefix) => path.startsWith(prefix));
      t.equal(op.security.length > 0, protectedPath || sessionPath, `${method} ${path} security`);
    }
  }
  t.same(
    Object.values(doc.components.securitySchemes).map((s) => [s.type, s.in, s.name]),
    [
      ['apiKey', 'cookie', 'earshot_live'],
      ['apiKey', 'header', 'asapp-api-id'],
      ['apiKey', 'header', 'asapp-api-secret'],
    ],
  );
  // Every $ref resolves.
  const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1] ?? '');
  t.ok(refs.length > 10);
  for (const ref of new Set(refs)) {
    let node: unknown = doc;
    for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
    t.ok(node, `${ref} resolves`);
  }
  // Strict ajv: no keyword outside JSON Schema 2020-12 in any component schema.
  const ajv = new Ajv2020({ strict: true });
  addFormats(ajv);
  for (const [id, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema as object, `#/components/schemas/${id}`);
  for (const id of Object.keys(doc.components.schemas)) t.doesNotThrow(() => ajv.getSchema(`#/components/schemas/${id}`), `${id} compiles`);
  const start = doc.components.schemas.StartStreamingRequest as { required: string[]; properties: Record<string, { default?: unknown }> };
  t.same(start.required.sort(), ['agentId', 'customerId', 'guid', 'namespace'], 'defaults make the options optional in requests');
});

t.test('the response validator refuses what the document does not promise', async (t) => {
  const api = await startTestApi(t);
  const good = await api.call('POST', START, { json: startBody(newCallSid()) });
  const problems = (change: Partial<{ status: number; headers: Record<string, string>; text: string }>, method = 'POST', path = START) =>
    api.openapi.problems({ method, path, status: good.status, headers: good.headers, text: good.text, ...change });
  t.same(problems({}), [], 'the real response passes');
  t.match(problems({ text: JSON.stringify({ isOk: true }) }).join(), /does not match/, 'a body of the wrong shape');
  t.match(problems({ status: 201 }).join(), /201 is not documented/, 'an undocumented status');
  t.match(problems({ headers: { 'content-type': 'application/json' } }).join(), /no x-request-id/, 'no request id');
  const error = { error: { requestId: good.headers['x-request-id'], code: '400-01', message: 'x' } };
  t.match(problems({ status: 409, text: JSON.stringify(error) }).join(), /error code 400-01 does not match status 409/);
  t.match(problems({ status: 429, text: JSON.stringify({ error: { ...error.error, code: '429-01' } }) }).join(), /Retry-After/);
  t.match(problems({ status: 500 }, 'GET', '/healthz').join(), /500 is not documented/);
});

t.test('plain HTTP is refused off loopback; a bad certificate path is named', async (t) => {
  const runtime = await testRuntime({ env: { EARSHOT_API_PORT: '0', EARSHOT_API_HOST: '0.0.0.0' } });
  t.teardown(() => runtime.cleanup());
  await t.rejects(startApi(runtime), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /EARSHOT_API_HOST is 0\.0\.0\.0 but no certificate is configured: plain HTTP is allowed only on loopback/,
  });
  const tls = await testRuntime({
    env: { EARSHOT_API_PORT: '0', EARSHOT_TLS_CERT_FILE: '/nonexistent/cert.pem', EARSHOT_TLS_KEY_FILE: '/nonexistent/key.pem' },
  });
  t.teardown(() => tls.cleanup());
  await t.rejects(startApi(tls), {
    code: 'EARSHOT_CONFIG_INVALID',
    message: /EARSHOT_TLS_CERT_FILE: cannot read \/nonexistent\/cert\.pem/,
  });
});
