import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { createLocalRecordingStore, recordingsDir } from '../../apps/shared/src/adapters/local-recording-store.js';
import type { NewRecording, RecordingStore } from '../../apps/shared/src/ports/recording-store.port.js';

/** The directory adapter of RecordingStore: tenant scoping, safe names, atomic 0600 files. */
const CALL = 'CA0123456789abcdef0123456789abcdef';
const STREAM = '11111111-1111-4111-8111-111111111111';

function store(t: Test): { root: string; store: RecordingStore } {
  const root = mkdtempSync(join(tmpdir(), 'earshot-recstore-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return { root, store: createLocalRecordingStore(root) };
}

const recording = (over: Partial<NewRecording> = {}): NewRecording => ({
  callSid: CALL,
  customerStreamId: STREAM,
  agentStreamId: '22222222-2222-4222-8222-222222222222',
  durationMs: 10,
  mediaStartMs: 0,
  complete: true,
  truncated: false,
  createdAtMs: 1,
  ...over,
});

async function bytesOf(s: RecordingStore, tenant: string, id: string): Promise<Buffer | null> {
  const found = await s.get(tenant, id);
  if (!found) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of found.audio) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every file and folder under `dir`, relative. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? [`${prefix}${e.name}/`, ...walk(join(dir, e.name), `${prefix}${e.name}/`)] : [`${prefix}${e.name}`],
  );
}

t.test('put, list and get round-trip; files are 0600, folders 0700, no temp file left', async (t) => {
  const { root, store: s } = store(t);
  const wav = Buffer.from('RIFF....WAVE fake');
  const info = await s.put('app_a', recording(), wav);
  t.match(info, { recordingId: `${CALL}_${STREAM}`, bytes: wav.length });
  t.same(await s.list('app_a', CALL), [info]);
  t.same(await bytesOf(s, 'app_a', info.recordingId), wav);
  const files = walk(root);
  t.same(
    files.filter((f) => f.includes('.tmp')),
    [],
    'no temp files',
  );
  for (const f of files) {
    const mode = statSync(join(root, f)).mode & 0o777;
    t.equal(mode, f.endsWith('/') ? 0o700 : 0o600, `${f} mode ${mode.toString(8)}`);
  }
  const replaced = await s.put('app_a', recording({ durationMs: 20 }), Buffer.from('second'));
  t.same(await s.list('app_a', CALL), [replaced], 'same session: replaced, not duplicated');
  t.same(await bytesOf(s, 'app_a', info.recordingId), Buffer.from('second'));
});

t.test('another tenant sees nothing', async (t) => {
  const { store: s } = store(t);
  const info = await s.put('app_a', recording(), Buffer.from('x'));
  t.same(await s.list('app_b', CALL), []);
  t.equal(await s.get('app_b', info.recordingId), null);
  t.same(await s.list('app_a', 'CAffffffffffffffffffffffffffffffff'), [], 'unknown call: empty');
});

t.test('ids from outside never become paths', async (t) => {
  const { root, store: s } = store(t);
  await s.put('../../escape', recording(), Buffer.from('x'));
  t.same(
    readdirSync(root).map((n) => n.startsWith('t-')),
    [true],
    'the tenant id is encoded into one folder name',
  );
  t.notOk(existsSync(join(root, '..', '..', 'escape')));
  await t.rejects(s.put('app_a', recording({ callSid: '../x' }), Buffer.from('x')), /call id/);
  await t.rejects(s.put('app_a', recording({ customerStreamId: 'a/../../b' }), Buffer.from('x')), /stream id/);
  t.same(await s.list('app_a', '../t-00'), []);
  for (const id of [`${CALL}_../../x`, `../${CALL}_${STREAM}`, CALL, '', `${CALL}_${STREAM}/..`]) {
    t.equal(await s.get('app_a', id), null, `get(${JSON.stringify(id)}) is null`);
  }
});

t.test('the directory defaults to <EARSHOT_DATA_DIR>/recordings', async (t) => {
  t.equal(recordingsDir({ EARSHOT_DATA_DIR: '/d', EARSHOT_RECORDINGS_DIR: undefined }), join('/d', 'recordings'));
  t.equal(recordingsDir({ EARSHOT_DATA_DIR: '/d', EARSHOT_RECORDINGS_DIR: '/r' }), '/r');
});
