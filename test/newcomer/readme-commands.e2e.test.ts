import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

/**
 * Issue 7: a newcomer clones the repository, reads the README and runs its two commands. This
 * test does that in a clean copy of the working tree (a temporary folder, a fresh
 * `npm install`, no ./data), then plays the README's demo call into the running gateway and
 * stops it with Ctrl-C (SIGINT to the process group, as a terminal does). A second
 * `npm start` must find the state it left (apps and transcripts under ./data).
 *
 * Ports are the one deviation from the README: EARSHOT_API_PORT/EARSHOT_INGEST_PORT=0, so the
 * test never collides with a gateway a developer runs on 8080/8081.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

t.test("the README's commands work in a clean copy: npm install && npm start, then the demo call", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.match(readme, /npm install && npm start/, 'the README gives the two commands this test runs');
  t.match(readme, /npm run demo -- --api http:\/\/127\.0\.0\.1:8080 --credentials creds\.json/, 'and the demo against a running gateway');

  // A clean copy: what git would check out (tracked and new files, nothing ignored: no
  // node_modules, no data, no .earshot).
  const copy = mkdtempSync(join(tmpdir(), 'earshot-newcomer-'));
  t.teardown(() => rmSync(copy, { recursive: true, force: true }));
  const { stdout: listing } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    maxBuffer: 16 << 20,
  });
  for (const file of listing.split('\0').filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted in the working tree
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(copy, file));
  }
  t.notOk(existsSync(join(copy, 'node_modules')), 'no node_modules in the copy');

  // `npm install` (from the npm cache when warm; the models come from ~/.cache/earshot).
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: copy,
    timeout: 600_000,
    maxBuffer: 16 << 20,
  });
  t.ok(existsSync(join(copy, 'node_modules/.bin/tsx')), `npm install done (${install.stdout.trim().split('\n').at(-1)})`);

  const env = { ...withoutEarshotSettings(process.env), EARSHOT_API_PORT: '0', EARSHOT_INGEST_PORT: '0' };
  const first = await npmStart(copy, env);
  t.teardown(() => first.interrupt());
  t.match(first.output(), /embedded mode/, 'npm start runs the embedded mode');
  const credentials = /Created your first app[^\n]*\n\s*(\{[^\n]+\})/.exec(first.output())?.[1];
  t.ok(credentials, 'the first run prints the first app credentials');
  const apiUrl = /^\s+api\s+(\S+)/m.exec(first.output())?.[1] ?? '';
  t.match(apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'and the API URL');
  t.match(first.output(), /\/live/, 'and the live page');
  writeFileSync(join(copy, 'creds.json'), credentials ?? '{}');

  // The README's demo call into the running gateway (faster than real time).
  const demo = await run(
    'npm',
    ['run', '--silent', 'demo', '--', '--api', apiUrl, '--credentials', 'creds.json', '--speed', '4', '--json'],
    {
      cwd: copy,
      env,
      timeout: 300_000,
      maxBuffer: 16 << 20,
    },
  );
  const lines = demo.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const transcript = lines.find((l) => l.type === 'transcript') as { source: string; items: { text: string }[] } | undefined;
  // Ten scripted turns; a turn of two sentences may come as two utterances (the pause between them).
  const live = lines.filter((l) => l.type === 'utterance').length;
  t.ok(live >= 10 && live <= 14, `the demo showed the sample call's ten turns live (${live} utterances)`);
  t.equal(transcript?.source, 'messages-api', 'then the after-call transcript from the messages API');
  t.equal(transcript?.items.length, live, 'with every utterance shown live');
  t.match(transcript?.items.map((m) => m.text).join(' ') ?? '', /bank.*charge/is, 'with the words of the sample call');

  await first.interrupt(); // npm itself ends by the signal; the gateway says how it ended
  t.match(first.output(), /Earshot stopped: in-flight utterances finished/, 'Ctrl-C stops the gateway cleanly');

  // A restart keeps the state: the app exists, so no new credentials are printed.
  const second = await npmStart(copy, env);
  t.teardown(() => second.interrupt());
  t.notMatch(second.output(), /Created your first app/, 'a restart keeps the app in ./data');
  await second.interrupt();
  t.match(second.output(), /Earshot stopped/, 'and stops cleanly again');
  t.ok(existsSync(join(copy, 'data')), 'state lives in ./data of the copy');
});

/** The developer's own EARSHOT_* settings must not leak into the newcomer's run. */
function withoutEarshotSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('EARSHOT_')));
}

async function npmStart(cwd: string, env: NodeJS.ProcessEnv): Promise<{ output(): string; interrupt(): Promise<number | null> }> {
  // Its own process group, so SIGINT reaches npm and the gateway together, as Ctrl-C in a terminal.
  const child: ChildProcess = spawn('npm', ['start'], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => {
    if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start not ready after 180 s:\n${output}`)), 180_000);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('Press Ctrl-C to stop')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`npm start exited (${code}):\n${output}`)));
  });
  let interrupted: Promise<number | null> | null = null;
  return {
    output: () => output,
    interrupt: () => {
      if (!interrupted) {
        if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid as number), 'SIGINT');
        interrupted = exited;
      }
      return interrupted;
    },
  };
}
