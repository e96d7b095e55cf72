import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../apps/shared/src/logger.js';
import { Counter, createMetricsRegistry } from '../../apps/shared/src/metrics.js';

t.test('logs are JSON lines with the app name, and secret-bearing fields are censored', async (t) => {
  const sink = new PassThrough();
  const lines: string[] = [];
  sink.on('data', (d) => lines.push(...String(d).trim().split('\n')));
  const logger = createLogger({ level: 'info', name: 'api', destination: sink });
  logger.info({ apiSecret: 's3cr3t', headers: { 'asapp-api-secret': 'h3ad3r', 'asapp-api-id': 'app1' }, callSid: 'CA1' }, 'request');
  logger.debug('not at this level');
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 1);
  const entry = JSON.parse(lines[0] as string);
  t.equal(entry.app, 'api');
  t.equal(entry.msg, 'request');
  t.equal(entry.callSid, 'CA1');
  t.equal(entry.apiSecret, '[redacted]');
  t.equal(entry.headers['asapp-api-secret'], '[redacted]');
  t.equal(entry.headers['asapp-api-id'], 'app1');
  t.notMatch(lines[0], /s3cr3t|h3ad3r/);
});

t.test('metrics render as Prometheus text with the app label', async (t) => {
  const registry = createMetricsRegistry({ app: 'ingest', defaultMetrics: false });
  const frames = new Counter({ name: 'earshot_test_frames_total', help: 'frames', labelNames: ['outcome'], registers: [registry] });
  frames.inc({ outcome: 'accepted' }, 3);
  const text = await registry.metrics();
  t.match(text, /# TYPE earshot_test_frames_total counter/);
  t.match(text, /earshot_test_frames_total\{outcome="accepted",app="ingest"\} 3/);
});
