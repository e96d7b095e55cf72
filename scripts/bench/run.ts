import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench -- <name> [options]`: runs scripts/bench/<name>.bench.ts, prints its table
 * and records it in docs/benchmarks.md (the section of that benchmark is replaced by the
 * latest run; a dated history line is kept). Benchmarks measure; tests never assert timings.
 */
export interface BenchResult {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
  readonly notes?: readonly string[];
}

export interface Bench {
  run(args: string[]): Promise<BenchResult>;
}

const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

function table(result: BenchResult): string {
  const cells = [result.columns.map(String), ...result.rows.map((r) => r.map((c) => (typeof c === 'number' ? format(c) : c)))];
  return cells.map((row, i) => `| ${row.join(' | ')} |${i === 0 ? `\n|${row.map(() => '---').join('|')}|` : ''}`).join('\n');
}

const format = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2));

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown cpu';
  return `${cpus().length} cores (${cpu.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  if (!name || name === '--help') {
    console.log('Usage: npm run bench -- <name> [options]   (names: the files scripts/bench/<name>.bench.ts)');
    process.exitCode = name ? 0 : 1;
    return;
  }
  const bench = (await import(`./${name}.bench.ts`)) as Bench;
  const result = await bench.run(args);
  const command = `npm run bench -- ${[name, ...args].join(' ')}`;
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const rendered = table(result);
  console.log(`\n${result.title}\n\n${rendered}\n`);
  for (const note of result.notes ?? []) console.log(`- ${note}`);
  if (process.env.BENCH_NO_RECORD === '1') return;

  const section = [
    `## ${name}`,
    '',
    `${result.title}`,
    '',
    `Command: \`${command}\` · ${when} UTC · ${machine()}`,
    '',
    rendered,
    '',
    ...(result.notes ?? []).map((n) => `- ${n}`),
    '',
    '', // a blank line before the next section
  ].join('\n');
  let doc = readFileSync(DOC, 'utf8');
  const start = doc.indexOf(`## ${name}\n`);
  if (start >= 0) {
    const next = doc.indexOf('\n## ', start + 1);
    doc = doc.slice(0, start) + section + (next >= 0 ? doc.slice(next + 1) : '');
  } else {
    doc = `${doc.trimEnd()}\n\n${section}`;
  }
  writeFileSync(DOC, `${doc.trimEnd()}\n`);
  console.log(`recorded in docs/benchmarks.md`);
}

await main();
