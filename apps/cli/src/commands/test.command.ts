import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../../shared/src/config.js';
import { parseOptions } from '../args.js';
import { Infra, type ServerName } from '../infra.js';

const USAGE = `Usage: earshot test [--keep-infra] [--skip-checks] [test files...]

What 'npm test' runs: the linter and formatter check (Biome), the type check (tsc), then
installs the REST fuzzer (schemathesis, into ~/.cache/earshot/venv, once), runs
'earshot infra up' (reusing running servers) and every test under test/ with tap, ending
with the line 'N passed, N failed'. Servers this run started are stopped afterwards unless
--keep-infra is given.`;

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const bin = (name: string): string => `${ROOT}node_modules/.bin/${name}`;

export async function testCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(argv, { 'keep-infra': { type: 'boolean' }, 'skip-checks': { type: 'boolean' } }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values['skip-checks']) {
    for (const [label, command, args] of [
      ['lint', bin('biome'), ['check', '.']],
      ['typecheck', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']],
    ] as const) {
      console.log(`== ${label}`);
      const result = spawnSync(command, [...args], { cwd: ROOT, stdio: 'inherit' });
      if (result.status !== 0) {
        console.log(`\n0 passed, 1 failed\n(${label} failed)`);
        return 1;
      }
    }
  }

  // Test prerequisites that are not npm packages: the REST fuzzer (schemathesis, PyPI) for
  // test/fuzz/, installed once into ~/.cache/earshot/venv, so a fresh machine needs no manual step.
  console.log('== prerequisites');
  const fuzzer = spawnSync('bash', [`${ROOT}scripts/fuzz/install-schemathesis.sh`], { cwd: ROOT, encoding: 'utf8' });
  if (fuzzer.status !== 0) {
    process.stdout.write(fuzzer.stderr ?? '');
    console.log('\n0 passed, 1 failed\n(installing schemathesis failed: scripts/fuzz/install-schemathesis.sh)');
    return 1;
  }
  console.log(`schemathesis: ${fuzzer.stdout.trim().split('\n').at(-1)}`);

  console.log('== infra');
  const infra = new Infra(loadConfig());
  const started = Date.now();
  const servers = await infra.up((line) => console.log(`infra: ${line}`));
  for (const s of servers)
    console.log(
      `${s.name.padEnd(10)} ${s.endpoint.padEnd(45)} ${s.action === 'started' ? `started in ${s.seconds.toFixed(1)} s` : 'reused'}`,
    );
  console.log(`infra ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const ours = servers.filter((s) => s.action === 'started').map((s) => s.name as ServerName);

  console.log('== tests');
  const files = positionals.length > 0 ? positionals : ['test/**/*.test.ts'];
  const tap = spawnSync(bin('tap'), ['--reporter=./test/support/reporter.mjs', '--jobs=2', '--timeout=300', ...files], {
    cwd: ROOT,
    stdio: 'inherit',
    // One model worker per asr the tests start (the product default is 2): two test files run
    // at once on this 2-core machine, and a second model costs ~2 s of CPU at each of the
    // suite's many asr starts. The two-worker pool has its own test (engine.int.test.ts).
    env: { ...process.env, EARSHOT_ASR_WORKERS: process.env.EARSHOT_ASR_WORKERS ?? '1' },
  });
  if (!values['keep-infra'] && ours.length > 0) await infra.down((line) => console.log(`infra: ${line}`), ours);
  return tap.status ?? 1;
}
