import t from 'tap';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { eventLogContract } from '../contracts/event-log.js';
import { kafkaEventLog } from '../support/infra.js';

t.test('event log contract: Kafka adapter (real broker and schema registry)', async (t) => {
  eventLogContract(t, { partitions: 4, create: async () => kafkaEventLog(4) });
});

t.test('with the broker unreachable, produce fails as EARSHOT_EVENT_LOG_UNAVAILABLE, retriable (so callers retry, not drop)', async (t) => {
  const namespace = `test-down-${Math.random().toString(36).slice(2, 10)}`;
  const live = kafkaEventLog(1, namespace);
  t.teardown(() => live.close());
  await live.ensureTopics([TOPICS.audit]); // schemas registered: encoding works, only the broker is away
  const down = kafkaEventLog(1, namespace, { brokers: '127.0.0.1:9' });
  t.teardown(() => down.close().catch(() => undefined));
  const record = {
    eventId: 'e1',
    appId: 'app_1',
    action: 'stream_url.issued',
    requestId: 'r1',
    callSidHash: null,
    clientAddressHash: null,
    occurredAtMs: Date.now(),
  };
  const error = await down.produce(TOPICS.audit, [{ key: 'app_1', value: record }]).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(error, { code: 'EARSHOT_EVENT_LOG_UNAVAILABLE', retriable: true }, 'a connect failure is reported like a send failure');
});
