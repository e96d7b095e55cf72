import t from 'tap';
import { AvroCodec } from '../../apps/shared/src/adapters/avro-codec.js';
import type {
  AppState,
  AuditRecorded,
  CallEvent,
  DeliveryAttempted,
  SessionEvent,
  UtteranceRecognized,
} from '../../apps/shared/src/events.js';
import { loadSchemas } from '../../apps/shared/src/schemas.js';
import { TOPICS, type TopicSpec } from '../../apps/shared/src/topics.js';
import { audioChunk, startCommand, tone } from '../asr/support/call-events.js';

// One sample per event type. tsc checks them against the TypeScript types; the round trip
// below checks them against the Avro schemas, so types and schemas cannot drift apart.
const envelope = { eventId: 'e1', callSid: 'CA1', tenantId: 'app1', occurredAtMs: 1_764_000_000_000 };
const callEvents: CallEvent[] = [
  { ...envelope, ...audioChunk(0, tone(0xff)) },
  {
    ...envelope,
    type: 'StreamStarted',
    data: {
      streamSid: 'MZ1',
      accountSid: 'AC1',
      tracks: ['inbound', 'outbound'],
      customParameters: { token: 'x' },
      encoding: 'audio/x-mulaw',
      sampleRate: 8000,
      channels: 1,
      ingestNode: 'n1',
    },
  },
  {
    ...envelope,
    type: 'StreamEnded',
    data: { streamSid: 'MZ1', reason: 'closed_without_stop', detail: 'socket closed', framesReceived: 10, framesDropped: 0 },
  },
  { ...envelope, type: 'DtmfReceived', data: { streamSid: 'MZ1', track: 'inbound', digit: '5' } },
  { ...envelope, ...startCommand({ requestId: 'r1' }) },
  { ...envelope, type: 'TranscriptionStopRequested', data: { requestId: 'r2' } },
];
const utterance: UtteranceRecognized = {
  eventId: 'e2',
  utteranceId: 'CA1:inbound:1600',
  callSid: 'CA1',
  tenantId: 'app1',
  streamId: 's1',
  role: 'customer',
  senderExternalId: 'cust',
  track: 'inbound',
  startMs: 1600,
  endMs: 3100,
  text: 'my card is ################',
  unredactedText: null,
  language: 'en-US',
  tokens: [{ text: 'my', startMs: 1600, endMs: 1700 }],
  engine: 'moonshine',
  model: 'moonshine-tiny-q',
  speechEndedAtMs: 1_764_000_000_100,
  occurredAtMs: 1_764_000_000_600,
};
const sessionEvents: SessionEvent[] = [
  {
    ...envelope,
    type: 'TranscriptionSessionOpened',
    data: {
      requestId: 'r1',
      customerStreamId: 's1',
      agentStreamId: 's2',
      language: 'en-US',
      start: null,
      commandPartition: 2,
      commandOffset: 10,
      startRequestedAtMs: 1_764_000_000_000,
    },
  },
  {
    ...envelope,
    type: 'TranscriptionSessionClosed',
    data: {
      requestId: 'r2',
      reason: 'stop_requested',
      summaries: [
        { role: 'customer', streamId: 's1', totalAudioBytes: 8000, audioDurationMs: 1000, streamingSeconds: 1.5, transcripts: 2 },
      ],
      commandPartition: 2,
      commandOffset: 42,
    },
  },
];
const appBase = {
  eventId: 'e3',
  apiId: 'app1',
  occurredAtMs: 1,
  name: 'acme',
  secretHash: 'scrypt$x',
  disabled: false,
  webhookUrl: null,
  encryptedWebhookAuth: null,
  encryptedTwilioAuthToken: null,
};
const appStates: AppState[] = [
  { ...appBase, type: 'AppCreated', data: { name: 'acme', secretHash: 'scrypt$x' } },
  { ...appBase, type: 'AppSecretRotated', data: { secretHash: 'scrypt$y' } },
  { ...appBase, disabled: true, type: 'AppDisabled', data: { reason: null } },
  {
    ...appBase,
    webhookUrl: 'https://example.test/hook',
    encryptedWebhookAuth: 'v1:abc',
    type: 'AppWebhookSet',
    data: { url: 'https://example.test/hook', encryptedAuth: 'v1:abc' },
  },
  { ...appBase, encryptedTwilioAuthToken: 'v1:xyz', type: 'AppTwilioAuthTokenSet', data: { enabled: true } },
];
const delivery: DeliveryAttempted = {
  eventId: 'e4',
  utteranceId: 'CA1:inbound:1600',
  callSid: 'CA1',
  tenantId: 'app1',
  outcome: 'timeout',
  httpStatus: null,
  latencyMs: 5000,
  attempt: 1,
  error: 'timed out after 5000 ms',
  occurredAtMs: 2,
};
const auditRecord: AuditRecorded = {
  eventId: 'e5',
  appId: 'app1',
  action: 'start',
  requestId: 'r1',
  callSidHash: 'h1',
  clientAddressHash: null,
  occurredAtMs: 3,
};

const samples: [TopicSpec, unknown[]][] = [
  [TOPICS.callEvents, callEvents],
  [TOPICS.utterances, [utterance]],
  [TOPICS.sessions, sessionEvents],
  [TOPICS.apps, appStates],
  [TOPICS.deliveries, [delivery]],
  [TOPICS.audit, [auditRecord]],
];

t.test('every schema file parses and every topic has its schema', async (t) => {
  const types = loadSchemas();
  for (const spec of Object.values(TOPICS)) t.ok(types.get(spec.schema), `${spec.name} → ${spec.schema}.avsc`);
});

t.test('each event type survives an Avro round trip unchanged', async (t) => {
  for (const [topic, values] of samples) {
    const codec = new AvroCodec(topic);
    for (const value of values) {
      const label = `${topic.schema}${(value as { type?: string }).type ? `/${(value as { type: string }).type}` : ''}`;
      t.same(codec.decode(codec.encode(value)), value, label);
    }
  }
});

t.test('the samples cover every branch of every envelope union', async (t) => {
  for (const [topic, values] of samples.filter(([topic]) => topic.envelope)) {
    const schema = new AvroCodec(topic).type.schema() as { fields: { name: string; type: { name?: string }[] }[] };
    const branches = (schema.fields.find((f) => f.name === 'data')?.type ?? []).map((b) => String(b.name).replace(/^earshot\./, ''));
    t.same(values.map((v) => (v as { type: string }).type).sort(), [...branches].sort(), `${topic.schema} branches`);
  }
});

t.test('an invalid value names the bad field without echoing its content', async (t) => {
  const codec = new AvroCodec(TOPICS.utterances);
  const error = (() => {
    try {
      codec.encode({ ...utterance, startMs: 'card 4111 1111 1111 1111' } as unknown as UtteranceRecognized);
    } catch (e) {
      return e as Error;
    }
    return null;
  })();
  t.match(error?.message, /startMs=string/);
  t.notMatch(error?.message, /4111/, 'the value itself is not in the message');
});

t.test('an envelope with an unknown event type is refused', async (t) => {
  const codec = new AvroCodec(TOPICS.callEvents);
  t.throws(() => codec.encode({ ...envelope, type: 'CallTeleported', data: {} } as unknown as CallEvent), {
    code: 'EARSHOT_SCHEMA_INVALID',
  });
});
