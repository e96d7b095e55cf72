import { z } from 'zod';
import {
  FEED_DATE_PATTERN,
  FEED_FILE_NAME_PATTERN,
  FEED_FORMATS,
  FEED_INTERVAL_PATTERN,
  FEED_NAME_PATTERN,
  FEED_VERSION_PATTERN,
} from '../../../../shared/src/ports/feed-storage.port.js';

/**
 * Request and response bodies of the File Exporter (SPEC §3.5), with ASAPP's field names:
 * requests name the path walked so far (`feed`, `version`, `format`, `date`, `interval`,
 * `fileName`), responses echo it and add the list of the next level (`feeds`, `versions`,
 * `formats`, `dates`, `intervals`, `files`) or, for getfeedfile, the download `url`.
 */
const requiredOr =
  (message: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : message;

const isCalendarDate = (date: string): boolean => {
  const ms = Date.parse(`${date}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().startsWith(date);
};

const Feed = z
  .string({ error: requiredOr('must be a string: a feed name from listfeeds') })
  .regex(FEED_NAME_PATTERN, { error: 'must be a feed name from listfeeds, e.g. "utterances"' })
  .describe('A feed name from listfeeds.');
const Version = z
  .string({ error: requiredOr('must be a string: a version from listfeedversions, e.g. "1"') })
  .regex(FEED_VERSION_PATTERN, { error: 'must be a version from listfeedversions, e.g. "1"' })
  .describe('A version from listfeedversions (a string, e.g. "1").');
const Format = z.enum(FEED_FORMATS).describe('A format from listfeedformats.');
const FeedDate = z
  .string({ error: requiredOr('must be a string: a date YYYY-MM-DD from listfeeddates') })
  .regex(FEED_DATE_PATTERN, { error: 'must be a date YYYY-MM-DD (UTC) from listfeeddates' })
  .refine(isCalendarDate, { error: 'is not a calendar date' })
  .describe('A UTC date YYYY-MM-DD from listfeeddates.');
const Interval = z
  .string({ error: requiredOr('must be a string: an interval from listfeedintervals, e.g. "hr=07"') })
  .regex(FEED_INTERVAL_PATTERN, { error: 'must be an interval from listfeedintervals: "hr=" and a two-digit UTC hour 00-23' })
  .describe('An interval from listfeedintervals: "hr=HH", the UTC hour the utterances were created in.');
const FileName = z
  .string({ error: requiredOr('must be a string: a file name from listfeedfiles') })
  .regex(FEED_FILE_NAME_PATTERN, { error: 'must be a file name from listfeedfiles' })
  .describe('A file name from listfeedfiles.');

export const ListFeedVersionsRequest = z.object({ feed: Feed });
export const ListFeedFormatsRequest = z.object({ feed: Feed, version: Version });
export const ListFeedDatesRequest = z.object({ feed: Feed, version: Version, format: Format });
export const ListFeedIntervalsRequest = ListFeedDatesRequest.extend({ date: FeedDate });
export const ListFeedFilesRequest = ListFeedIntervalsRequest.extend({
  interval: Interval.optional().describe('Optional: without it, the files of every interval of the date.'),
});
export const GetFeedFileRequest = ListFeedFilesRequest.extend({ fileName: FileName });

export const ListFeedsResponse = z.object({ feeds: z.array(z.string()) });
export const ListFeedVersionsResponse = z.object({ feed: z.string(), versions: z.array(z.string()) });
export const ListFeedFormatsResponse = z.object({ feed: z.string(), version: z.string(), formats: z.array(z.string()) });
export const ListFeedDatesResponse = z.object({
  feed: z.string(),
  version: z.string(),
  format: z.string(),
  dates: z.array(z.string()).describe('Dates with files, ascending. A date appears once its export has run and it had utterances.'),
});
export const ListFeedIntervalsResponse = z.object({
  feed: z.string(),
  version: z.string(),
  format: z.string(),
  date: z.string(),
  intervals: z.array(z.string()).describe('"hr=HH" intervals (UTC hours) with files, ascending.'),
});
export const ListFeedFilesResponse = z.object({
  feed: z.string(),
  version: z.string(),
  format: z.string(),
  date: z.string(),
  interval: z.string().optional(),
  files: z.array(z.string()).describe('File names (gzip), by interval then part; unique within the date.'),
});
export const GetFeedFileResponse = z.object({
  feed: z.string(),
  version: z.string(),
  format: z.string(),
  date: z.string(),
  interval: z.string().describe('The interval the file is in (also when the request left it out).'),
  fileName: z.string(),
  url: z.string().describe('A signed GET link to the gzip file; no headers needed; refused (403) once expired.'),
  expiresAt: z.iso.datetime().describe('When the link stops working (EARSHOT_EXPORT_URL_TTL_S after issue).'),
});

export const DownloadParams = z.object({
  token: z.string().min(1).max(4096).describe('The signed token from a getfeedfile url.'),
});
