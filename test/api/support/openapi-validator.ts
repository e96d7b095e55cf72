import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * Checks a response against the API's own served /openapi.json: the status must be one the
 * operation documents, the body must match that response's schema (compiled with ajv, JSON
 * Schema 2020-12 as OpenAPI 3.1 says), every response carries x-request-id, and an error's
 * code and request id agree with its status and header. A request that matches no operation
 * (unknown route, wrong method, a request Node cannot parse) must answer 400, 401, 404 or 429
 * in the document's Error schema.
 */
export const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

export interface ObservedResponse {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly text: string;
}

type Json = Record<string, unknown>;

const pointer = (...parts: string[]): string => `#/${parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

export class OpenApiValidator {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly document: Json) {
    addFormats(this.ajv);
    this.ajv.addSchema(document, 'openapi.json');
  }

  /** Problems with `response`, empty when it is exactly what the document promises. */
  problems(response: ObservedResponse): string[] {
    const problems: string[] = [];
    const requestId = response.headers['x-request-id'];
    if (!requestId) problems.push('no x-request-id header');
    const paths = this.document.paths as Record<string, Record<string, Json>>;
    const method = response.method.toLowerCase() === 'head' ? 'get' : response.method.toLowerCase();
    const template = this.templateOf(response.path);
    const operation = paths[template]?.[method];
    let location: string;
    let contentType: string;
    if (!operation) {
      if (![400, 401, 404, 429].includes(response.status)) problems.push(`undocumented route answered ${response.status}`);
      location = pointer('components', 'schemas', 'Error');
      contentType = 'application/json';
    } else {
      let base = ['paths', template, method, 'responses', String(response.status)];
      let declared = (operation.responses as Record<string, Json>)[String(response.status)];
      if (!declared) return [...problems, `${response.status} is not documented for ${method.toUpperCase()} ${response.path}`];
      if (typeof declared.$ref === 'string') {
        base = declared.$ref.slice(2).split('/');
        declared = this.resolve(declared.$ref);
      }
      if (!(declared.headers as Json | undefined)?.['x-request-id']) problems.push('the document does not declare x-request-id');
      if ((response.status === 429 || response.status === 503) && !/^\d+$/.test(response.headers['retry-after'] ?? '')) {
        problems.push(`${response.status} without a Retry-After in seconds`);
      }
      const content = declared.content as Record<string, unknown>;
      const actualType = (response.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      const declaredType = Object.keys(content).find((type) => type === actualType);
      if (!declaredType) return [...problems, `content type ${actualType || '(none)'} is not one of ${Object.keys(content).join(', ')}`];
      contentType = declaredType;
      location = pointer(...base.map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')), 'content', declaredType, 'schema');
    }
    let body: unknown = response.text;
    if (contentType === 'application/json') {
      try {
        body = JSON.parse(response.text);
      } catch {
        return [...problems, `body is not JSON: ${response.text.slice(0, 100)}`];
      }
    }
    const validate = this.validator(location);
    if (!validate(body)) problems.push(`body does not match ${location}: ${this.ajv.errorsText(validate.errors)}`);
    if (response.status >= 400) {
      const error = (body as { error?: { code?: unknown; requestId?: unknown } }).error;
      if (error?.code !== `${response.status}-01`)
        problems.push(`error code ${String(error?.code)} does not match status ${response.status}`);
      if (error?.requestId !== requestId) problems.push('error.requestId differs from the x-request-id header');
    }
    return problems;
  }

  assert(response: ObservedResponse): void {
    const problems = this.problems(response);
    if (problems.length > 0) {
      throw new Error(`${response.method} ${response.path} → ${response.status} breaks /openapi.json: ${problems.join('; ')}`);
    }
  }

  /** The document's path that `path` is an instance of (`/a/{id}/b` for `/a/x/b`), or `path` itself. */
  private templateOf(path: string): string {
    const paths = Object.keys(this.document.paths as Json);
    if (paths.includes(path)) return path;
    const literal = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
    const pattern = (template: string) =>
      new RegExp(
        `^${template
          .split(/\{[^}]+\}/)
          .map(literal)
          .join('[^/]+')}$`,
      );
    return paths.find((template) => template.includes('{') && pattern(template).test(path)) ?? path;
  }

  private validator(location: string): ValidateFunction {
    let validate = this.compiled.get(location);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `openapi.json${location}` });
      this.compiled.set(location, validate);
    }
    return validate;
  }

  private resolve(ref: string): Json {
    let node: unknown = this.document;
    for (const part of ref.slice(2).split('/')) node = (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return node as Json;
  }
}
