import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config.js';
import {
  isRecordingCallId,
  type NewRecording,
  parseRecordingId,
  type RecordingInfo,
  type RecordingStore,
  recordingIdOf,
  type StoredRecording,
} from '../ports/recording-store.port.js';

/**
 * `RecordingStore` on a directory: `<root>/<hex(tenant id)>/<Call SID>/<customer streamId>.wav`
 * plus `.json` (the `RecordingInfo`). Nothing from a request reaches a path unchecked: the
 * tenant id is hex-encoded, call and stream ids must match the port's id patterns. Files are
 * written to a temp name (mode 0600, fsynced) and renamed into place, the WAV before its
 * `.json`, so a listed recording is always whole. Directories are 0700.
 *
 * Distributed mode: the asr nodes write and the api nodes read, so `root` must be one volume
 * they all mount (NFS, EFS, a shared PVC), or an object-store adapter replaces this one.
 */
export function recordingsDir(config: Pick<Config, 'EARSHOT_RECORDINGS_DIR' | 'EARSHOT_DATA_DIR'>): string {
  return config.EARSHOT_RECORDINGS_DIR ?? join(config.EARSHOT_DATA_DIR, 'recordings');
}

const MAX_TENANT_BYTES = 100;

export function createLocalRecordingStore(root: string): RecordingStore {
  const tenantDir = (tenantId: string): string => {
    const bytes = Buffer.from(tenantId, 'utf8');
    if (bytes.length === 0 || bytes.length > MAX_TENANT_BYTES) throw new Error(`recording: tenant id of ${bytes.length} bytes`);
    return join(root, `t-${bytes.toString('hex')}`);
  };
  const callDir = (tenantId: string, callSid: string): string | null => {
    if (!isRecordingCallId(callSid)) return null;
    return join(tenantDir(tenantId), callSid);
  };

  async function readInfo(path: string): Promise<RecordingInfo | null> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as RecordingInfo;
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  return {
    async put(tenantId: string, recording: NewRecording, wav: Buffer): Promise<RecordingInfo> {
      const recordingId = recordingIdOf(recording.callSid, recording.customerStreamId);
      const dir = join(tenantDir(tenantId), recording.callSid);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const info: RecordingInfo = { recordingId, ...recording, bytes: wav.length };
      await writeAtomically(join(dir, `${recording.customerStreamId}.wav`), wav);
      await writeAtomically(join(dir, `${recording.customerStreamId}.json`), Buffer.from(JSON.stringify(info)));
      return info;
    },

    async list(tenantId: string, callSid: string): Promise<RecordingInfo[]> {
      const dir = callDir(tenantId, callSid);
      if (dir === null) return [];
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if (isMissing(error)) return [];
        throw error;
      }
      const infos: RecordingInfo[] = [];
      for (const name of names) {
        if (name.startsWith('.') || !name.endsWith('.json')) continue; // temp files, WAVs
        const info = await readInfo(join(dir, name));
        if (info) infos.push(info);
      }
      return infos.sort((a, b) => a.createdAtMs - b.createdAtMs || a.recordingId.localeCompare(b.recordingId));
    },

    async get(tenantId: string, recordingId: string): Promise<StoredRecording | null> {
      const ids = parseRecordingId(recordingId);
      if (!ids) return null;
      const dir = join(tenantDir(tenantId), ids.callSid);
      const info = await readInfo(join(dir, `${ids.customerStreamId}.json`));
      if (!info) return null;
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        handle = await open(join(dir, `${ids.customerStreamId}.wav`), 'r');
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
      // Opened before returning: a replacement renamed in meanwhile cannot mix two files.
      const size = (await handle.stat()).size;
      return { info: { ...info, bytes: size }, audio: createReadStream('', { fd: handle, autoClose: true }) };
    },
  };
}

async function writeAtomically(path: string, data: Buffer): Promise<void> {
  const dir = join(path, '..');
  const temp = join(dir, `.${randomUUID()}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
