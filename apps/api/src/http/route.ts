import type { z } from 'zod';
import type { ApiContext } from './context.js';
import type { ErrorStatus } from './errors.js';

/**
 * One route: how it is served and how it is documented, in one value. `server.ts` registers
 * the handler; `openapi/openapi.ts` documents it from the same schemas.
 */
export interface RouteSpec {
  readonly method: 'get' | 'post';
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tag: 'call control' | 'conversation' | 'recordings' | 'operations' | 'live transcripts' | 'file exporter';
  readonly authenticated: boolean;
  /** Authenticated by the live page's session cookie instead of the asapp-* headers (documented as such). */
  readonly cookieSession?: boolean;
  /** Path parameters (`:name` in `path`) and query parameters, one field each (validated with `validate`). */
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  /** Named request body schema (validated with `validate`). */
  readonly requestBody?: NamedSchema;
  readonly success: { readonly description: string; readonly body: NamedSchema | { readonly contentType: string } };
  readonly errors: readonly ErrorStatus[];
  readonly handle: (ctx: ApiContext) => Promise<void>;
}

export interface NamedSchema {
  readonly id: string;
  readonly schema: z.ZodType;
}
