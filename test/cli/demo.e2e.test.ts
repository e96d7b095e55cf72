import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { generateTestAudio } from '../../scripts/test-audio/corpus.js';
import { pooledWer } from '../../scripts/test-audio/wer.js';
import { byTurn } from '../support/turns.js';
import { waitFor } from '../support/wait.js';

/**
 * `earshot demo` as a newcomer runs it: the sample call played through a real gateway with the
 * real model, utterances shown live, then the after-call transcript from the messages API.
 * Once with the gateway it starts in its own process (npm run demo), once against a gateway
 * started with `earshot start` in another process (--api, --credentials). Sped up 4x.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

interface Run {
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

function earshot(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), ...args], {
    cwd: ROOT,
    // A busy CI machine may run the model slower than the 4x playback: give stop-streaming time to finish.
    env: { ...process.env, EARSHOT_LOG_LEVEL: 'warn', EARSHOT_STOP_TIMEOUT_MS: '120000', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

const corpus = generateTestAudio();
const said = {
  customer: corpus.call.tracks.customer.utterances.map((u) => u.text),
  agent: corpus.call.tracks.agent.utterances.map((u) => u.text),
};

t.test('earshot demo --json: its own embedded gateway, live utterances, then the messages API transcript', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-demo-test-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const demo = earshot(['demo', '--speed', '4', '--json'], { EARSHOT_DATA_DIR: dataDir });
  t.teardown(() => demo.child.kill('SIGKILL'));
  const code = await demo.exited;
  t.equal(code, 0, `exit 0:\n${demo.output()}`);
  const lines = demo
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const utterances = lines.filter((l) => l.type === 'utterance') as {
    role: 'customer' | 'agent';
    text: string;
    latencyMs: number;
    startMs: number;
    endMs: number;
  }[];
  const transcript = lines.find((l) => l.type === 'transcript') as
    | { source: string; items: { text: string; sender: { role: string } }[] }
    | undefined;
  for (const role of ['customer', 'agent'] as const) {
    const { turns, stray, overlapping } = byTurn(
      utterances.filter((u) => u.role === role),
      corpus.call.tracks[role].utterances,
    );
    t.ok(
      turns.every((r) => r.parts.length > 0),
      `${role}: every turn arrived live`,
    );
    t.same([stray, overlapping], [[], []], `${role}: nothing outside the turns, nothing twice`);
    const wer = pooledWer(turns.map((r) => [r.turn.text, r.text] as const));
    t.ok(wer.wer < 0.25, `${role}: WER ${(wer.wer * 100).toFixed(1)} %`);
  }
  t.ok(
    utterances.every((u) => Number.isInteger(u.latencyMs) && u.latencyMs >= 0),
    'each utterance has its latency',
  );
  t.equal(transcript?.source, 'messages-api', 'the transcript comes from GET /conversation/v1/conversation/messages');
  t.equal(transcript?.items.length, utterances.length, 'every utterance is in the after-call transcript');
  t.same(new Set(transcript?.items.map((m) => m.text)), new Set(utterances.map((u) => u.text)), 'the same texts');
  t.same(
    transcript?.items.map((m) => m.sender.role),
    [...utterances].sort((a, b) => a.startMs - b.startMs).map((u) => u.role),
    'in the order of the call',
  );
});

t.test('earshot demo --api: against a gateway started with earshot start, human-readable output', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-demo-gw-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const gateway = earshot(['start'], { EARSHOT_DATA_DIR: dataDir, EARSHOT_API_PORT: '0', EARSHOT_INGEST_PORT: '0' });
  t.teardown(() => gateway.child.kill('SIGKILL'));
  await waitFor('the gateway banner', () => gateway.output().includes('Press Ctrl-C to stop'), 120_000);
  const apiUrl = /^\s+api\s+(\S+)/m.exec(gateway.output())?.[1];
  const credentials = /Created your first app[^\n]*\n\s*(\{.*\})/.exec(gateway.output())?.[1];
  if (!apiUrl || !credentials) throw new Error(`no API URL or credentials in:\n${gateway.output()}`);
  const file = join(dataDir, 'creds.json');
  writeFileSync(file, credentials);

  const wrong = earshot(['demo', '--api', apiUrl, '--credentials', join(dataDir, 'missing.json')], {});
  t.equal(await wrong.exited, 1, 'a missing credentials file fails');
  t.match(wrong.output(), /earshot: --credentials .*missing\.json: ENOENT/);

  const demo = earshot(['demo', '--api', apiUrl, '--credentials', file, '--speed', '4'], {});
  t.teardown(() => demo.child.kill('SIGKILL'));
  t.equal(await demo.exited, 0, `exit 0:\n${demo.output()}`);
  const out = demo.output();
  const live = [...out.matchAll(/^ +\d+:\d\d\.\d {2}(customer|agent) +(.+) {2}\((\d+) ms\)$/gm)];
  const count = Number(/^(\d+) utterances; latency from end of speech/m.exec(out)?.[1]);
  t.ok(count >= said.customer.length + said.agent.length, `${count} utterances for the ${said.customer.length + said.agent.length} turns`);
  t.equal(live.length, count, 'one live line per utterance with role and latency');
  t.match(out, /After-call transcript \(GET \/conversation\/v1\/conversation\/messages\?externalId=CA[0-9a-f]{32}\):/);
  const after = out.slice(out.indexOf('After-call transcript'));
  const rows = [...after.matchAll(/^ {2}\d\d:\d\d:\d\d {2}(customer|agent) +(.+)$/gm)];
  t.equal(rows.length, live.length, 'the transcript has every utterance');
  gateway.child.kill('SIGINT');
  t.equal(await gateway.exited, 0, 'the gateway stops cleanly');
});
