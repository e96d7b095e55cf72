import t from 'tap';
import { eventLogContract } from '../contracts/event-log.js';
import { kafkaEventLog } from '../support/infra.js';

t.test('event log contract: Kafka adapter (real broker and schema registry)', async (t) => {
  eventLogContract(t, { partitions: 4, create: async () => kafkaEventLog(4) });
});
