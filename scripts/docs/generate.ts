// Regenerates the generated parts of the docs:
//   npm run docs                                   (node --import tsx scripts/docs/generate.ts)
//   node --import tsx scripts/docs/generate.ts --check   (exit 1 and name the stale files; what the test does)
// - docs/api.md: from GET /openapi.json of a freshly started API (api-reference.ts)
// - docs/operations.md: the configuration reference (config-reference.ts) and the metrics list
//   (metrics-reference.ts), between their <!-- generated:... --> markers; the rest is hand-written.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fetchOpenApi, renderApiReference } from './api-reference.js';
import { configReference } from './config-reference.js';
import { metricsReference } from './metrics-reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const API_DOC = `${ROOT}docs/api.md`;
export const OPERATIONS_DOC = `${ROOT}docs/operations.md`;

/** Replaces what sits between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`. */
export function fillSection(document: string, name: string, content: string): string {
  const start = `<!-- generated:${name} (npm run docs) -->`;
  const end = `<!-- /generated:${name} -->`;
  const from = document.indexOf(start);
  const to = document.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/operations.md: markers ${start} ... ${end} not found`);
  return `${document.slice(0, from + start.length)}\n\n${content.trim()}\n\n${document.slice(to)}`;
}

/** Every generated file with the content it should have now. */
export async function expectedDocs(): Promise<{ path: string; content: string }[]> {
  const operations = readFileSync(OPERATIONS_DOC, 'utf8');
  const withConfig = fillSection(operations, 'config', configReference());
  return [
    { path: API_DOC, content: renderApiReference(await fetchOpenApi()) },
    { path: OPERATIONS_DOC, content: fillSection(withConfig, 'metrics', metricsReference()) },
  ];
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const { path, content } of await expectedDocs()) {
    let current = '';
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === content) continue;
    stale.push(path.slice(ROOT.length));
    if (!check) writeFileSync(path, content);
  }
  if (check && stale.length > 0) {
    console.error(`docs: out of date: ${stale.join(', ')}; run: npm run docs`);
    process.exitCode = 1;
  } else {
    console.log(stale.length === 0 ? 'docs: up to date' : `docs: rewrote ${stale.join(', ')}`);
  }
}
