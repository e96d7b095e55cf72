import { type ChildProcess, fork } from 'node:child_process';

/**
 * A forked TypeScript child (`node --import tsx`) spoken to over IPC: `request` sends a
 * command and resolves with the child's next message of the expected type.
 */
export class Child<Out extends { type: string }> {
  private readonly process: ChildProcess;
  private readonly waiting = new Map<string, ((message: Out) => void)[]>();
  /** Messages nobody waited for yet (e.g. `ready`, sent while the parent awaited another child). */
  private readonly inbox: Out[] = [];
  private exited: Error | null = null;

  constructor(
    readonly name: string,
    script: string,
    args: readonly string[] = [],
    nodeOptions: readonly string[] = [],
  ) {
    this.process = fork(script, [...args], {
      execArgv: ['--import', 'tsx', ...nodeOptions],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (message: Out) => {
      const waiter = this.waiting.get(message.type)?.shift();
      if (waiter) waiter(message);
      else this.inbox.push(message);
    });
    this.process.on('exit', (code, signal) => {
      this.exited = new Error(`${name} exited (${signal ?? code})`);
      for (const queue of this.waiting.values()) queue.length = 0;
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  send(message: { type: string } & Record<string, unknown>): void {
    if (!this.exited) this.process.send(message);
  }

  /**
   * The next message of `type`: without `message`, possibly one already received; with it, the
   * reply to it. Rejects after `timeoutMs` or if the child exits.
   */
  request<T extends Out['type']>(
    type: T,
    message: ({ type: string } & Record<string, unknown>) | null = null,
    timeoutMs = 60_000,
  ): Promise<Extract<Out, { type: T }>> {
    return new Promise((resolve, reject) => {
      const early = this.inbox.findIndex((m) => m.type === type);
      if (early >= 0) {
        const [found] = this.inbox.splice(early, 1);
        if (!message) return resolve(found as Extract<Out, { type: T }>);
      }
      if (this.exited) return reject(this.exited);
      const timer = setTimeout(() => reject(new Error(`${this.name}: no '${type}' after ${timeoutMs} ms`)), timeoutMs);
      const onExit = () => reject(this.exited ?? new Error(`${this.name} exited`));
      this.process.once('exit', onExit);
      const queue = this.waiting.get(type) ?? [];
      queue.push((reply) => {
        clearTimeout(timer);
        this.process.off('exit', onExit);
        resolve(reply as Extract<Out, { type: T }>);
      });
      this.waiting.set(type, queue);
      if (message) this.send(message);
    });
  }

  /** Asks the child to finish (`stop` message) and waits; kills it after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.send({ type: 'stop' });
    const timer = setTimeout(() => this.process.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  /** Closes the IPC channel (the benchmark children exit on it) and waits; kills after `timeoutMs`. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.disconnect();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.process.kill('SIGKILL');
  }
}
