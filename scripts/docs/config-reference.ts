import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import ts from 'typescript';
import { z } from 'zod';
import { configSchema, loadEarshotConfig } from '../../apps/shared/src/config.js';

/**
 * The configuration reference of docs/operations.md, generated from the one zod schema in
 * apps/shared/src/config.ts: name, default, accepted values from the schema itself; sections
 * and descriptions from the schema's source comments (a comment line before a setting starts a
 * section, a comment after it on its line describes it), so the comments the project asks for
 * next to each setting are the documentation.
 */
const CONFIG_SOURCE = new URL('../../apps/shared/src/config.ts', import.meta.url);

interface SettingDoc {
  readonly name: string;
  /** The section header comment: a title, then (after its first `:`, `;`, `,` or `.`) an introduction. */
  readonly section: string;
  readonly comment: string;
}

export function configReference(): string {
  const docs = settingComments();
  const shape = configSchema.shape as Record<string, z.ZodType>;
  const effective = loadEarshotConfig({ env: {} }) as Record<string, unknown>;
  const missing = Object.keys(shape).filter((name) => !docs.some((d) => d.name === name));
  if (missing.length > 0) throw new Error(`config-reference: no source position found for ${missing.join(', ')}`);

  const lines: string[] = [];
  let section: string | undefined;
  for (const doc of docs) {
    const field = shape[doc.name];
    if (!field) continue;
    if (doc.section !== section) {
      section = doc.section;
      const { title, intro } = splitHeader(section);
      lines.push('', `### ${title}`, '');
      if (intro) lines.push(intro, '');
      lines.push('| setting | default | accepted values | notes |', '|---|---|---|---|');
    }
    lines.push(`| \`${doc.name}\` | ${defaultOf(field, effective[doc.name])} | ${acceptedValues(field)} | ${cell(doc.comment)} |`);
  }
  return `${lines.join('\n').trim()}\n`;
}

/** Every setting in source order, with its section header and its own comment. */
function settingComments(): SettingDoc[] {
  const text = readFileSync(CONFIG_SOURCE, 'utf8');
  const source = ts.createSourceFile('config.ts', text, ts.ScriptTarget.ES2022, true);
  let shape: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node): void => {
    if (shape) return;
    if (ts.isVariableDeclaration(node) && node.name.getText(source) === 'configSchema') {
      const find = (n: ts.Node): void => {
        if (shape) return;
        const isZObject =
          ts.isCallExpression(n) &&
          ts.isPropertyAccessExpression(n.expression) &&
          n.expression.name.text === 'object' &&
          n.expression.expression.getText(source) === 'z';
        if (isZObject && n.arguments[0] && ts.isObjectLiteralExpression(n.arguments[0])) {
          shape = n.arguments[0];
          return;
        }
        ts.forEachChild(n, find);
      };
      find(node);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  if (!shape) throw new Error('config-reference: configSchema = z.object({...}) not found in apps/shared/src/config.ts');

  const docs: SettingDoc[] = [];
  let section = 'General';
  for (const property of shape.properties) {
    if (!ts.isPropertyAssignment(property)) continue;
    const leading = ts.getLeadingCommentRanges(text, property.getFullStart()) ?? [];
    const header = commentText(text, leading);
    if (header) section = header.replace(/\.$/, '');
    // The describing comment sits after the property's comma on the same line.
    let end = property.getEnd();
    if (text[end] === ',') end++;
    const trailing = (ts.getTrailingCommentRanges(text, end) ?? []).filter((range) => !text.slice(end, range.pos).includes('\n'));
    docs.push({ name: property.name.getText(source), section, comment: commentText(text, trailing) });
  }
  return docs;
}

/** "Recordings (SPEC §6): directory and cap" → title "Recordings (SPEC §6)", intro "Directory and cap." */
function splitHeader(header: string): { title: string; intro: string } {
  let depth = 0;
  for (let i = 0; i < header.length; i++) {
    const c = header[i] as string;
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (depth === 0 && ':;,.'.includes(c) && (i === header.length - 1 || header[i + 1] === ' ')) {
      const rest = header.slice(i + 1).trim();
      return {
        title: header.slice(0, i).trim(),
        intro: rest
          ? `${rest[0]?.toUpperCase()}${rest.slice(1)}${rest.endsWith('.') ? '' : '.'}`.replace(/</g, '&lt;').replace(/>/g, '&gt;')
          : '',
      };
    }
  }
  return { title: header, intro: '' };
}

function commentText(text: string, ranges: readonly ts.CommentRange[]): string {
  return ranges
    .map((range) =>
      text
        .slice(range.pos, range.end)
        .replace(/^\/\/\s?/, '')
        .replace(/^\/\*+\s?|\s*\*+\/$/g, '')
        .trim(),
    )
    .filter(Boolean)
    .join(' ');
}

function unwrap(field: z.ZodType): z.ZodType {
  let inner = field as z.ZodType & { _zod: { def: { innerType?: z.ZodType } } };
  while (inner._zod.def.innerType) inner = inner._zod.def.innerType as typeof inner;
  return inner;
}

function jsonSchema(field: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The schema's default, or (for settings derived at load time) the effective value without any variable set. */
function defaultOf(field: z.ZodType, effective: unknown): string {
  const schema = jsonSchema(field);
  const value = 'default' in schema ? schema.default : effective;
  if (value === undefined) return '—';
  const shown = `\`${String(value).replace(homedir(), '~')}\``;
  return 'default' in schema ? shown : `${shown} (derived)`;
}

/** What the schema accepts, in words: enums, ranges, and each check's own message. */
function acceptedValues(field: z.ZodType): string {
  const schema = jsonSchema(field);
  const parts: string[] = [];
  if (Array.isArray(schema.enum)) parts.push(schema.enum.map((v) => `\`${String(v)}\``).join(' | '));
  else if (schema.type === 'integer' || schema.type === 'number') {
    const min = schema.minimum as number | undefined;
    const max = schema.maximum === Number.MAX_SAFE_INTEGER ? undefined : (schema.maximum as number | undefined);
    parts.push(
      `${schema.type}${min !== undefined && max !== undefined ? ` ${min}–${max}` : min !== undefined ? ` ≥ ${min}` : max !== undefined ? ` ≤ ${max}` : ''}`,
    );
  } else if (schema.format === 'uri') parts.push('URL');
  else if (schema.type === 'string') parts.push('text');
  const checks =
    (unwrap(field) as unknown as { _zod: { def: { checks?: { _zod: { def: { error?: unknown } } }[] } } })._zod.def.checks ?? [];
  for (const check of checks) {
    const error = check._zod.def.error;
    const message = typeof error === 'function' ? (error as (issue: unknown) => unknown)({}) : error;
    if (typeof message === 'string') parts.push(message);
  }
  return cell(parts.join('; '));
}

/** A table cell: pipes escaped, `<name>` shown as text (not an HTML tag), one line. */
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, ' ');
