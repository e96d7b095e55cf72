import type { z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Validates a request part with its zod schema (the same schema the OpenAPI document is
 * generated from) and turns every problem into one precise 400 message: which field, what
 * was wrong, never more than the first few problems.
 */
const MAX_PROBLEMS = 5;

type Issue = {
  code: string;
  path?: PropertyKey[];
  input?: unknown;
  expected?: string;
  maximum?: unknown;
  minimum?: unknown;
  values?: unknown[];
};

const describeValue = (value: unknown): string => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
};

const article = (type: string): string => (type === 'object' || type === 'array' ? `an ${type}` : `a ${type}`);

/** Messages for the problems any field can have; fields with a rule of their own set theirs in the schema. */
function message(issue: Issue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${article(issue.expected ?? 'value')}, not ${describeValue(issue.input)}`;
    case 'too_small':
      return issue.minimum === 1 ? 'must not be empty' : `must be at least ${String(issue.minimum)} long`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)} characters`;
    case 'invalid_value':
      return `must be one of ${(issue.values ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
}

export function validate<S extends z.ZodType>(schema: S, input: unknown, what = 'body'): z.output<S> {
  const result = schema.safeParse(input, { error: (issue) => message(issue as Issue) });
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, MAX_PROBLEMS).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : what;
    return `${path} ${issue.message}`;
  });
  const more = result.error.issues.length - problems.length;
  throw new ApiError(400, `invalid request: ${problems.join('; ')}${more > 0 ? `; and ${more} more` : ''}`);
}
