import t from 'tap';
import { startAppProcess } from '../support/app-process.js';
import { testConfig } from '../support/infra.js';

// An app without an HTTP port of its own (here webhooks and store, on real Kafka and ClickHouse)
// still answers health checks and Prometheus scrapes on EARSHOT_OPS_PORT.
const distributedEnv = () => ({
  EARSHOT_MODE: 'distributed',
  EARSHOT_LOG_LEVEL: 'warn',
  EARSHOT_SECRETS_KEY: Buffer.alloc(32, 5).toString('base64'),
  EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 6).toString('base64')}`,
  EARSHOT_KAFKA_NAMESPACE: `test-ops-${Math.random().toString(36).slice(2, 8)}`,
  EARSHOT_KAFKA_BROKERS: testConfig.EARSHOT_KAFKA_BROKERS,
  EARSHOT_SCHEMA_REGISTRY_URL: testConfig.EARSHOT_SCHEMA_REGISTRY_URL as string,
});

t.test('earshot start --apps webhooks,store serves /healthz, /readyz and /metrics on the ops port', async (t) => {
  const env = {
    ...distributedEnv(),
    EARSHOT_CLICKHOUSE_URL: testConfig.EARSHOT_CLICKHOUSE_URL as string,
    EARSHOT_CLICKHOUSE_DATABASE: `test_ops_${Math.random().toString(36).slice(2, 8)}`,
    EARSHOT_OPS_PORT: '0',
  };
  const app = await startAppProcess('webhooks,store', env);
  t.teardown(() => app.kill());
  const url = app.url('ops');
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback by default');

  const health = await fetch(`${url}/healthz`);
  t.same([health.status, await health.json()], [200, { status: 'ok', apps: ['webhooks', 'store'] }]);
  const ready = await fetch(`${url}/readyz`);
  t.equal(ready.status, 200, 'ready: the event log answers');
  const metrics = await fetch(`${url}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain/);
  const text = await metrics.text();
  t.match(text, /^# HELP earshot_webhook/m, "the webhooks app's metrics");
  t.match(text, /^# HELP earshot_store/m, "the store app's metrics");

  const unknown = await fetch(`${url}/openapi.json`);
  t.equal(unknown.status, 404);
  t.match(await unknown.json(), { error: { code: '404-01', message: /serves \/healthz, \/readyz and \/metrics/ } });
  const post = await fetch(`${url}/metrics`, { method: 'POST' });
  t.equal(post.status, 405);
  t.equal(await app.stop(), 0, 'a clean shutdown with the ops server running');
});

t.test('no ops server unless EARSHOT_OPS_PORT is set', async (t) => {
  const env = distributedEnv();
  const plain = await startAppProcess('webhooks', env);
  t.teardown(() => plain.kill());
  t.throws(() => plain.url('ops'), /printed no ops URL/);
  t.equal(await plain.stop(), 0);
});
