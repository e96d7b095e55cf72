import { readdirSync, readFileSync } from 'node:fs';
import type { EngineStats } from '../../../apps/asr/src/engine/speech-engine.port.js';

/**
 * Measurement helpers shared by the benchmarks and their child processes: a fixed-bucket
 * latency histogram (cheap enough to record every batch or frame of a run) and CPU readings
 * from /proc for processes the benchmark did not start (the Kafka broker, the machine).
 */

/** Latencies in ms, 0.1 ms buckets up to `maxMs` (above: counted in the last bucket). */
export class Histogram {
  private readonly buckets: Uint32Array;
  count = 0;
  sum = 0;

  constructor(private readonly maxMs = 10_000) {
    this.buckets = new Uint32Array(maxMs * 10 + 1);
  }

  record(ms: number): void {
    const i = ms <= 0 ? 0 : Math.min(this.buckets.length - 1, Math.round(ms * 10));
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.count++;
    this.sum += ms;
  }

  /** The value below which a fraction `p` of the samples lie (NaN when empty). */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil(p * this.count);
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] as number;
      if (seen >= rank) return i === this.buckets.length - 1 ? this.maxMs : i / 10;
    }
    return this.maxMs;
  }

  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
    this.sum = 0;
  }
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export function percentiles(h: Histogram): Percentiles {
  return { count: h.count, p50: h.percentile(0.5), p95: h.percentile(0.95), p99: h.percentile(0.99), max: h.percentile(1) };
}

/** Wall clock in ms with sub-ms resolution, comparable between processes of one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Busy and total jiffies of the whole machine (/proc/stat), or null off Linux. */
export function machineTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string;
    const [, ...fields] = line.trim().split(/\s+/);
    const n = fields.map(Number);
    const total = n.reduce((a, b) => a + b, 0);
    const idle = (n[3] ?? 0) + (n[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** CPU time (user + system) of a process in seconds from /proc/<pid>/stat; null if unreadable. */
export function processCpuSeconds(pid: number, ticksPerSecond = 100): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces: count fields after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

/** The pid of the first process whose command line contains `needle` (e.g. the Kafka broker). */
export function findPid(needle: string): number | null {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) return Number(entry);
      } catch {
        // the process ended meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return null;
}

/**
 * CPU used on the machine by everything except the given processes and this one, in % of one
 * core, from `start` to `read`: other people's work on a shared machine, which disturbs a run.
 */
export class ForeignCpu {
  private machine = machineTicks();
  private own = 0;
  private self = process.cpuUsage();
  private at = wallMs();

  constructor(private readonly pids: readonly number[]) {
    this.start();
  }

  start(): void {
    this.machine = machineTicks();
    this.own = this.ownSeconds();
    this.self = process.cpuUsage();
    this.at = wallMs();
  }

  read(): number {
    const machine = machineTicks();
    if (!machine || !this.machine) return Number.NaN;
    const seconds = (wallMs() - this.at) / 1000;
    const self = process.cpuUsage(this.self);
    // /proc/stat counts busy jiffies (1/100 s) summed over all cores.
    const busy = (machine.busy - this.machine.busy) / 100;
    const foreign = busy - (this.ownSeconds() - this.own) - (self.user + self.system) / 1e6;
    return Math.max(0, (foreign / seconds) * 100);
  }

  private ownSeconds(): number {
    return this.pids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? 0), 0);
  }
}

/** Deterministic uniform [0, 1) (xorshift32). */
export function xorshift(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** The engine's speculation counters as one sentence (latency and asr-engine benches). */
export function describeSpeculation(s: NonNullable<EngineStats['speculation']>): string {
  return `${s.started} started, ${s.promoted} confirmed, ${s.cancelled} cancelled before running, ${s.ranUnconfirmed} run and thrown away (wasted model time; ${s.aborted} of them stopped early when their pause ended in speech)`;
}
