// Verifies a running registry's Confluent API with @kafkajs/confluent-schema-registry.
// Usage (registry started by start.sh on a FRESH in-memory store):
//   REGISTRY_PORT=18081 node infra/registry/verify-ccompat.mjs
// Exits 0 and prints 'ALL CHECKS PASSED' on success.
import assert from 'node:assert';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';

const port = process.env.REGISTRY_PORT || '18081';
const host = `http://127.0.0.1:${port}/apis/ccompat/v7`;
const subject = process.env.SUBJECT || 'earshot.test-value';
const registry = new SchemaRegistry({ host, retry: { retries: 0 } });

async function rest(method, path, body) {
  const res = await fetch(host + path, {
    method,
    headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  console.log(`  ${method} ${path} -> ${res.status} ${text.slice(0, 300)}`);
  return { status: res.status, json };
}

const v1 = {
  type: 'record',
  name: 'Event',
  namespace: 'earshot.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'ts', type: 'long' },
  ],
};
const v2 = {
  ...v1,
  fields: [...v1.fields, { name: 'source', type: 'string', default: 'unknown' }],
};
const bad1 = {
  ...v1,
  fields: [...v2.fields, { name: 'required_new', type: 'int' }],
}; // new field, no default
const bad2 = {
  ...v1,
  fields: [{ name: 'id', type: 'int' }, v1.fields[1], v2.fields[2]],
}; // type change

async function expectRejected(label, schema) {
  const c = await rest('POST', `/compatibility/subjects/${subject}/versions/latest`, { schema: JSON.stringify(schema) });
  assert.strictEqual(c.status, 200, `${label}: compat check status`);
  assert.strictEqual(c.json.is_compatible, false, `${label}: compat check should say incompatible`);
  try {
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject });
  } catch (e) {
    console.log(`  ${label}: register rejected: ${e.name} status=${e.status} msg=${e.message}`);
    assert.strictEqual(e.status, 409, `${label}: expected HTTP 409, got ${e.status}`);
    return;
  }
  throw new Error(`${label}: incompatible schema was ACCEPTED`);
}

(async () => {
  const t0 = Date.now();
  console.log('global config:');
  await rest('GET', '/config');
  console.log('subject config before first register:');
  await rest('GET', `/config/${subject}`);

  console.log('register v1 via client');
  const { id: id1 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  console.log(`  id1=${id1}`);

  const rec = { id: 'abc', ts: 1234567890123 };
  const buf = await registry.encode(id1, rec);
  assert.strictEqual(buf[0], 0, 'magic byte');
  assert.strictEqual(buf.readInt32BE(1), id1, 'id in wire header');
  const dec = await registry.decode(buf);
  assert.deepStrictEqual({ ...dec }, rec);
  console.log(`  encode/decode ok (${buf.length} bytes)`);

  // fresh client (no cache) decode: forces GET /schemas/ids/{id}
  const dec2 = await new SchemaRegistry({ host }).decode(buf);
  assert.deepStrictEqual({ ...dec2 }, rec);
  console.log('  decode with fresh client (GET /schemas/ids/{id}) ok');

  console.log('set subject compatibility BACKWARD via REST');
  const put = await rest('PUT', `/config/${subject}`, {
    compatibility: 'BACKWARD',
  });
  assert.strictEqual(put.status, 200);
  const get = await rest('GET', `/config/${subject}`);
  assert.strictEqual(get.json.compatibilityLevel, 'BACKWARD');

  console.log('register v2 (new field with default) -> must succeed');
  const c2 = await rest('POST', `/compatibility/subjects/${subject}/versions/latest`, { schema: JSON.stringify(v2) });
  assert.strictEqual(c2.json.is_compatible, true);
  const { id: id2 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
  console.log(`  id2=${id2}`);
  assert.notStrictEqual(id1, id2);

  console.log('compatible() via client api');
  const cc = await registry.api.Subject.compatible({
    subject,
    body: { schema: JSON.stringify(bad1) },
  });
  console.log(`  client api compatible(bad1) -> ${JSON.stringify(cc.data())}`);
  assert.strictEqual(cc.data().is_compatible, false);

  console.log('register bad1 (new required field, no default) -> must be rejected');
  await expectRejected('bad1', bad1);
  console.log('register bad2 (field type change string->int) -> must be rejected');
  await expectRejected('bad2', bad2);

  console.log('lookups');
  const latest = await registry.getLatestSchemaId(subject);
  console.log(`  getLatestSchemaId=${latest}`);
  assert.strictEqual(latest, id2);
  const r1 = await registry.getRegistryId(subject, 1);
  const r2 = await registry.getRegistryId(subject, 2);
  console.log(`  getRegistryId(v1)=${r1} getRegistryId(v2)=${r2}`);
  assert.strictEqual(r1, id1);
  assert.strictEqual(r2, id2);
  const bySchema = await registry.getRegistryIdBySchema(subject, {
    type: SchemaType.AVRO,
    schema: JSON.stringify(v1),
  });
  console.log(`  getRegistryIdBySchema(v1)=${bySchema}`);
  assert.strictEqual(bySchema, id1);
  await rest('GET', `/subjects/${subject}/versions`);

  // v2 reader decoding v1 data is what BACKWARD guarantees; decode old record with id1 still works
  const decOld = await registry.decode(buf);
  assert.deepStrictEqual({ ...decOld }, rec);

  // re-registering the same schema is idempotent (same id)
  const { id: again } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
  assert.strictEqual(again, id2);
  console.log(`  re-register v2 -> same id ${again}`);

  console.log(`ALL CHECKS PASSED in ${Date.now() - t0} ms`);
})().catch((e) => {
  console.error('FAILED:', e && (e.stack || e));
  process.exit(1);
});
