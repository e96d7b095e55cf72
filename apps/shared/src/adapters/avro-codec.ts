import type avro from 'avsc';
import { EarshotError } from '../errors.js';
import { qualifiedName, schemaType } from '../schemas.js';
import type { TopicSpec } from '../topics.js';

/**
 * Maps a topic's domain values to and from their Avro form. Both event-log adapters use it,
 * so a record that is invalid for its schema fails the same way in embedded and Kafka mode.
 *
 * Envelope topics: domain `{ ...fields, type: 'X', data }` <-> Avro `{ ...fields, data: { 'earshot.X': data } }`
 * (avsc wraps a union of several records in a single-key object named after the branch).
 */
export class AvroCodec<T> {
  constructor(
    readonly topic: TopicSpec<T>,
    readonly type: avro.Type = schemaType(topic.schema),
  ) {}

  toAvro(value: T): unknown {
    let avroValue: unknown = value;
    if (this.topic.envelope) {
      // A plain copy, not `{ type, data, ...rest }`: the object rest made every audio record cost
      // ~3× more to check and encode (measured, issue 8); same fields, same order.
      const { type, data } = value as unknown as { type: string; data: unknown };
      const copy: Record<string, unknown> = {};
      for (const key of Object.keys(value as object))
        if (key !== 'type' && key !== 'data') copy[key] = (value as Record<string, unknown>)[key];
      copy.data = { [qualifiedName(type)]: data };
      avroValue = copy;
    }
    // The error hook (a closure per call) only runs to describe a record already found invalid.
    if (!this.type.isValid(avroValue)) {
      const invalid: string[] = [];
      this.type.isValid(avroValue, {
        errorHook: (path: string[], got: unknown) => invalid.push(`${path.join('.') || '(root)'}=${describe(got)}`),
      });
      throw new EarshotError('EARSHOT_SCHEMA_INVALID', `record does not match schema ${this.topic.schema}: ${invalid.join(', ')}`, {
        fields: { topic: this.topic.name, schema: this.topic.schema, paths: invalid },
      });
    }
    return avroValue;
  }

  fromAvro(avroValue: unknown): T {
    if (!this.topic.envelope) return avroValue as T;
    const { data, ...rest } = avroValue as { data: Record<string, unknown> };
    const branches = Object.keys(data);
    if (branches.length !== 1) {
      throw new EarshotError('EARSHOT_SCHEMA_INVALID', `envelope of ${this.topic.schema} has ${branches.length} data branches`, {
        fields: { topic: this.topic.name },
      });
    }
    const branch = branches[0] as string;
    return { ...rest, type: branch.slice(branch.lastIndexOf('.') + 1), data: data[branch] } as T;
  }

  encode(value: T): Buffer {
    return this.type.toBuffer(this.toAvro(value));
  }

  decode(buffer: Buffer): T {
    return this.fromAvro(this.type.fromBuffer(buffer));
  }
}

// Names the kind of a bad value, never the value itself: it may be transcript text or audio.
function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Buffer.isBuffer(value)) return 'bytes';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
