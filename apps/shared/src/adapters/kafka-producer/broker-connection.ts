import { createConnection, type Socket } from 'node:net';

/**
 * One TCP connection to one Kafka broker, for produce requests: size-prefixed frames,
 * requests pipelined and answered in order, matched by correlation id. Any socket error,
 * close or timeout fails every request in flight and retires the connection; the owner opens
 * a new one for the next request. Plaintext only, like the rest of our Kafka config.
 */
export class BrokerConnectionError extends Error {
  constructor(
    message: string,
    readonly broker: string,
  ) {
    super(message);
    this.name = 'BrokerConnectionError';
  }
}

interface Waiting {
  readonly sentAt: number;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (error: Error) => void;
}

export class BrokerConnection {
  private readonly socket: Socket;
  private readonly connected: Promise<void>;
  private readonly waiting = new Map<number, Waiting>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  private connectedReject: ((error: Error) => void) | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly options: { readonly connectTimeoutMs: number; readonly requestTimeoutMs: number },
  ) {
    this.socket = createConnection({ host, port, noDelay: true });
    this.connected = new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () => this.fail(`connect to ${this.name} timed out after ${options.connectTimeoutMs} ms`),
        options.connectTimeoutMs,
      );
      this.socket.once('connect', () => {
        clearTimeout(timeout);
        resolve();
      });
      this.socket.once('close', () => clearTimeout(timeout));
      this.connectedReject = reject;
    });
    this.connected.catch(() => {});
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (error) => this.fail(`${this.name}: ${error.message}`));
    this.socket.on('close', () => this.fail(`connection to ${this.name} closed`));
  }

  get name(): string {
    return `${this.host}:${this.port}`;
  }

  /** False once the connection failed or was closed: make a new one. */
  get usable(): boolean {
    return this.failure === null;
  }

  /** Sends an encoded request (its correlation id at bytes 8-11) and resolves with the response body after the correlation id. */
  async request(frame: Buffer, correlationId: number): Promise<Buffer> {
    if (this.failure) throw this.failure;
    await this.connected;
    if (this.failure) throw this.failure;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.set(correlationId, { sentAt: Date.now(), resolve, reject });
      this.socket.write(frame);
      this.armTimer();
    });
  }

  close(): void {
    this.fail(`connection to ${this.name} closed by the client`);
  }

  /** One timer for the oldest request waiting (answers come in request order). */
  private armTimer(): void {
    if (this.timer) return;
    const oldest = this.waiting.values().next().value;
    if (!oldest) return;
    const due = oldest.sentAt + this.options.requestTimeoutMs - Date.now();
    this.timer = setTimeout(
      () => {
        this.timer = null;
        const first = this.waiting.values().next().value;
        if (first && Date.now() - first.sentAt >= this.options.requestTimeoutMs) {
          this.fail(`no answer from ${this.name} within ${this.options.requestTimeoutMs} ms`);
        } else this.armTimer();
      },
      Math.max(0, due),
    );
    this.timer.unref();
  }

  private onData(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes >= 4) {
      if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
      const buffer = this.pending[0] as Buffer;
      const size = buffer.readInt32BE(0);
      if (size < 4) {
        this.fail(`${this.name} sent a frame of ${size} bytes`);
        return;
      }
      if (this.pendingBytes < 4 + size) return;
      const correlationId = buffer.readInt32BE(4);
      const body = buffer.subarray(8, 4 + size);
      const rest = buffer.subarray(4 + size);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      const waiter = this.waiting.get(correlationId);
      if (!waiter) {
        this.fail(`${this.name} answered an unknown correlation id ${correlationId}`);
        return;
      }
      this.waiting.delete(correlationId);
      if (this.waiting.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      waiter.resolve(body);
    }
  }

  private fail(message: string): void {
    if (this.failure) return;
    this.failure = new BrokerConnectionError(message, this.name);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.connectedReject?.(this.failure);
    for (const waiter of this.waiting.values()) waiter.reject(this.failure);
    this.waiting.clear();
    this.socket.destroy();
  }
}
