import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createConnection } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../shared/src/config.js';
import { EarshotError } from '../../shared/src/errors.js';

/**
 * `earshot infra up|down|status`: the real Kafka broker, schema registry and ClickHouse
 * server on loopback that the tests (and distributed mode without Docker) use. Each server
 * has `infra/<name>/install.sh` (idempotent, registries only) and `start.sh`, which execs the
 * server in the foreground; here we background it, keep its pid and wait for real readiness.
 * Everything a run leaves lives under EARSHOT_INFRA_DIR; downloads are cached in
 * EARSHOT_INFRA_CACHE_DIR (default ~/.cache/earshot) so fresh clones reuse them.
 */
const INFRA_SRC = fileURLToPath(new URL('../../../infra/', import.meta.url));

export const SERVER_NAMES = ['kafka', 'registry', 'clickhouse'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

interface ServerDef {
  readonly name: ServerName;
  readonly port: number;
  readonly installArgs: readonly string[];
  readonly startArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly endpoint: string;
  ready(): Promise<boolean>;
}

export interface ServerStatus {
  readonly name: ServerName;
  readonly endpoint: string;
  readonly state: 'running' | 'running-external' | 'stopped' | 'starting';
  readonly pid: number | null;
}

export interface UpResult extends ServerStatus {
  readonly action: 'reused' | 'started';
  readonly seconds: number;
}

export class Infra {
  readonly stateDir: string;
  readonly cacheDir: string;
  private readonly servers: readonly ServerDef[];

  constructor(private readonly config: Config) {
    this.stateDir = resolve(config.EARSHOT_INFRA_DIR);
    this.cacheDir = resolve(config.EARSHOT_INFRA_CACHE_DIR ?? join(homedir(), '.cache', 'earshot'));
    const c = config;
    this.servers = [
      {
        name: 'kafka',
        port: c.EARSHOT_INFRA_KAFKA_PORT,
        installArgs: [join(this.cacheDir, 'kafka')],
        startArgs: [join(this.cacheDir, 'kafka'), this.serverDir('kafka')],
        env: { KAFKA_PORT: String(c.EARSHOT_INFRA_KAFKA_PORT), KAFKA_CONTROLLER_PORT: String(c.EARSHOT_INFRA_KAFKA_CONTROLLER_PORT) },
        endpoint: `127.0.0.1:${c.EARSHOT_INFRA_KAFKA_PORT}`,
        ready: async () => {
          if (!(await portOpen(c.EARSHOT_INFRA_KAFKA_PORT))) return false;
          const log = join(this.serverDir('kafka'), 'logs', 'server.log');
          // Ours: the broker logs this once it serves clients (a bare TCP accept comes earlier).
          if (existsSync(log)) return readFileSync(log, 'utf8').includes('Kafka Server started');
          // Not started from this state folder (another checkout's, or a broker of your own): ask it.
          return kafkaAnswers(`127.0.0.1:${c.EARSHOT_INFRA_KAFKA_PORT}`);
        },
      },
      {
        name: 'registry',
        port: c.EARSHOT_INFRA_REGISTRY_PORT,
        installArgs: [join(this.cacheDir, 'registry')],
        startArgs: [join(this.cacheDir, 'registry'), this.serverDir('registry')],
        // File storage: schema ids must outlive a restart, or Kafka records would point at the wrong schema.
        env: { REGISTRY_PORT: String(c.EARSHOT_INFRA_REGISTRY_PORT), REGISTRY_STORAGE: 'file' },
        endpoint: `http://127.0.0.1:${c.EARSHOT_INFRA_REGISTRY_PORT}/apis/ccompat/v7`,
        ready: () => httpOk(`http://127.0.0.1:${c.EARSHOT_INFRA_REGISTRY_PORT}/apis/ccompat/v7/subjects`),
      },
      {
        name: 'clickhouse',
        port: c.EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT,
        installArgs: [],
        startArgs: [this.serverDir('clickhouse')],
        env: {
          CLICKHOUSE_HTTP_PORT: String(c.EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT),
          CLICKHOUSE_TCP_PORT: String(c.EARSHOT_INFRA_CLICKHOUSE_TCP_PORT),
          CLICKHOUSE_INTERSERVER_PORT: '0',
          CLICKHOUSE_LOG_LEVEL: 'warning',
        },
        endpoint: `http://127.0.0.1:${c.EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT}`,
        ready: () => httpOk(`http://127.0.0.1:${c.EARSHOT_INFRA_CLICKHOUSE_HTTP_PORT}/ping`, 'Ok.'),
      },
    ];
  }

  /** Starts whatever is not running yet (installing first if needed) and waits until all are ready. */
  async up(log: (line: string) => void = () => {}, only?: readonly ServerName[]): Promise<UpResult[]> {
    const results: UpResult[] = [];
    const toStart: ServerDef[] = [];
    for (const server of this.servers.filter((s) => !only || only.includes(s.name))) {
      const status = await this.statusOf(server);
      if (status.state === 'running' || status.state === 'running-external') {
        results.push({ ...status, action: 'reused', seconds: 0 });
      } else if (status.state === 'starting') {
        toStart.push(server); // ours, still coming up: just wait for it
      } else {
        if (await portOpen(server.port)) {
          throw new EarshotError(
            'EARSHOT_INFRA_START_FAILED',
            `${server.name}: port ${server.port} is taken by another program that is not a ready ${server.name}; free it or set another port`,
            {
              fields: { server: server.name, port: server.port },
            },
          );
        }
        // Installs run one at a time: two Maven runs sharing ~/.m2 can corrupt it.
        this.install(server, log);
        toStart.push(server);
      }
    }
    const started = await Promise.all(toStart.map((server) => this.start(server, log)));
    return [...results, ...started].sort((a, b) => this.order(a.name) - this.order(b.name));
  }

  /** Stops the servers this project started (pid files); leaves external ones alone. */
  async down(log: (line: string) => void = () => {}, only?: readonly ServerName[]): Promise<void> {
    await Promise.all(
      this.servers
        .filter((s) => !only || only.includes(s.name))
        .map(async (server) => {
          const pid = this.pidOf(server);
          if (pid === null) return;
          log(`${server.name}: stopping pid ${pid}`);
          await stopProcess(pid);
          rmSync(this.pidFile(server), { force: true });
        }),
    );
  }

  async status(): Promise<ServerStatus[]> {
    return Promise.all(this.servers.map((s) => this.statusOf(s)));
  }

  private async statusOf(server: ServerDef): Promise<ServerStatus> {
    const pid = this.pidOf(server);
    const ready = await server.ready().catch(() => false);
    const base = { name: server.name, endpoint: server.endpoint, pid };
    if (pid !== null) return { ...base, state: ready ? 'running' : 'starting' };
    return { ...base, state: ready ? 'running-external' : 'stopped' };
  }

  private install(server: ServerDef, log: (line: string) => void): void {
    const script = join(INFRA_SRC, server.name, 'install.sh');
    const started = Date.now();
    const result = spawnSync('bash', [script, ...server.installArgs], { encoding: 'utf8', env: { ...process.env, ...server.env } });
    if (result.status !== 0) {
      const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
      throw new EarshotError('EARSHOT_INFRA_PREREQUISITE_MISSING', `${server.name}: install failed:\n${output}`, {
        fields: { server: server.name },
      });
    }
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 2) log(`${server.name}: installed in ${seconds.toFixed(1)} s`);
  }

  private async start(server: ServerDef, log: (line: string) => void): Promise<UpResult> {
    const started = Date.now();
    let pid = this.pidOf(server);
    let exited: string | null = null;
    if (pid === null) {
      mkdirSync(this.serverDir(server.name), { recursive: true });
      const out = openSync(join(this.serverDir(server.name), 'console.log'), 'a');
      const child = spawn('bash', [join(INFRA_SRC, server.name, 'start.sh'), ...server.startArgs], {
        detached: true, // its own process group: it outlives this command and ^C here
        stdio: ['ignore', out, out],
        env: { ...process.env, ...server.env },
      });
      child.on('exit', (code, signal) => {
        exited = `exited with ${signal ?? code}`;
      });
      child.unref();
      pid = child.pid ?? null;
      if (pid === null) throw new EarshotError('EARSHOT_INFRA_START_FAILED', `${server.name}: could not spawn start.sh`);
      writeFileSync(this.pidFile(server), String(pid));
      log(`${server.name}: starting (pid ${pid}, log ${join(this.serverDir(server.name), 'console.log')})`);
    }
    const deadline = started + this.config.EARSHOT_INFRA_START_TIMEOUT_MS;
    while (!(await server.ready().catch(() => false))) {
      if (exited !== null || !alive(pid)) {
        rmSync(this.pidFile(server), { force: true });
        throw new EarshotError(
          'EARSHOT_INFRA_START_FAILED',
          `${server.name}: ${exited ?? 'process died'} before it was ready:\n${this.tail(server)}`,
          {
            fields: { server: server.name },
          },
        );
      }
      if (Date.now() > deadline) {
        throw new EarshotError(
          'EARSHOT_INFRA_START_FAILED',
          `${server.name}: not ready after ${this.config.EARSHOT_INFRA_START_TIMEOUT_MS} ms:\n${this.tail(server)}`,
          {
            fields: { server: server.name },
          },
        );
      }
      await sleep(100);
    }
    return {
      name: server.name,
      endpoint: server.endpoint,
      pid,
      state: 'running',
      action: 'started',
      seconds: (Date.now() - started) / 1000,
    };
  }

  private tail(server: ServerDef): string {
    const file = join(this.serverDir(server.name), 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-15).join('\n') : '(no output)';
  }

  private serverDir(name: ServerName): string {
    return join(this.stateDir, name);
  }

  private pidFile(server: ServerDef): string {
    return join(this.serverDir(server.name), 'server.pid');
  }

  private pidOf(server: ServerDef): number | null {
    const file = this.pidFile(server);
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) return pid;
    rmSync(file, { force: true }); // stale: the server died or the machine restarted
    return null;
  }

  private order(name: ServerName): number {
    return this.servers.findIndex((s) => s.name === name);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopProcess(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 20_000;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Whether something accepts connections on the port. A server that accepts and at once closes
 * may end the socket without 'connect' being seen here: a close without an error also means
 * "taken" (otherwise the promise would never settle and the CLI would exit silently).
 */
/** Whether a Kafka broker answers a metadata request there (one quick try, no retries, no logs). */
async function kafkaAnswers(broker: string): Promise<boolean> {
  const { default: kafkajs } = await import('kafkajs');
  const admin = new kafkajs.Kafka({
    brokers: [broker],
    clientId: 'earshot-infra-probe',
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let failed = false;
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolvePort(true);
    });
    socket.once('timeout', () => {
      failed = true;
      socket.destroy();
      resolvePort(false);
    });
    socket.once('error', () => {
      failed = true;
      resolvePort(false);
    });
    socket.once('close', () => resolvePort(!failed));
  });
}

/** GET `url` → 200 (and `body` when given). node:http with every outcome handled: a peer that
 * accepts and drops the connection must settle the check, not leave it pending. */
function httpOk(url: string, body?: string): Promise<boolean> {
  return new Promise((resolveOk) => {
    const req = httpGet(url, { timeout: 1000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolveOk(res.statusCode === 200 && (body === undefined || text.trim() === body)));
      res.on('error', () => resolveOk(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveOk(false));
    req.on('close', () => resolveOk(false)); // no-op if already settled
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
