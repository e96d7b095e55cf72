import type { Readable } from 'node:stream';

/**
 * Where call recordings are kept (SPEC §6 `audioRecordingAllowed`): one WAV per transcription
 * session (start..stop) of a call, customer left, agent right, 8 kHz 16-bit PCM. The asr
 * consumer writes them when a session closes; the API lists and serves them to the tenant.
 * Every operation is scoped by tenant: another tenant's recording is not found.
 *
 * One adapter today, `adapters/local-recording-store.ts` (a directory: local disk in embedded
 * mode, a volume shared by the asr and api nodes in distributed mode). An object store (S3, GCS)
 * fits behind the same port: `put` is one object write, `get` one streamed read, `list` a prefix
 * listing of `<tenant>/<call>/`.
 */
export interface RecordingInfo {
  /** `<Call SID>_<customer streamId>`: names the call and the session, nothing else. */
  readonly recordingId: string;
  readonly callSid: string;
  readonly customerStreamId: string;
  readonly agentStreamId: string;
  /** Size of the WAV file. */
  readonly bytes: number;
  readonly durationMs: number;
  /** Media-stream time (Twilio timestamps, the clock of utterance startMs/endMs) of the first sample. */
  readonly mediaStartMs: number;
  /** False when the asr consumer took the session over mid-way (crash, rebalance): earlier audio may be missing. */
  readonly complete: boolean;
  /** True when audio past EARSHOT_RECORDINGS_MAX_DURATION_S was dropped. */
  readonly truncated: boolean;
  readonly createdAtMs: number;
}

export type NewRecording = Omit<RecordingInfo, 'recordingId' | 'bytes'>;

export interface StoredRecording {
  readonly info: RecordingInfo;
  /** The WAV, streamed (a long call's recording is hundreds of MB). */
  readonly audio: Readable;
}

export interface RecordingStore {
  /** Stores (or replaces: same call and session, same id) a recording; atomic, readers never see half a file. */
  put(tenantId: string, recording: NewRecording, wav: Buffer): Promise<RecordingInfo>;
  /** The call's recordings of this tenant, oldest first; empty when there are none. */
  list(tenantId: string, callSid: string): Promise<RecordingInfo[]>;
  /** null when the id is malformed, unknown, or another tenant's. */
  get(tenantId: string, recordingId: string): Promise<StoredRecording | null>;
}

/** Ids safe in a file name, a URL path and an object key, whatever the adapter. */
const CALL_ID = /^[A-Za-z0-9]{1,64}$/;
const STREAM_ID = /^[A-Za-z0-9-]{1,64}$/;

export const isRecordingCallId = (callSid: string): boolean => CALL_ID.test(callSid);

export function recordingIdOf(callSid: string, customerStreamId: string): string {
  if (!CALL_ID.test(callSid)) throw new Error(`recording: call id ${JSON.stringify(callSid.slice(0, 80))} is not [A-Za-z0-9]{1,64}`);
  if (!STREAM_ID.test(customerStreamId)) {
    throw new Error(`recording: stream id ${JSON.stringify(customerStreamId.slice(0, 80))} is not [A-Za-z0-9-]{1,64}`);
  }
  return `${callSid}_${customerStreamId}`;
}

export function parseRecordingId(recordingId: string): { callSid: string; customerStreamId: string } | null {
  const at = recordingId.indexOf('_');
  if (at < 0) return null;
  const callSid = recordingId.slice(0, at);
  const customerStreamId = recordingId.slice(at + 1);
  return CALL_ID.test(callSid) && STREAM_ID.test(customerStreamId) ? { callSid, customerStreamId } : null;
}
