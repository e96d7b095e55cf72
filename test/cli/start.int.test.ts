import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ALL_TOPICS } from '../../apps/shared/src/topics.js';
import { kafkaEventLog } from '../support/infra.js';
import { waitFor } from '../support/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function start(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), 'start', ...args], {
    cwd: ROOT,
    env: { ...process.env, EARSHOT_API_PORT: '0', EARSHOT_INGEST_PORT: '0', ...env },
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

t.test('npm start runs in embedded mode with no servers, keeps state in the data dir, and stops on Ctrl-C', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'earshot-start-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  // Point the server settings at closed ports: embedded mode must not need them.
  const gateway = start([], { EARSHOT_DATA_DIR: dataDir, EARSHOT_KAFKA_BROKERS: '127.0.0.1:1', EARSHOT_LOG_LEVEL: 'warn' });
  await waitFor('the banner', () => gateway.output().includes('Press Ctrl-C to stop'), 60_000);
  t.match(gateway.output(), /running in embedded mode/);
  t.match(gateway.output(), /asr +moonshine\/moonshine-tiny-en-quantized/);
  t.match(gateway.output(), /ingest +ws:\/\/127\.0\.0\.1:\d+\/twilio-media\/<token>/);
  t.match(gateway.output(), /api +http:\/\/127\.0\.0\.1:\d+/);
  const credentials = /Created your first app[^\n]*\n\s*(\{.*\})/.exec(gateway.output());
  t.ok(credentials, 'a first app is created and its credentials printed once');
  t.match(JSON.parse(credentials?.[1] ?? '{}'), { apiId: /^app_/, apiSecret: /.{43}/ });
  t.ok(existsSync(join(dataDir, 'log', 'earshot.apps.v1', 'topic.json')), 'file-backed topics created under the data dir');
  gateway.child.kill('SIGINT');
  t.equal(await gateway.exited, 0, 'clean exit');

  // A restart keeps the app: no second "first app".
  const again = start([], { EARSHOT_DATA_DIR: dataDir, EARSHOT_KAFKA_BROKERS: '127.0.0.1:1', EARSHOT_LOG_LEVEL: 'warn' });
  await waitFor('the banner again', () => again.output().includes('Press Ctrl-C to stop'), 60_000);
  t.notMatch(again.output(), /Created your first app/, 'state kept across a restart');
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
});

t.test('distributed mode creates every topic on the real Kafka broker', async (t) => {
  const gateway = start(['--mode', 'distributed', '--apps', 'api,ingest'], {
    EARSHOT_LOG_LEVEL: 'warn',
    EARSHOT_SECRETS_KEY: Buffer.alloc(32, 5).toString('base64'),
    EARSHOT_STREAM_TOKEN_KEYS: `k1:${Buffer.alloc(32, 6).toString('base64')}`,
  });
  t.teardown(() => gateway.child.kill('SIGKILL'));
  await waitFor('the banner', () => gateway.output().includes('Press Ctrl-C to stop'), 60_000);
  const log = kafkaEventLog(6);
  t.teardown(() => log.close());
  for (const topic of ALL_TOPICS) {
    const described = await log.describeTopic(topic.name);
    t.equal(described.compacted, topic.compacted, `${topic.name} compaction`);
    t.equal(described.retentionMs, topic.retentionMs, `${topic.name} retention`);
    t.ok(described.partitions > 0, `${topic.name} has partitions`);
  }
  gateway.child.kill('SIGTERM');
  t.equal(await gateway.exited, 0, 'clean exit on SIGTERM');
});

t.test('bad options and settings fail with one line and a non-zero exit', async (t) => {
  const badMode = start(['--mode', 'cluster'], {});
  t.equal(await badMode.exited, 2);
  t.match(badMode.output(), /--mode must be embedded or distributed, not 'cluster'/);
  const badSetting = start([], { EARSHOT_LOG_LEVEL: 'loud' });
  t.equal(await badSetting.exited, 1);
  t.match(badSetting.output(), /^earshot: invalid configuration: EARSHOT_LOG_LEVEL/);
  const unknownApp = start(['--apps', 'api,billing'], {});
  t.equal(await unknownApp.exited, 1);
  t.match(unknownApp.output(), /--apps: unknown app 'billing'; choose from ingest, api, asr/);
  const noKey = start(['--mode', 'distributed'], {});
  t.equal(await noKey.exited, 1);
  t.match(noKey.output(), /EARSHOT_SECRETS_KEY is required in distributed mode/);
  const unknownOption = start(['--fast'], {});
  t.equal(await unknownOption.exited, 1);
  t.match(unknownOption.output(), /Unknown option '--fast'/);
});

t.test('--help describes the command', async (t) => {
  const help = start(['--help'], {});
  t.equal(await help.exited, 0);
  t.match(help.output(), /Usage: earshot start \[--mode embedded\|distributed\]/);
});
