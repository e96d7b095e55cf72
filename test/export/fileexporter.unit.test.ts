import type { Test } from 'tap';
import t from 'tap';
import { DownloadLinks } from '../../apps/api/src/http/fileexporter/download-links.js';
import { exportDay } from '../../apps/export/src/day-export.js';
import { createLocalFeedStorage, exportDir } from '../../apps/shared/src/adapters/local-feed-storage.js';
import type { EventLog } from '../../apps/shared/src/ports/event-log.port.js';
import type { Runtime } from '../../apps/shared/src/runtime.js';
import { AppAdmin } from '../../apps/shared/src/tenants/app-admin.js';
import { TOPICS } from '../../apps/shared/src/topics.js';
import { startTestApi } from '../api/support/api-harness.js';
import { gunzipText, memorySource, stored } from './support.js';

/** SPEC §3.5 over HTTP: the seven fileexporter routes, tenant isolation, bad bodies, signed links. Every response is checked against /openapi.json. */
const P = '/fileexporter/v1/static';
const D1 = Date.UTC(2026, 10, 25);
const H = 3_600_000;
type Err = { error: { code: string; message: string; requestId: string } };

async function setup(t: Test, options: { wrap?: (runtime: Runtime) => Runtime } = {}) {
  const api = await startTestApi(t, options);
  const other = await api.newTenant('tenant b');
  const rows = [
    stored({ tenantId: api.tenant.apiId, occurredAtMs: D1 + 2 * H, text: 'first of a' }),
    stored({ tenantId: api.tenant.apiId, occurredAtMs: D1 + 2 * H + 5, text: 'second of a' }),
    stored({ tenantId: api.tenant.apiId, occurredAtMs: D1 + 14 * H, text: 'afternoon of a' }),
    stored({ tenantId: other.apiId, occurredAtMs: D1 + 9 * H, text: 'only of b' }),
  ];
  await exportDay({
    source: memorySource(rows),
    storage: createLocalFeedStorage(exportDir(api.runtime.config)),
    date: '2026-11-25',
    maxFileBytes: 1 << 20,
  });
  return { api, other };
}

const body = { feed: 'utterances', version: '1', format: 'jsonl', date: '2026-11-25' };

t.test('walks feed → version → format → date → interval → file and downloads through the signed link', async (t) => {
  const { api } = await setup(t);
  t.same((await api.call('POST', `${P}/listfeeds`)).body, { feeds: ['utterances'] });
  t.same((await api.call('POST', `${P}/listfeeds`, { json: {} })).body, { feeds: ['utterances'] }, 'an empty object is fine too');
  t.same((await api.call('POST', `${P}/listfeedversions`, { json: { feed: 'utterances' } })).body, { feed: 'utterances', versions: ['1'] });
  t.same((await api.call('POST', `${P}/listfeedformats`, { json: { feed: 'utterances', version: '1' } })).body, {
    feed: 'utterances',
    version: '1',
    formats: ['jsonl', 'csv'],
  });
  const { date: _d, ...noDate } = body;
  t.same((await api.call('POST', `${P}/listfeeddates`, { json: noDate })).body, { ...noDate, dates: ['2026-11-25'] });
  t.same((await api.call('POST', `${P}/listfeedintervals`, { json: body })).body, { ...body, intervals: ['hr=02', 'hr=14'] });
  t.same((await api.call('POST', `${P}/listfeedfiles`, { json: { ...body, interval: 'hr=02' } })).body, {
    ...body,
    interval: 'hr=02',
    files: ['utterances-2026-11-25-02-0001.jsonl.gz'],
  });
  t.same((await api.call('POST', `${P}/listfeedfiles`, { json: body })).body, {
    ...body,
    files: ['utterances-2026-11-25-02-0001.jsonl.gz', 'utterances-2026-11-25-14-0001.jsonl.gz'],
  });
  const got = await api.call<{ url: string; interval: string; expiresAt: string }>('POST', `${P}/getfeedfile`, {
    json: { ...body, fileName: 'utterances-2026-11-25-14-0001.jsonl.gz' },
  });
  t.equal(got.status, 200);
  t.equal(got.body.interval, 'hr=14', 'the interval is found when the request leaves it out');
  t.ok(got.body.url.startsWith(`${api.url}/fileexporter/v1/download/`));
  t.ok(Date.parse(got.body.expiresAt) > Date.now());

  // The link needs no credentials.
  const res = await fetch(got.body.url);
  const bytes = Buffer.from(await res.arrayBuffer());
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/gzip');
  t.match(res.headers.get('content-disposition'), /utterances-2026-11-25-14-0001\.jsonl\.gz/);
  t.equal(Number(res.headers.get('content-length')), bytes.length);
  t.match(JSON.parse(gunzipText(bytes)), { utterance_text: 'afternoon of a', created_ts: new Date(D1 + 14 * H).toISOString() });
});

t.test("tenant isolation: B never lists or gets A's files, and A's link is refused with B's id", async (t) => {
  const { api, other } = await setup(t);
  t.same((await api.call('POST', `${P}/listfeedintervals`, { json: body, as: other })).body, { ...body, intervals: ['hr=09'] });
  const b = await api.call<Err>('POST', `${P}/listfeedfiles`, { json: { ...body, interval: 'hr=02' }, as: other });
  t.equal(b.status, 404);
  t.match(b.body.error.message, /no files in interval hr=02/);
  const steal = await api.call<Err>('POST', `${P}/getfeedfile`, {
    json: { ...body, fileName: 'utterances-2026-11-25-02-0001.jsonl.gz' },
    as: other,
  });
  t.equal(steal.status, 404);

  const third = await api.newTenant('tenant c');
  t.same(
    (
      await api.call<{ dates: string[] }>('POST', `${P}/listfeeddates`, {
        json: { feed: 'utterances', version: '1', format: 'csv' },
        as: third,
      })
    ).body.dates,
    [],
  );
  const none = await api.call<Err>('POST', `${P}/listfeedintervals`, { json: body, as: third });
  t.equal(none.status, 404);
  t.match(none.body.error.message, /not exported yet, or no utterances that day/);

  const link = await api.call<{ url: string }>('POST', `${P}/getfeedfile`, {
    json: { ...body, fileName: 'utterances-2026-11-25-02-0001.jsonl.gz' },
  });
  const path = new URL(link.body.url).pathname;
  const wrong = await api.call<Err>('GET', path, { as: other });
  t.equal(wrong.status, 403);
  t.match(wrong.body.error, { code: '403-01', message: 'this download link was issued to another app' });
  t.equal((await api.call('GET', path, { as: api.tenant })).status, 200, 'the owner may send its id');

  // Without credentials the listing routes are closed.
  t.equal((await api.call('POST', `${P}/listfeeds`, { as: null })).status, 401);
});

t.test('signed links: altered, forged with another key, expired, or of a disabled app are refused; downloads are audited', async (t) => {
  const audited: string[] = [];
  const { api } = await setup(t, {
    wrap: (runtime) => {
      // A proxy, not a spread: the event log is a class instance.
      const log = new Proxy(runtime.eventLog, {
        get(target, prop) {
          if (prop === 'produce') {
            return async (topic: unknown, records: { value: unknown }[]) => {
              if (topic === (TOPICS.audit as unknown)) for (const r of records) audited.push((r.value as { action: string }).action);
              return target.produce(topic as never, records as never);
            };
          }
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as EventLog;
      return { ...runtime, eventLog: log };
    },
  });
  const link = await api.call<{ url: string }>('POST', `${P}/getfeedfile`, {
    json: { ...body, fileName: 'utterances-2026-11-25-02-0001.jsonl.gz' },
  });
  const token = new URL(link.body.url).pathname.split('/').pop() as string;
  const [payload, mac] = token.split('.') as [string, string];
  const download = (tok: string) => api.call<Err>('GET', `/fileexporter/v1/download/${tok}`, { as: null });

  // Change the file name inside the payload: the mac no longer matches.
  const altered = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), fileName: 'utterances-2026-11-25-14-0001.jsonl.gz' }),
  ).toString('base64url');
  for (const bad of [`${altered}.${mac}`, `${payload}.${mac.slice(0, -2)}AA`, payload, `${payload}.`, 'x'.repeat(3000)]) {
    const res = await download(bad);
    t.equal(res.status, 403, `refused: ${bad.slice(0, 30)}`);
    t.match(res.body.error, { code: '403-01', message: /download link is not valid/ });
  }
  const key = api.runtime.credentials.derive('earshot feed download links');
  const file = {
    tenantId: api.tenant.apiId,
    feed: 'utterances',
    version: '1',
    format: 'jsonl' as const,
    date: '2026-11-25',
    interval: 'hr=02',
    fileName: 'utterances-2026-11-25-02-0001.jsonl.gz',
  };
  const forged = new DownloadLinks(new Uint8Array(32).fill(1), 60_000).sign(file);
  t.equal((await download(forged.token)).status, 403, 'another key');
  const expired = new DownloadLinks(key, 1000, () => Date.now() - 10_000).sign(file);
  const late = await download(expired.token);
  t.equal(late.status, 403);
  t.match(late.body.error.message, /download link expired at .*; request a new one with getfeedfile/);
  const gone = new DownloadLinks(key, 60_000).sign({ ...file, fileName: 'utterances-2026-11-25-03-0001.jsonl.gz' });
  t.equal((await download(gone.token)).status, 404, 'a valid link to a file that is not there');
  t.same(
    audited.filter((a) => a === 'feed_file.downloaded'),
    [],
    'nothing refused was audited',
  );

  t.equal((await download(token)).status, 200);
  t.same(
    audited.filter((a) => a === 'feed_file.downloaded'),
    ['feed_file.downloaded'],
  );

  await new AppAdmin(api.runtime.eventLog, api.runtime.credentials).disable(api.tenant.apiId, 'test');
  const deadline = Date.now() + 5000;
  while (!api.runtime.apps.get(api.tenant.apiId)?.disabled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const disabled = await download(token);
  t.equal(disabled.status, 403);
  t.match(disabled.body.error.message, /disabled/);
});

t.test('bad bodies get 400 naming the field; unknown levels 404 naming the level', async (t) => {
  const { api } = await setup(t);
  const cases: [string, unknown, number, RegExp][] = [
    ['listfeedversions', {}, 400, /feed is required/],
    ['listfeedversions', { feed: 7 }, 400, /feed must be a string/],
    ['listfeedversions', { feed: '../etc' }, 400, /feed must be a feed name from listfeeds/],
    ['listfeedversions', { feed: 'calls' }, 404, /feed 'calls' not found/],
    ['listfeedformats', { feed: 'utterances' }, 400, /version is required/],
    ['listfeedformats', { feed: 'utterances', version: 1 }, 400, /version must be a string/],
    ['listfeedformats', { feed: 'utterances', version: '9' }, 404, /version '9' of feed 'utterances' not found/],
    ['listfeeddates', { feed: 'utterances', version: '1', format: 'parquet' }, 400, /format must be one of "jsonl", "csv"/],
    ['listfeedintervals', { ...body, date: '2026-02-30' }, 400, /date is not a calendar date/],
    ['listfeedintervals', { ...body, date: '25/11/2026' }, 400, /date must be a date YYYY-MM-DD/],
    ['listfeedintervals', { ...body, date: '2026-11-24' }, 404, /no files for utterances\/1\/jsonl on 2026-11-24/],
    ['listfeedfiles', { ...body, interval: 'hr=24' }, 400, /interval must be an interval from listfeedintervals/],
    ['listfeedfiles', { ...body, interval: 'hr=03' }, 404, /no files in interval hr=03/],
    ['getfeedfile', body, 400, /fileName is required/],
    ['getfeedfile', { ...body, fileName: '../../secrets.key' }, 400, /fileName must be a file name from listfeedfiles/],
    ['getfeedfile', { ...body, fileName: 'nope.jsonl.gz' }, 404, /file 'nope.jsonl.gz' not found on 2026-11-25/],
  ];
  for (const [route, json, status, message] of cases) {
    const res = await api.call<Err>('POST', `${P}/${route}`, { json });
    t.equal(res.status, status, `${route} ${JSON.stringify(json)}`);
    t.match(res.body.error?.message, message);
  }
  const notJson = await api.call<Err>('POST', `${P}/listfeedversions`, {
    raw: 'feed=utterances',
    headers: { 'content-type': 'text/plain' },
  });
  t.equal(notJson.status, 400);
  const broken = await api.call<Err>('POST', `${P}/listfeedversions`, { raw: '{"feed":', headers: { 'content-type': 'application/json' } });
  t.equal(broken.status, 400);
  t.match(broken.body.error.message, /not valid JSON/);
});
