import type { z } from 'zod';
import type { AuditTrail } from '../../../../shared/src/audit/audit-trail.js';
import { FEED_CATALOG, type FeedDayRef, type FeedStorage } from '../../../../shared/src/ports/feed-storage.port.js';
import type { AppDirectory } from '../../../../shared/src/tenants/app-directory.js';
import { tenantOf } from '../context.js';
import { ApiError, type ErrorStatus } from '../errors.js';
import type { NamedSchema, RouteSpec } from '../route.js';
import { validate } from '../validation.js';
import type { DownloadLinks } from './download-links.js';
import {
  DownloadParams,
  GetFeedFileRequest,
  GetFeedFileResponse,
  ListFeedDatesRequest,
  ListFeedDatesResponse,
  ListFeedFilesRequest,
  ListFeedFilesResponse,
  ListFeedFormatsRequest,
  ListFeedFormatsResponse,
  ListFeedIntervalsRequest,
  ListFeedIntervalsResponse,
  ListFeedsResponse,
  ListFeedVersionsRequest,
  ListFeedVersionsResponse,
} from './fileexporter.schemas.js';

/**
 * The File Exporter (SPEC §3.5): seven POST routes that walk feed → version → format → date →
 * interval → file for the authenticated app, and the GET route behind the signed links that
 * `getfeedfile` returns. Everything is scoped by tenant in `FeedStorage`: another app's files
 * are never listed and cannot be named. A level that does not exist is a 404 naming it.
 * A download is audited (`feed_file.downloaded`) before a byte is sent; no audit, no file.
 */
export interface FileExporterDeps {
  readonly feeds: FeedStorage;
  readonly links: DownloadLinks;
  readonly audit: AuditTrail;
  readonly apps: AppDirectory;
  /** Origin of download links; default the request's own (`EARSHOT_EXPORT_URL_BASE` behind a proxy). */
  readonly linkBase?: string;
}

export const FILEEXPORTER_PATH = '/fileexporter/v1/static';
export const DOWNLOAD_PATH = '/fileexporter/v1/download';
const ERRORS: readonly ErrorStatus[] = [400, 401, 404, 413, 429, 500, 503];

const union = (...lists: readonly (readonly string[])[]): string[] => [...new Set(lists.flat())];
const byNumber = (a: string, b: string): number => Number(a) - Number(b);

function post(
  name: string,
  summary: string,
  description: string,
  request: NamedSchema | undefined,
  response: NamedSchema,
  handle: RouteSpec['handle'],
): RouteSpec {
  return {
    method: 'post',
    path: `${FILEEXPORTER_PATH}/${name}`,
    operationId: name,
    summary,
    description,
    tag: 'file exporter',
    authenticated: true,
    ...(request ? { requestBody: request } : {}),
    success: { description: summary, body: response },
    errors: request ? ERRORS : ERRORS.filter((status) => status !== 400 && status !== 413 && status !== 404),
    handle,
  };
}

export function fileExporterRoutes(deps: FileExporterDeps): RouteSpec[] {
  const { feeds } = deps;

  const versionsOf = async (tenantId: string, feed: string): Promise<string[]> => {
    const versions = union(Object.keys(FEED_CATALOG[feed] ?? {}), await feeds.listVersions(tenantId, feed)).sort(byNumber);
    if (versions.length === 0) throw new ApiError(404, `feed '${feed}' not found; listfeeds names the feeds`);
    return versions;
  };
  const formatsOf = async (tenantId: string, feed: string, version: string): Promise<string[]> => {
    if (!(await versionsOf(tenantId, feed)).includes(version)) {
      throw new ApiError(404, `version '${version}' of feed '${feed}' not found; listfeedversions names the versions`);
    }
    return union(FEED_CATALOG[feed]?.[version] ?? [], await feeds.listFormats(tenantId, feed, version));
  };
  const checkFormat = async (tenantId: string, day: Omit<FeedDayRef, 'date'>): Promise<void> => {
    if (!(await formatsOf(tenantId, day.feed, day.version)).includes(day.format)) {
      throw new ApiError(404, `format '${day.format}' of ${day.feed}/${day.version} not found; listfeedformats names the formats`);
    }
  };
  const intervalsOf = async (tenantId: string, day: FeedDayRef): Promise<string[]> => {
    await checkFormat(tenantId, day);
    const intervals = await feeds.listIntervals(tenantId, day);
    if (intervals.length === 0) {
      throw new ApiError(
        404,
        `no files for ${day.feed}/${day.version}/${day.format} on ${day.date}: not exported yet, or no utterances that day; listfeeddates names the dates`,
      );
    }
    return intervals;
  };
  const checkInterval = async (tenantId: string, day: FeedDayRef, interval: string | undefined): Promise<void> => {
    const intervals = await intervalsOf(tenantId, day);
    if (interval !== undefined && !intervals.includes(interval)) {
      throw new ApiError(404, `no files in interval ${interval} of ${day.date}; listfeedintervals names the intervals`);
    }
  };

  return [
    post(
      'listfeeds',
      'List feeds',
      'The feeds this app can export. No request body is needed (an empty JSON object is accepted).',
      undefined,
      { id: 'ListFeedsResponse', schema: ListFeedsResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const stored = await feeds.listFeeds(tenant.apiId);
        ctx.body = { feeds: union(Object.keys(FEED_CATALOG), stored).sort() } satisfies z.infer<typeof ListFeedsResponse>;
      },
    ),
    post(
      'listfeedversions',
      'List feed versions',
      'The versions of a feed.',
      { id: 'ListFeedVersionsRequest', schema: ListFeedVersionsRequest },
      { id: 'ListFeedVersionsResponse', schema: ListFeedVersionsResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const { feed } = validate(ListFeedVersionsRequest, ctx.request.body);
        ctx.body = { feed, versions: await versionsOf(tenant.apiId, feed) } satisfies z.infer<typeof ListFeedVersionsResponse>;
      },
    ),
    post(
      'listfeedformats',
      'List feed formats',
      'The file formats of a feed version: "jsonl" (one JSON object per line) and "csv" (RFC 4180 with a header line), both gzip-compressed.',
      { id: 'ListFeedFormatsRequest', schema: ListFeedFormatsRequest },
      { id: 'ListFeedFormatsResponse', schema: ListFeedFormatsResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const { feed, version } = validate(ListFeedFormatsRequest, ctx.request.body);
        ctx.body = { feed, version, formats: await formatsOf(tenant.apiId, feed, version) } satisfies z.infer<
          typeof ListFeedFormatsResponse
        >;
      },
    ),
    post(
      'listfeeddates',
      'List feed dates',
      'The UTC dates that have files. The export of a day runs daily at 02:00 UTC (configurable) for the previous day; a rerun replaces the day at once.',
      { id: 'ListFeedDatesRequest', schema: ListFeedDatesRequest },
      { id: 'ListFeedDatesResponse', schema: ListFeedDatesResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const request = validate(ListFeedDatesRequest, ctx.request.body);
        await checkFormat(tenant.apiId, request);
        const dates = await feeds.listDates(tenant.apiId, request.feed, request.version, request.format);
        ctx.body = { ...request, dates } satisfies z.infer<typeof ListFeedDatesResponse>;
      },
    ),
    post(
      'listfeedintervals',
      'List feed intervals',
      'The "hr=HH" intervals of a date (the UTC hour the utterances were created in) that have files.',
      { id: 'ListFeedIntervalsRequest', schema: ListFeedIntervalsRequest },
      { id: 'ListFeedIntervalsResponse', schema: ListFeedIntervalsResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const request = validate(ListFeedIntervalsRequest, ctx.request.body);
        ctx.body = { ...request, intervals: await intervalsOf(tenant.apiId, request) } satisfies z.infer<typeof ListFeedIntervalsResponse>;
      },
    ),
    post(
      'listfeedfiles',
      'List feed files',
      'The files of an interval, or of the whole date without `interval`. A large hour is split into several parts.',
      { id: 'ListFeedFilesRequest', schema: ListFeedFilesRequest },
      { id: 'ListFeedFilesResponse', schema: ListFeedFilesResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const request = validate(ListFeedFilesRequest, ctx.request.body);
        await checkInterval(tenant.apiId, request, request.interval);
        const files = await feeds.listFiles(tenant.apiId, request, request.interval);
        ctx.body = { ...request, files: files.map((file) => file.fileName) } satisfies z.infer<typeof ListFeedFilesResponse>;
      },
    ),
    post(
      'getfeedfile',
      'Get a feed file',
      'A short-lived signed link to download one file (GET, no headers needed; EARSHOT_EXPORT_URL_TTL_S, 5 minutes by default). `interval` may be left out: file names are unique within a date.',
      { id: 'GetFeedFileRequest', schema: GetFeedFileRequest },
      { id: 'GetFeedFileResponse', schema: GetFeedFileResponse },
      async (ctx) => {
        const tenant = tenantOf(ctx);
        const request = validate(GetFeedFileRequest, ctx.request.body);
        await checkInterval(tenant.apiId, request, request.interval);
        const file = (await feeds.listFiles(tenant.apiId, request, request.interval)).find((f) => f.fileName === request.fileName);
        if (!file) throw new ApiError(404, `file '${request.fileName}' not found on ${request.date}; listfeedfiles names the files`);
        const { feed, version, format, date, fileName } = request;
        const link = deps.links.sign({ tenantId: tenant.apiId, feed, version, format, date, interval: file.interval, fileName });
        ctx.body = {
          feed,
          version,
          format,
          date,
          interval: file.interval,
          fileName,
          url: `${deps.linkBase ?? `${ctx.protocol}://${ctx.host}`}${DOWNLOAD_PATH}/${link.token}`,
          expiresAt: new Date(link.expiresAtMs).toISOString(),
        } satisfies z.infer<typeof GetFeedFileResponse>;
      },
    ),
    downloadRoute(deps),
  ];
}

function downloadRoute(deps: FileExporterDeps): RouteSpec {
  return {
    method: 'get',
    path: `${DOWNLOAD_PATH}/:token`,
    operationId: 'downloadFeedFile',
    summary: 'Download a feed file (signed link)',
    description:
      'The link getfeedfile returned: the gzip file itself. Needs no asapp-* headers (the signed link is the credential); a link that was altered, has expired, or belongs to a disabled app is refused with 403, and so is one sent with the asapp-api-id of another app. The download is audited.',
    tag: 'file exporter',
    authenticated: false,
    params: DownloadParams,
    success: { description: 'The gzip-compressed feed file', body: { contentType: 'application/gzip' } },
    errors: [400, 403, 404, 500, 503],
    handle: async (ctx) => {
      const { token } = validate(DownloadParams, (ctx as unknown as { params: unknown }).params, 'path');
      const check = deps.links.verify(token);
      if (!check.ok) {
        throw new ApiError(
          403,
          check.reason === 'expired'
            ? `download link expired at ${new Date(check.expiredAtMs ?? 0).toISOString()}; request a new one with getfeedfile`
            : 'download link is not valid (altered or incomplete); request a new one with getfeedfile',
        );
      }
      const link = check.payload;
      const app = deps.apps.get(link.tenantId);
      if (!app || app.disabled) throw new ApiError(403, 'the app this download link was issued to is disabled');
      const caller = ctx.get('asapp-api-id');
      if (caller && caller !== link.tenantId) throw new ApiError(403, 'this download link was issued to another app');
      const file = await deps.feeds.openFile(link.tenantId, link, link.fileName, link.interval);
      if (!file)
        throw new ApiError(
          404,
          `feed file ${link.fileName} no longer exists (its day was exported again); list the files and request a new link`,
        );
      try {
        await deps.audit.record({
          appId: link.tenantId,
          action: 'feed_file.downloaded',
          requestId: ctx.state.requestId,
          callSid: null,
          clientAddress: ctx.ip,
        });
      } catch (error) {
        file.body.destroy();
        throw error;
      }
      ctx.type = 'application/gzip';
      ctx.set('content-disposition', `attachment; filename="${link.fileName}"`);
      ctx.set('cache-control', 'private, no-store');
      ctx.body = file.body;
      ctx.length = file.info.bytes;
    },
  };
}
