import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { ExportSource } from '../../apps/export/src/day-export.js';
import type { SchedulerClock } from '../../apps/export/src/scheduler.js';
import type { StoredUtterance } from '../../apps/shared/src/ports/transcript-store.port.js';

/**
 * Export test helpers. `memorySource` is a TranscriptStore read side kept in memory for unit
 * tests; the same export runs against real ClickHouse in `export.int.test.ts`.
 */
export function stored(over: Partial<StoredUtterance> & { occurredAtMs: number }): StoredUtterance {
  const n = over.occurredAtMs;
  return {
    eventId: `ev-${n}-${over.tenantId ?? 'tenant-a'}`,
    utteranceId: `CA${'0'.repeat(31)}1:MZ:inbound:${n}`,
    tenantId: 'tenant-a',
    callSid: `CA${'0'.repeat(31)}1`,
    streamId: '11111111-1111-4111-8111-111111111111',
    role: 'customer',
    senderExternalId: 'cust-1',
    startMs: 1000,
    endMs: 1900,
    text: `words at ${n}`,
    language: 'en-US',
    speechEndedAtMs: n - 100,
    ...over,
  };
}

/** Honours the port's contract: [from, to), ordered by tenant then occurredAtMs. */
export function memorySource(rows: readonly StoredUtterance[]): ExportSource & { reads: number } {
  const source = {
    reads: 0,
    async *utterancesCreatedBetween(fromMs: number, toMs: number): AsyncIterable<StoredUtterance> {
      source.reads += 1;
      const inRange = rows.filter((u) => u.occurredAtMs >= fromMs && u.occurredAtMs < toMs);
      inRange.sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : a.occurredAtMs - b.occurredAtMs));
      yield* inRange;
    },
  };
  return source;
}

/** Every path under `root` (relative), directories marked with a trailing "/", symlinks with " -> target". */
export function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) out.push(`${relative(root, path)} ->`);
      else if (stat.isDirectory()) {
        out.push(`${relative(root, path)}/`);
        walk(path);
      } else out.push(relative(root, path));
    }
  };
  walk(root);
  return out;
}

export const gunzipText = (bytes: Buffer): string => gunzipSync(bytes).toString('utf8');
export const readGzipFile = (path: string): string => gunzipText(readFileSync(path));

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records) for checking what we wrote. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i += 1;
        continue;
      }
      field += c;
      i += 1;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i += 1;
    } else if (c === ',') {
      record.push(field);
      field = '';
      i += 1;
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else if (c === '\n' || c === '\r') {
      throw new Error(`bare ${c === '\n' ? 'LF' : 'CR'} outside quotes at ${i}`);
    } else {
      field += c;
      i += 1;
    }
  }
  if (field !== '' || record.length > 0) throw new Error('last record not terminated by CRLF');
  return records;
}

/** The documented inverse of the CSV formula neutralization: drop one leading apostrophe. */
export const unneutralize = (cell: string): string => (cell.startsWith("'") ? cell.slice(1) : cell);

/** A clock tests move by hand: timers fire in order as time passes them. */
export class FakeClock implements SchedulerClock {
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  constructor(public ms: number) {}
  now = (): number => this.ms;
  setTimeout = (fn: () => void, delay: number): (() => void) => {
    const id = this.nextId++;
    this.timers.push({ at: this.ms + delay, fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  };
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward to `to`, firing due timers in order (and letting their promises settle). */
  async advanceTo(to: number): Promise<void> {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const due = this.timers[0];
      if (!due || due.at > to) break;
      this.timers.shift();
      this.ms = Math.max(this.ms, due.at);
      due.fn();
      await new Promise((r) => setTimeout(r, 20));
    }
    this.ms = to;
  }
}
