import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The metrics list of docs/operations.md, generated from the source: every
 * `new Counter|Gauge|Histogram|Summary({ name, help, labelNames })` under apps/, grouped by app.
 * Every metric also carries the label `app` (the process's name) from the registry.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KINDS = new Set(['Counter', 'Gauge', 'Histogram', 'Summary']);

export interface MetricDoc {
  readonly app: string;
  readonly name: string;
  readonly kind: string;
  readonly help: string;
  readonly labels: readonly string[];
  readonly file: string;
}

export function findMetrics(): MetricDoc[] {
  const metrics: MetricDoc[] = [];
  for (const file of sourceFiles(join(ROOT, 'apps'))) {
    const text = readFileSync(file, 'utf8');
    if (!/new (Counter|Gauge|Histogram|Summary)\b/.test(text)) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isNewExpression(node) && KINDS.has(node.expression.getText(source))) {
        const options = node.arguments?.[0];
        if (options && ts.isObjectLiteralExpression(options)) {
          const get = (key: string) =>
            options.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && p.name.getText(source) === key)
              ?.initializer;
          const name = literal(get('name'), source);
          if (name) {
            let labels = get('labelNames');
            // ['a', 'b'] as const / satisfies ... / (...)
            while (labels && (ts.isAsExpression(labels) || ts.isSatisfiesExpression(labels) || ts.isParenthesizedExpression(labels))) {
              labels = labels.expression;
            }
            const rel = relative(ROOT, file);
            metrics.push({
              app: rel.split('/')[1] ?? 'shared',
              name,
              kind: node.expression.getText(source).toLowerCase(),
              help: literal(get('help'), source) ?? '',
              labels:
                labels && ts.isArrayLiteralExpression(labels) ? labels.elements.map((e) => literal(e, source) ?? e.getText(source)) : [],
              file: rel,
            });
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return metrics.sort((a, b) => a.app.localeCompare(b.app) || a.name.localeCompare(b.name));
}

export function metricsReference(): string {
  const metrics = findMetrics();
  const lines: string[] = [];
  let app: string | undefined;
  for (const m of metrics) {
    if (m.app !== app) {
      app = m.app;
      lines.push('', `### ${app}`, '', '| metric | type | labels | what |', '|---|---|---|---|');
    }
    const labels = m.labels.length > 0 ? m.labels.map((l) => `\`${l}\``).join(', ') : '—';
    lines.push(`| \`${m.name}\` | ${m.kind} | ${labels} | ${m.help.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
  }
  return `${lines.join('\n').trim()}\n`;
}

function literal(node: ts.Node | undefined, source: ts.SourceFile): string | undefined {
  if (!node) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const left = literal(node.left, source);
    const right = literal(node.right, source);
    if (left !== undefined && right !== undefined) return left + right;
  }
  return node.getText(source);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}
