import { randomUUID } from 'node:crypto';
import t from 'tap';
import { AUDIT_HASH_KEY_LABEL, auditHash } from '../../apps/shared/src/audit/audit-trail.js';
import type { AuditRecorded, CallEvent } from '../../apps/shared/src/events.js';
import type { LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { waitFor } from '../support/wait.js';
import { newCallSid, startBody, startTestApi } from './support/api-harness.js';

/** On the real broker and schema registry of `earshot infra`: what the API publishes is what asr will read. */
t.test(
  'start then stop publish TranscriptionStartRequested and TranscriptionStopRequested, keyed by Call SID, in order in one partition',
  async (t) => {
    const api = await startTestApi(t, { kafka: true });
    const callSid = newCallSid();
    const start = await api.call<{ autotranscribeResponse: Record<'customer' | 'agent', { streamId: string }> }>(
      'POST',
      '/mg-autotranscribe/v1/start-streaming',
      {
        json: startBody(callSid, { autotranscribeParams: { audioRecordingAllowed: true } }),
        headers: { 'x-request-id': `int-start-${callSid}` },
      },
    );
    t.equal(start.status, 200);
    const stop = await api.call('POST', '/mg-autotranscribe/v1/stop-streaming', {
      json: { namespace: 'twilio', guid: callSid },
      headers: { 'x-request-id': `int-stop-${callSid}` },
    });
    t.equal(stop.status, 200);
    t.equal((await api.call('POST', '/mg-autotranscribe/v1/stop-streaming', { json: { namespace: 'twilio', guid: callSid } })).status, 409);

    const found: LogRecord<CallEvent>[] = [];
    const audits: AuditRecorded[] = [];
    const consumer = api.runtime.eventLog.createConsumer({
      groupId: `earshot-test-api-${randomUUID()}`,
      topics: [TOPICS.callEvents, TOPICS.audit],
      fromBeginning: true,
    });
    t.teardown(() => consumer.stop());
    await consumer.run(async (batch) => {
      for (const record of batch.records) {
        if (batch.topic === TOPICS.callEvents.name && record.key === callSid) found.push(record as LogRecord<CallEvent>);
        if (batch.topic === TOPICS.audit.name && record.key === api.tenant.apiId) audits.push(record.value as AuditRecorded);
      }
    });
    await waitFor('both commands and their audit records on Kafka', () => found.length >= 2 && audits.length >= 2, 60_000);

    t.equal(found.length, 2, 'exactly two records for the call');
    const [started, stopped] = found.sort((a, b) => a.offset - b.offset);
    t.equal(started?.partition, stopped?.partition, 'one partition: the Call SID is the key');
    t.ok((started?.offset ?? 0) < (stopped?.offset ?? 0), 'stop after start');
    t.match(started?.value, {
      callSid,
      tenantId: api.tenant.apiId,
      type: 'TranscriptionStartRequested',
      data: {
        requestId: `int-start-${callSid}`,
        customerId: 'customer-42',
        agentId: 'agent-7',
        language: 'en-US',
        detailedToken: false,
        audioRecordingAllowed: true,
        redactionOutput: 'redacted',
        inboundRole: 'customer',
        outboundRole: 'agent',
        customerStreamId: start.body.autotranscribeResponse.customer.streamId,
        agentStreamId: start.body.autotranscribeResponse.agent.streamId,
      },
    });
    t.match(stopped?.value, {
      callSid,
      tenantId: api.tenant.apiId,
      type: 'TranscriptionStopRequested',
      data: { requestId: `int-stop-${callSid}` },
    });

    const callSidHash = auditHash(api.runtime.credentials.derive(AUDIT_HASH_KEY_LABEL), callSid);
    t.match(
      audits.filter((a) => a.callSidHash === callSidHash).map((a) => a.action),
      ['transcription.start', 'transcription.stop'],
      'audited on Kafka with the hashed Call SID',
    );
  },
);
