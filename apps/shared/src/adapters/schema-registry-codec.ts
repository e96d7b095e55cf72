import registryPackage from '@kafkajs/confluent-schema-registry';
import type avro from 'avsc';
import { EarshotError } from '../errors.js';
import { schemaType } from '../schemas.js';
import type { TopicSpec } from '../topics.js';
import { AvroCodec } from './avro-codec.js';

const { SchemaRegistry, SchemaType, COMPATIBILITY } = registryPackage;

/**
 * Confluent wire format over our Avro codec: byte 0 = magic 0, bytes 1-4 = schema id
 * (big-endian), then the Avro binary body. Each topic's schema is registered under the
 * subject `<topic>-value` (TopicNameStrategy) with BACKWARD compatibility, so a change that
 * would break existing readers is refused by the registry at start-up, not found in production.
 */
export class SchemaRegistryCodec {
  private readonly registry: InstanceType<typeof SchemaRegistry>;
  private readonly ids = new Map<string, number>();
  private readonly codecs = new Map<string, AvroCodec<unknown>>();
  private readonly readers = new Map<string, (body: Buffer) => unknown>();

  /** `loadType` says where Avro types come from: `schemas/` unless a caller has its own set. */
  /** `subjectPrefix`: the event log's namespace, so subjects follow the topics' names on the cluster. */
  constructor(
    url: string,
    private readonly loadType: (name: string) => avro.Type = schemaType,
    private readonly subjectPrefix = '',
  ) {
    this.registry = new SchemaRegistry({ host: url, retry: { retries: 2, initialRetryTimeInSecs: 0.1 } });
  }

  /** Registers (or finds) the topic's current schema; throws EARSHOT_SCHEMA_INCOMPATIBLE when refused. */
  async register(topic: TopicSpec): Promise<number> {
    const codec = this.codec(topic);
    const subject = `${this.subjectPrefix}${topic.name}-value`;
    try {
      const { id } = await this.registry.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(codec.type.schema({ exportAttrs: true })) },
        { subject, compatibility: COMPATIBILITY.BACKWARD },
      );
      this.ids.set(topic.name, id);
      return id;
    } catch (error) {
      const status = (error as { status?: number }).status;
      const message = (error as Error).message;
      if (status === 409 || /incompatible|compatib/i.test(message)) {
        throw new EarshotError(
          'EARSHOT_SCHEMA_INCOMPATIBLE',
          `schema ${topic.schema} is not backward compatible with ${subject}: ${message}`,
          {
            fields: { subject, schema: topic.schema },
            cause: error,
          },
        );
      }
      throw new EarshotError('EARSHOT_EVENT_LOG_UNAVAILABLE', `schema registry refused ${subject}: ${message}`, {
        retriable: true,
        fields: { subject },
        cause: error,
      });
    }
  }

  async encode<T>(topic: TopicSpec<T>, value: T): Promise<Buffer> {
    const codec = this.codec(topic) as AvroCodec<T>;
    const id = this.ids.get(topic.name) ?? (await this.register(topic));
    const body = codec.type.toBuffer(codec.toAvro(value));
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = 0;
    out.writeUInt32BE(id, 1);
    body.copy(out, 5);
    return out;
  }

  /**
   * `encode` for many values at once: all of them framed into one buffer, returned as views
   * into it. One allocation per call instead of two plus a copy per record (the ingest
   * produces hundreds of audio records per call; profiled, issue 8). Any invalid value throws
   * before anything is returned.
   */
  async encodeAll<T>(topic: TopicSpec<T>, values: readonly T[]): Promise<Buffer[]> {
    const codec = this.codec(topic) as AvroCodec<T>;
    const id = this.ids.get(topic.name) ?? (await this.register(topic));
    let slab = Buffer.allocUnsafe(Math.max(4096, values.length * 1024));
    const bounds: number[] = [];
    let pos = 0;
    for (const value of values) {
      const avroValue = codec.toAvro(value);
      let end = pos + 5 <= slab.length ? codec.type.encode(avroValue, slab, pos + 5) : -1;
      while (end < 0) {
        // avsc answers a negative count when the buffer is too small: grow and retry.
        const bigger = Buffer.allocUnsafe(slab.length * 2 + (end < -1 ? -end : 0) + 5);
        slab.copy(bigger, 0, 0, pos);
        slab = bigger;
        end = codec.type.encode(avroValue, slab, pos + 5);
      }
      slab[pos] = 0;
      slab.writeUInt32BE(id, pos + 1);
      bounds.push(pos, end);
      pos = end;
    }
    const out: Buffer[] = new Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = slab.subarray(bounds[2 * i], bounds[2 * i + 1]);
    return out;
  }

  /**
   * Decodes with the writer's schema from the registry, resolved to our current (reader)
   * schema. The resolver is built once per (topic, writer id): the registry client's own
   * `decode` re-parses the reader schema for every record, too slow for audio.
   */
  async decode<T>(topic: TopicSpec<T>, buffer: Buffer): Promise<T> {
    const codec = this.codec(topic) as AvroCodec<T>;
    if (buffer.length < 5 || buffer[0] !== 0) {
      throw new EarshotError('EARSHOT_SCHEMA_INVALID', `record on ${topic.name} is not in the Confluent wire format`, {
        fields: { topic: topic.name },
      });
    }
    const id = buffer.readUInt32BE(1);
    const key = `${topic.name}:${id}`;
    let read = this.readers.get(key);
    if (!read) {
      const writer = (await this.registry.getSchema(id)) as unknown as avro.Type;
      const resolver = codec.type.equals(writer) ? undefined : codec.type.createResolver(writer);
      read = (body: Buffer) => codec.type.fromBuffer(body, resolver);
      this.readers.set(key, read);
    }
    return codec.fromAvro(read(buffer.subarray(5)));
  }

  codec<T>(topic: TopicSpec<T>): AvroCodec<T> {
    let codec = this.codecs.get(topic.name);
    if (!codec) {
      codec = new AvroCodec(topic as TopicSpec<unknown>, this.loadType(topic.schema));
      this.codecs.set(topic.name, codec);
    }
    return codec as AvroCodec<T>;
  }
}
