import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadEarshotConfig } from '../../apps/shared/src/config.js';
import { isEarshotError } from '../../apps/shared/src/errors.js';

const fails = (env: Record<string, string>): string => {
  try {
    loadEarshotConfig({ env });
  } catch (error) {
    if (isEarshotError(error, 'EARSHOT_CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected the configuration to be refused');
};

t.test('defaults give embedded mode and the local infra servers', async (t) => {
  const config = loadEarshotConfig({ env: {} });
  t.equal(config.EARSHOT_MODE, 'embedded');
  t.equal(config.EARSHOT_DATA_DIR, './data');
  t.equal(config.EARSHOT_KAFKA_BROKERS, '127.0.0.1:19092');
  t.equal(config.EARSHOT_SCHEMA_REGISTRY_URL, 'http://127.0.0.1:18081/apis/ccompat/v7');
  t.equal(config.EARSHOT_CLICKHOUSE_URL, 'http://127.0.0.1:18123');
});

t.test('server addresses follow the infra ports unless set', async (t) => {
  const config = loadEarshotConfig({ env: { EARSHOT_INFRA_KAFKA_PORT: '29092', EARSHOT_INFRA_REGISTRY_PORT: '28081' } });
  t.equal(config.EARSHOT_KAFKA_BROKERS, '127.0.0.1:29092');
  t.equal(config.EARSHOT_SCHEMA_REGISTRY_URL, 'http://127.0.0.1:28081/apis/ccompat/v7');
  t.equal(loadEarshotConfig({ env: { EARSHOT_KAFKA_BROKERS: 'k1:9092,k2:9092' } }).EARSHOT_KAFKA_BROKERS, 'k1:9092,k2:9092');
});

t.test('a bad value is refused naming the variable and the value', async (t) => {
  t.match(fails({ EARSHOT_MODE: 'cluster' }), /EARSHOT_MODE: .*"cluster"/);
  t.match(fails({ EARSHOT_INFRA_KAFKA_PORT: '70000' }), /EARSHOT_INFRA_KAFKA_PORT/);
  t.match(fails({ EARSHOT_KAFKA_BROKERS: 'localhost' }), /EARSHOT_KAFKA_BROKERS: a comma-separated list of host:port/);
  t.match(fails({ EARSHOT_SCHEMA_REGISTRY_URL: 'not a url' }), /EARSHOT_SCHEMA_REGISTRY_URL/);
});

t.test('model workers: 2 by default, 1-64 accepted, anything else refused by name', async (t) => {
  t.equal(loadEarshotConfig({ env: {} }).EARSHOT_ASR_WORKERS, 2);
  t.equal(loadEarshotConfig({ env: { EARSHOT_ASR_WORKERS: '1' } }).EARSHOT_ASR_WORKERS, 1);
  for (const bad of ['0', '65', '1.5', 'two']) t.match(fails({ EARSHOT_ASR_WORKERS: bad }), /EARSHOT_ASR_WORKERS/, bad);
});

t.test('every problem is reported at once', async (t) => {
  const message = fails({ EARSHOT_MODE: 'x', EARSHOT_LOG_LEVEL: 'loud' });
  t.match(message, /EARSHOT_MODE/);
  t.match(message, /EARSHOT_LOG_LEVEL/);
});

t.test('an unknown EARSHOT_ variable is refused, so a typo cannot fall back to a default', async (t) => {
  t.match(fails({ EARSHOT_DATADIR: '/tmp/x' }), /EARSHOT_DATADIR is not a known setting/);
});

t.test('a renamed variable points at its new name', async (t) => {
  t.match(fails({ EARSHOT_KAFKA_BROKER: 'k:1' }), /EARSHOT_KAFKA_BROKER was renamed to EARSHOT_KAFKA_BROKERS/);
});

t.test('a config file supplies settings and the environment wins over it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'earshot.json');
  writeFileSync(file, JSON.stringify({ EARSHOT_MODE: 'distributed', EARSHOT_TOPIC_PARTITIONS: 12 }));
  const config = loadEarshotConfig({ env: { EARSHOT_CONFIG_FILE: file, EARSHOT_TOPIC_PARTITIONS: '3' } });
  t.equal(config.EARSHOT_MODE, 'distributed');
  t.equal(config.EARSHOT_TOPIC_PARTITIONS, 3);
  writeFileSync(file, '{ not json');
  t.match(fails({ EARSHOT_CONFIG_FILE: file }), /is not valid JSON/);
  t.match(fails({ EARSHOT_CONFIG_FILE: join(dir, 'missing.json') }), /cannot read/);
  writeFileSync(file, '[1]');
  t.match(fails({ EARSHOT_CONFIG_FILE: file }), /must hold a JSON object/);
});
