import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startApi } from '../../apps/api/main.js';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { startIngest } from '../../apps/ingest/main.js';
import type { UtteranceRecognized } from '../../apps/shared/src/events.js';
import type { LogRecord } from '../../apps/shared/src/ports/event-log.port.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { pooledWer } from '../../scripts/test-audio/wer.js';
import { createTestApp, testRuntime } from '../support/runtime.js';
import { byTurn, everyTurnEnded, lostAndDuplicated } from '../support/turns.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * SPEC §5: the asr consumer can crash at any moment. Here a real asr process (its own
 * `earshot start --apps asr`, on the real broker) is killed with SIGKILL in the middle of a
 * call and restarted 3 s later; the call must still yield every utterance exactly once (by
 * id), with its text, and stop-streaming must still get its summary.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

const asrOutput: string[] = [];

function startAsrProcess(env: Record<string, string>): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), 'start', '--apps', 'asr'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d;
      asrOutput.push(String(d));
      if (output.includes('Press Ctrl-C to stop')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`asr process exited (${code}) before it was ready:\n${output}`)));
  });
  return { child, ready };
}

t.test('kill -9 of the asr consumer mid-call loses no utterance and duplicates none', async (t) => {
  const corpus = generateTestAudio();
  const runtime = await testRuntime({
    kafka: true,
    env: { EARSHOT_API_PORT: '0', EARSHOT_INGEST_PORT: '0', EARSHOT_STOP_TIMEOUT_MS: '30000' },
  });
  t.teardown(() => runtime.cleanup());
  const c = runtime.config;
  const env = {
    EARSHOT_MODE: 'distributed',
    EARSHOT_LOG_LEVEL: 'warn',
    EARSHOT_SECRETS_KEY: c.EARSHOT_SECRETS_KEY as string,
    EARSHOT_STREAM_TOKEN_KEYS: c.EARSHOT_STREAM_TOKEN_KEYS as string,
    EARSHOT_KAFKA_NAMESPACE: c.EARSHOT_KAFKA_NAMESPACE as string,
    EARSHOT_KAFKA_SESSION_TIMEOUT_MS: '6000',
    EARSHOT_KAFKA_HEARTBEAT_MS: '500',
  };
  const ingest = await startIngest(runtime);
  t.teardown(() => ingest.stop());
  const api = await startApi({ ...runtime, config: { ...c, EARSHOT_INGEST_PUBLIC_URL: ingest.url } });
  t.teardown(() => api.stop());
  const tenant = await createTestApp(runtime, 'crash tenant');
  const seen: LogRecord<UtteranceRecognized>[] = [];
  const reader = runtime.eventLog.createConsumer({ groupId: 'crash-reader', topics: [TOPICS.utterances] });
  await reader.run(async (batch) => {
    seen.push(...(batch.records as LogRecord<UtteranceRecognized>[]));
  });
  t.teardown(() => reader.stop());

  let asr = startAsrProcess(env);
  await asr.ready;
  const children: ChildProcess[] = [asr.child];
  t.teardown(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  const { customer, agent } = corpus.call.tracks;
  const callSid = newCallSid();
  const call = simulateCall({
    apiUrl: api.url,
    ...tenant,
    callSid,
    inbound: new Uint8Array((await import('node:fs')).readFileSync(customer.mulaw)),
    outbound: new Uint8Array((await import('node:fs')).readFileSync(agent.mulaw)),
    speed: 2,
  });
  // ~14 s of media in: the customer's first turn (6.9-11.5 s) is done, the agent is mid-sentence (12.0-15.9 s).
  await sleep(7000);
  const before = seen.length;
  asr.child.kill('SIGKILL');
  await sleep(3000);
  asr = startAsrProcess(env);
  children.push(asr.child);
  await asr.ready;
  const result = await call;
  t.equal((result.stop as { status: number } | null)?.status, 200, 'stop-streaming answered by the restarted consumer');

  // Every turn to its end: a turn of two sentences may be one utterance or two, and the
  // restarted consumer resumes (in a pause after what was already published) with a cold VAD,
  // so a pause right at the endpoint may end an utterance in one run and not in another. Not
  // stop-streaming's summary either: it counts only what the restarted consumer emitted itself.
  const distinct = () => [...new Map(seen.filter((r) => r.key === callSid).map((r) => [r.value.utteranceId, r.value])).values()];
  const ofRole = (role: 'customer' | 'agent') => distinct().filter((u) => u.role === role);
  await waitFor(
    'every turn of both tracks',
    () => everyTurnEnded(ofRole('customer'), customer.utterances) && everyTurnEnded(ofRole('agent'), agent.utterances),
    60_000,
  ).catch((error) => {
    // What was seen, and what the asr processes said, for the one who has to find out why.
    const debug = JSON.stringify(
      { seen: seen.filter((r) => r.key === callSid).map((r) => [r.value.utteranceId, r.value.text]), asr: asrOutput.join('') },
      null,
      1,
    );
    writeFileSync(join(tmpdir(), `earshot-crash-${callSid}.json`), debug);
    t.comment(debug);
    throw error;
  });
  await sleep(1000);
  const mine = seen.filter((r) => r.key === callSid).map((r) => r.value);
  const byId = new Map(mine.map((u) => [u.utteranceId, u]));
  t.comment(`${before} utterances before the kill; ${mine.length} records, ${byId.size} distinct ids after`);
  t.ok(byId.size >= customer.utterances.length + agent.utterances.length, 'at least one utterance per turn');
  for (const [role, track] of [
    ['customer', customer],
    ['agent', agent],
  ] as const) {
    const got = [...byId.values()].filter((u) => u.role === role).sort((a, b) => a.startMs - b.startMs);
    // A replay that moved an utterance's start would give it a second id: it would overlap here.
    t.same(lostAndDuplicated(got, track.utterances), { lost: 0, duplicated: 0 }, `${role}: every turn, nothing twice`);
    const { turns } = byTurn(got, track.utterances);
    const wer = pooledWer(turns.map((r) => [r.turn.text, r.text] as const));
    t.ok(wer.wer < 0.25, `${role}: WER ${(wer.wer * 100).toFixed(1)} % after the crash`);
  }
  for (const u of mine) {
    const same = byId.get(u.utteranceId);
    t.equal(u.text, same?.text, `${u.utteranceId.split(':').slice(-2).join(':')}: one text per id`);
  }
});
