import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

/**
 * One gateway app (or several) in a process of its own, started the way an operator would:
 * `earshot start --mode distributed --apps <list>`. Used by the distributed-topology and
 * fault tests, which kill and restart these processes.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

export interface AppProcess {
  readonly child: ChildProcess;
  readonly apps: string;
  /** Everything the process printed (stdout and stderr), for failure messages. */
  output(): string;
  /** The URL printed for `api`, `ingest` or `ops` once ready (`ingest` without its `/twilio-media/<token>` suffix). */
  url(app: 'api' | 'ingest' | 'ops'): string;
  /** SIGTERM and wait for exit (graceful shutdown); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
  /** kill -9, then wait for the exit. */
  kill(): Promise<void>;
}

// Every app process still running when the test process exits is killed with it: a failed
// test (or one still waiting for an app to get ready) must not leave orphans behind.
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export async function startAppProcess(
  apps: string,
  env: Record<string, string>,
  options: { timeoutMs?: number } = {},
): Promise<AppProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/earshot.js'), 'start', '--mode', 'distributed', '--apps', apps], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started app behind
      reject(new Error(`'earshot start --apps ${apps}' not ready after ${options.timeoutMs ?? 180_000} ms:\n${output}`));
    }, options.timeoutMs ?? 180_000);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('Press Ctrl-C to stop')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`'earshot start --apps ${apps}' exited (${code}) before it was ready:\n${output}`));
    });
  });
  const printed = (app: string): string => {
    const match = new RegExp(`^\\s+${app}\\s+(\\S+)`, 'm').exec(output);
    if (!match?.[1]) throw new Error(`'${apps}' printed no ${app} URL:\n${output}`);
    return match[1].replace(/\/twilio-media\/<token>$/, '');
  };
  return {
    child,
    apps,
    output: () => output,
    url: printed,
    stop: async (graceMs = 20_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
