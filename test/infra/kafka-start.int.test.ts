import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Infra } from '../../apps/cli/src/infra.js';
import { testConfig } from '../support/infra.js';
import { freePort, waitFor } from '../support/wait.js';

/**
 * infra/kafka/start.sh formats a fresh data folder with a cluster id. One CI run on a fresh
 * machine failed because the random id began with '-' and the format command read it as an
 * option ("--cluster-id/-t: expected one argument"). Here a second broker, on its own ports and
 * folder, is formatted and started with exactly such an id.
 */
const START_SH = fileURLToPath(new URL('../../infra/kafka/start.sh', import.meta.url));

t.test("a cluster id that starts with '-' formats and the broker starts", async (t) => {
  const kafkaInstall = join(new Infra(testConfig).cacheDir, 'kafka');
  const stateDir = mkdtempSync(join(tmpdir(), 'earshot-kafka-start-'));
  const clusterId = '-AbCdEfGhIjKlMnOpQrStU';
  const [port, controllerPort] = [await freePort(), await freePort()];
  const child = spawn('bash', [START_SH, kafkaInstall, stateDir], {
    env: {
      ...process.env,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controllerPort),
      KAFKA_HEAP: '-Xmx256m -Xms256m',
      KAFKA_CLUSTER_ID: clusterId,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code;
  });
  t.teardown(async () => {
    if (exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  const serverLog = join(stateDir, 'logs', 'server.log');
  await waitFor(
    'the second broker to start',
    () => {
      if (exitCode !== null) throw new Error(`start.sh exited with ${exitCode}: ${stderr}`);
      return existsSync(serverLog) && readFileSync(serverLog, 'utf8').includes('Kafka Server started');
    },
    60_000,
  );
  const meta = readFileSync(join(stateDir, 'data', 'meta.properties'), 'utf8');
  t.match(meta, new RegExp(`^cluster\\.id=${clusterId}$`, 'm'), 'the data folder is formatted with that id');
  t.equal(exitCode, null, 'the broker is still running');
});
