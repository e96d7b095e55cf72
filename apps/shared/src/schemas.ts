import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { EarshotError } from './errors.js';

/**
 * Loads every `schemas/*.avsc` into one avsc registry. Files reference each other's named
 * types (`earshot.Track`); they are parsed in dependency order by retrying the ones whose
 * references are not parsed yet. `type.schema()` then yields a self-contained schema, which
 * is what the schema registry receives (no cross-subject references to manage).
 */
export const SCHEMAS_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));
const NAMESPACE = 'earshot';

let cached: Map<string, avro.Type> | undefined;

export function loadSchemas(dir: string = SCHEMAS_DIR): Map<string, avro.Type> {
  if (dir === SCHEMAS_DIR && cached) return cached;
  const pending = readdirSync(dir)
    .filter((file) => file.endsWith('.avsc'))
    .map((file) => ({ file, schema: JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as avro.Schema }));
  const registry: Record<string, avro.Type> = {};
  while (pending.length > 0) {
    const before = pending.length;
    const errors: string[] = [];
    for (let i = pending.length - 1; i >= 0; i--) {
      const entry = pending[i] as (typeof pending)[number];
      try {
        // Parse into a copy: a failed parse leaves half-registered names behind.
        const scratch = { ...registry };
        avro.Type.forSchema(entry.schema, { registry: scratch });
        Object.assign(registry, scratch);
        pending.splice(i, 1);
      } catch (error) {
        errors.push(`${entry.file}: ${(error as Error).message}`);
      }
    }
    if (pending.length === before) {
      throw new EarshotError('EARSHOT_SCHEMA_INVALID', `cannot parse schemas: ${errors.join('; ')}`, { fields: { dir } });
    }
  }
  const types = new Map<string, avro.Type>();
  for (const [fullName, type] of Object.entries(registry)) {
    if (fullName.startsWith(`${NAMESPACE}.`)) types.set(fullName.slice(NAMESPACE.length + 1), type);
  }
  if (dir === SCHEMAS_DIR) cached = types;
  return types;
}

export function schemaType(name: string): avro.Type {
  const type = loadSchemas().get(name);
  if (!type) throw new EarshotError('EARSHOT_SCHEMA_UNKNOWN', `no schema named ${name} in schemas/`, { fields: { name } });
  return type;
}

export const qualifiedName = (name: string): string => `${NAMESPACE}.${name}`;
