import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SchemaRegistryCodec } from '../../apps/shared/src/adapters/schema-registry-codec.js';
import { isEarshotError } from '../../apps/shared/src/errors.js';
import type { AuditRecorded } from '../../apps/shared/src/events.js';
import { loadSchemas, SCHEMAS_DIR } from '../../apps/shared/src/schemas.js';
import { ALL_TOPICS, renamedTopic, TOPICS } from '../../apps/shared/src/topics.js';
import { testConfig } from '../support/infra.js';
import { randomSuffix } from '../support/wait.js';

/** A copy of schemas/ with AuditRecorded changed by `change`, as a later release might ship it. */
function evolvedSchemas(change: (fields: unknown[]) => unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-schemas-'));
  for (const file of ['AuditRecorded.avsc']) {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, file), 'utf8')) as { fields: unknown[] };
    schema.fields = change(schema.fields);
    writeFileSync(join(dir, file), JSON.stringify(schema));
  }
  return dir;
}

const record: AuditRecorded = {
  eventId: 'e1',
  appId: 'app1',
  action: 'stream-url.issued',
  requestId: 'r1',
  callSidHash: null,
  clientAddressHash: null,
  occurredAtMs: 1_764_000_000_000,
};

t.test('the real registry accepts a backward-compatible change and refuses an incompatible one', async (t) => {
  const topic = renamedTopic(TOPICS.audit, `earshot.test-${randomSuffix()}`);
  const dirs: string[] = [];
  t.teardown(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const v1 = new SchemaRegistryCodec(testConfig.EARSHOT_SCHEMA_REGISTRY_URL);
  const id1 = await v1.register(topic);

  const compatibleDir = evolvedSchemas((fields) => [...fields, { name: 'region', type: 'string', default: 'unknown' }]);
  dirs.push(compatibleDir);
  const v2 = new SchemaRegistryCodec(testConfig.EARSHOT_SCHEMA_REGISTRY_URL, (name) => loadSchemas(compatibleDir).get(name) as never);
  const id2 = await v2.register(topic);
  t.not(id2, id1, 'the evolved schema is a new version');

  // Old data, new reader: the default fills the new field.
  const oldBytes = await v1.encode(topic, record);
  t.same(await v2.decode(topic, oldBytes), { ...record, region: 'unknown' });

  const incompatibleDir = evolvedSchemas((fields) => [...fields, { name: 'mandatory', type: 'string' }]);
  dirs.push(incompatibleDir);
  const v3 = new SchemaRegistryCodec(testConfig.EARSHOT_SCHEMA_REGISTRY_URL, (name) => loadSchemas(incompatibleDir).get(name) as never);
  const error = await v3.register(topic).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(isEarshotError(error, 'EARSHOT_SCHEMA_INCOMPATIBLE'), `refused as incompatible (${(error as Error)?.message})`);
});

t.test('every topic schema registers under <topic>-value with BACKWARD compatibility', async (t) => {
  const codec = new SchemaRegistryCodec(testConfig.EARSHOT_SCHEMA_REGISTRY_URL);
  for (const spec of ALL_TOPICS) {
    const topic = renamedTopic(spec, `earshot.test-${randomSuffix()}`);
    await codec.register(topic);
    const response = await fetch(`${testConfig.EARSHOT_SCHEMA_REGISTRY_URL}/config/${topic.name}-value`);
    const body = (await response.json()) as { compatibilityLevel?: string };
    t.equal(body.compatibilityLevel, 'BACKWARD', `${spec.name} schema ${spec.schema}`);
  }
});

t.test('encodeAll: the same bytes as encode, one value at a time, also past its first buffer; an invalid value throws', async (t) => {
  const topic = renamedTopic(TOPICS.audit, `earshot.test-${randomSuffix()}`);
  const codec = new SchemaRegistryCodec(testConfig.EARSHOT_SCHEMA_REGISTRY_URL);
  // Three values of ~5 KB each outgrow the 4 KB the first buffer is sized for.
  const values = [record, { ...record, action: 'a'.repeat(5000) }, { ...record, eventId: 'e2', action: 'b'.repeat(5200) }, record];
  const all = await codec.encodeAll(topic, values);
  t.equal(all.length, values.length);
  for (const [i, value] of values.entries()) {
    t.ok((all[i] as Buffer).equals(await codec.encode(topic, value)), `value ${i}: same bytes`);
    t.same(await codec.decode(topic, all[i] as Buffer), value, `value ${i}: decodes back`);
  }
  await t.rejects(codec.encodeAll(topic, [record, { ...record, occurredAtMs: 'soon' as unknown as number }]), {
    code: 'EARSHOT_SCHEMA_INVALID',
  });
});
