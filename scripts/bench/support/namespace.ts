import type { KafkaEventLog } from '../../../apps/shared/src/adapters/kafka-event-log.js';
import { kafkaEventLog, testConfig } from '../../../test/support/infra.js';

/** Deletes the run's topics, schema subjects and consumer groups (best effort: the broker and registry are shared). */
export async function dropNamespace(namespace: string, progress: (line: string) => void): Promise<void> {
  // A log of its own, opened after every consumer of the run left (deleting under a running
  // consumer makes kafkajs log errors).
  const log = kafkaEventLog(1) as KafkaEventLog;
  let topics: string[] = [];
  try {
    const admin = await log.connectAdmin();
    topics = (await admin.listTopics()).filter((name) => name.startsWith(`${namespace}.`));
    if (topics.length) await admin.deleteTopics({ topics, timeout: 10_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((id) => id.startsWith(`${namespace}.`));
    if (groups.length) await admin.deleteGroups(groups);
  } catch (error) {
    progress(`could not delete everything of ${namespace}: ${(error as Error).message}`);
  }
  for (const topic of topics) {
    const subject = `${testConfig.EARSHOT_SCHEMA_REGISTRY_URL}/subjects/${encodeURIComponent(`${topic}-value`)}`;
    try {
      await fetch(subject, { method: 'DELETE' });
      await fetch(`${subject}?permanent=true`, { method: 'DELETE' });
    } catch {
      // a leftover subject is harmless
    }
  }
  await log.close().catch(() => undefined);
}
