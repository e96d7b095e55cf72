import t from 'tap';
import { startTopology } from '../support/topology.js';
import { sleep } from '../support/wait.js';
import { asrOwnerOf, assertWer, runScenario } from './support/scenario.js';

/**
 * Issue 9, scenarios 1 and 2: kill -9 of each gateway process in the middle of a live call.
 * One topology (ingest, api, two asr consumers in one group, webhooks, store); one call per
 * scenario, each checked against an undisturbed baseline call: every utterance stored exactly
 * once, none lost, WER within a point, the webhook got every utterance.
 *
 * Media timing of the corpus call (speed 2): 6.5 s of wall time is 13 s of media, when the
 * agent is mid-sentence (12.0-15.9 s) — the fault hits an utterance in progress.
 */
const MID_UTTERANCE_MS = 6500;
const ASR_ENV = { EARSHOT_LOG_LEVEL: 'info' }; // asr.partitions_assigned says which node owns a call

t.test('process crashes mid-call lose and duplicate nothing', async (t) => {
  const topology = await startTopology(t, { apps: ['ingest', 'webhooks', 'store'] });
  await Promise.all([topology.start('asr', ASR_ENV), topology.start('asr', ASR_ENV)]);
  await topology.start('api');

  const baseline = await runScenario(t, topology, 'undisturbed baseline', null);

  const takeover = await runScenario(t, topology, 'asr kill -9, second consumer takes over', async ({ callSid, markFault }) => {
    await sleep(MID_UTTERANCE_MS);
    const owner = asrOwnerOf(topology, callSid);
    markFault();
    await topology.kill('asr', owner);
  });
  assertWer(t, takeover, baseline);

  const restarted = await runScenario(t, topology, 'asr kill -9 (only one), restarted after 5 s', async ({ markFault }) => {
    await sleep(MID_UTTERANCE_MS);
    markFault();
    await topology.kill('asr');
    await sleep(5000);
    await topology.start('asr', ASR_ENV);
  });
  assertWer(t, restarted, baseline);

  for (const app of ['store', 'webhooks'] as const) {
    const outcome = await runScenario(t, topology, `${app} kill -9, restarted after 2 s`, async ({ markFault }) => {
      await sleep(MID_UTTERANCE_MS);
      markFault();
      await topology.kill(app);
      await sleep(2000);
      await topology.start(app);
    });
    assertWer(t, outcome, baseline);
    t.equal(outcome.delivered, outcome.expected, `${app} crash: the webhook got every utterance (at least once)`);
  }

  // The API node dies between start- and stop-streaming; its replacement (same address, as
  // behind a load balancer) rebuilds call state from the log and answers the stop.
  const api = await runScenario(t, topology, 'api kill -9 mid-call, restarted', async ({ markFault }) => {
    await sleep(3000);
    markFault();
    await topology.kill('api');
    await topology.start('api');
  });
  assertWer(t, api, baseline);
});
