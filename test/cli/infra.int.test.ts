import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/** Runs `earshot <args>`; resolves with exit code and output instead of throwing. */
async function earshot(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'bin/earshot.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

t.test('up reuses the servers that already run and reports them ready', async (t) => {
  const { code, stdout } = await earshot(['infra', 'up', '--json']);
  t.equal(code, 0);
  const results = JSON.parse(stdout) as { name: string; action: string; state: string }[];
  t.same(
    results.map((r) => [r.name, r.action]),
    [
      ['kafka', 'reused'],
      ['registry', 'reused'],
      ['clickhouse', 'reused'],
    ],
  );
  const status = JSON.parse((await earshot(['infra', 'status', '--json'])).stdout) as { state: string }[];
  t.ok(
    status.every((s) => s.state.startsWith('running')),
    'status says all run',
  );
});

t.test('up starts a stopped server, a second up reuses it, and down stops it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-infra-'));
  const env = { EARSHOT_INFRA_DIR: dir, EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT: '28123', EARSHOT_INFRA_CLICKHOUSE_TCP_PORT: '29000' };
  t.teardown(async () => {
    await earshot(['infra', 'down', 'clickhouse'], env);
    rmSync(dir, { recursive: true, force: true });
  });
  const first = await earshot(['infra', 'up', 'clickhouse', '--json'], env);
  t.equal(first.code, 0, first.stderr);
  const [started] = JSON.parse(first.stdout) as { action: string; pid: number }[];
  t.equal(started?.action, 'started');
  t.equal(Number(readFileSync(join(dir, 'clickhouse', 'server.pid'), 'utf8')), started?.pid, 'pid file written');
  t.equal(await (await fetch('http://127.0.0.1:28123/ping')).text(), 'Ok.\n');

  const second = JSON.parse((await earshot(['infra', 'up', 'clickhouse', '--json'], env)).stdout) as { action: string }[];
  t.equal(second[0]?.action, 'reused', 'idempotent');

  t.equal((await earshot(['infra', 'down', 'clickhouse'], env)).code, 0);
  await t.rejects(fetch('http://127.0.0.1:28123/ping'), 'the server is gone');
  t.throws(() => process.kill(started?.pid ?? -1, 0), 'its process has exited');
});

t.test('down leaves alone a server it did not start', async (t) => {
  // The suite's own servers were started by `npm test` under another EARSHOT_INFRA_DIR.
  const dir = mkdtempSync(join(tmpdir(), 'earshot-infra-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const up = JSON.parse((await earshot(['infra', 'up', 'clickhouse', '--json'], { EARSHOT_INFRA_DIR: dir })).stdout) as { state: string }[];
  t.equal(up[0]?.state, 'running-external', 'recognised as running but not ours');
  t.equal((await earshot(['infra', 'down', 'clickhouse'], { EARSHOT_INFRA_DIR: dir })).code, 0);
  t.equal(await (await fetch('http://127.0.0.1:18123/ping')).text(), 'Ok.\n', 'still running');
});

t.test('a port held by another program fails with a clear message', async (t) => {
  const squatter = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const port = String((squatter.address() as AddressInfo).port);
  const dir = mkdtempSync(join(tmpdir(), 'earshot-infra-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = await earshot(['infra', 'up', 'clickhouse'], { EARSHOT_INFRA_DIR: dir, EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT: port });
  t.equal(result.code, 1, `exit code (stdout: ${result.stdout}; stderr: ${result.stderr}; port ${port})`);
  t.match(result.stderr, new RegExp(`^earshot: clickhouse: port ${port} is taken by another program`));
});

t.test('a missing prerequisite fails saying what to install', async (t) => {
  // A PATH with every usual command except java and maven.
  const bin = mkdtempSync(join(tmpdir(), 'earshot-nojava-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  mkdirSync(bin, { recursive: true });
  for (const dir of ['/usr/bin', '/bin']) {
    for (const file of readdirSync(dir)) {
      if (['java', 'mvn', 'javac'].includes(file)) continue;
      try {
        symlinkSync(join(dir, file), join(bin, basename(file)));
      } catch {
        // already linked from the other folder
      }
    }
  }
  const cache = mkdtempSync(join(tmpdir(), 'earshot-cache-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const result = await earshot(['infra', 'up', 'kafka'], {
    PATH: bin,
    EARSHOT_INFRA_CACHE_DIR: cache,
    EARSHOT_INFRA_DIR: cache,
    EARSHOT_INFRA_KAFKA_PORT: '29092',
  });
  t.equal(result.code, 1);
  t.match(result.stderr, /kafka: install failed:[\s\S]*java not found; install OpenJDK 17: apt-get install/);
});

t.test('an unknown server or action is a usage error', async (t) => {
  const unknown = await earshot(['infra', 'up', 'postgres']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /unknown server 'postgres': choose from kafka, registry, clickhouse/);
  const action = await earshot(['infra', 'restart']);
  t.match(action.stderr, /infra needs up, down or status, not 'restart'/);
});
