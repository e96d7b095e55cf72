import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import type { ApiState } from './context.js';
import { ApiError } from './errors.js';

/**
 * JSON request bodies (SPEC §3.6): `Content-Type: application/json` or 400 (415 is not in
 * the spec's list of codes, and 400 says the same to a client: fix the request); at most
 * 64 KiB, checked on Content-Length before anything is read and again on the bytes
 * streamed (chunked bodies, compressed bodies); malformed JSON 400. Runs after
 * authentication, so an unauthenticated client never makes us read a body.
 */
export const MAX_BODY_BYTES = 64 * 1024;

const tooLarge = (what: string) => new ApiError(413, `${what} exceeds the limit of ${MAX_BODY_BYTES} bytes (64 KiB)`);

export function jsonBody(): Middleware<ApiState> {
  const parse = bodyParser({
    enableTypes: ['json'],
    jsonLimit: MAX_BODY_BYTES,
    jsonStrict: true,
    encoding: 'utf-8',
    onError: (error) => {
      throw bodyError(error);
    },
  });
  return async (ctx, next) => {
    const type = ctx.get('content-type');
    if (!type) throw new ApiError(400, 'Content-Type header is missing; send the body as application/json');
    if (ctx.request.type !== 'application/json') {
      throw new ApiError(400, `Content-Type must be application/json, not ${ctx.request.type.slice(0, 100) || 'an invalid type'}`);
    }
    const length = ctx.get('content-length');
    if (length && Number(length) > MAX_BODY_BYTES) throw tooLarge(`request body of ${Number(length)} bytes`);
    await parse(ctx, async () => {});
    await next();
  };
}

function bodyError(error: Error): Error {
  const { type, message } = error as Error & { type?: string };
  switch (type) {
    case 'entity.too.large':
      return tooLarge('request body');
    case 'encoding.unsupported':
      return new ApiError(400, 'request body must be UTF-8 JSON, optionally with Content-Encoding gzip or deflate');
    case 'request.size.invalid':
      return new ApiError(400, 'request body length does not match its Content-Length header');
    case 'request.aborted':
      return new ApiError(400, 'request body ended before it was complete');
    default:
      break;
  }
  if (error instanceof SyntaxError) {
    if (/only supports object and array/.test(message)) return new ApiError(400, 'request body must be a JSON object');
    if (/prototype/.test(message)) return new ApiError(400, 'request body must not contain a "__proto__" or "constructor.prototype" key');
    const position = /position (\d+)/.exec(message)?.[1];
    return new ApiError(400, `request body is not valid JSON${position === undefined ? '' : ` (error at character ${position})`}`);
  }
  // Anything else (the socket failed mid-body…) is ours to log, not the client's to read.
  return error instanceof ApiError ? error : Object.assign(new Error('reading the request body failed'), { cause: error });
}
