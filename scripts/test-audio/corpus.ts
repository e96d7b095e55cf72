import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { mulawEncodeSample, mulawToPcm16 } from '../../apps/shared/src/audio/mulaw.js';
import { readWav, writeWavPcm16 } from '../../apps/shared/src/audio/wav.js';

/**
 * A small speech corpus with known transcripts and timings, synthesized with festival's
 * most natural voice (cmu_us_slt_arctic_hts) and passed through a telephone channel: sox
 * band-pass 300-3400 Hz, 8 kHz, then mu-law, the format of live calls. Each file is written
 * twice: raw mu-law (`.mulaw`) and a 16-bit PCM WAV of exactly the same samples (`.wav`).
 *
 * - a two-party call: customer and agent on separate tracks, silence on each track while the
 *   other talks; every utterance's true start and end (speech, trimmed of festival's own
 *   silence) are in the manifest;
 * - single sentences, some with spoken numbers (card, phone and account numbers) for redaction.
 *
 * Cached: a second call returns the manifest at once when its version (a hash of everything
 * below) matches. Lives outside the work tree by default (~/.cache/earshot/test-audio).
 */
export interface CorpusUtterance {
  readonly startMs: number;
  readonly endMs: number;
  readonly text: string;
}

export interface CorpusTrack {
  /** Absolute paths. */
  readonly mulaw: string;
  readonly wav: string;
  readonly utterances: readonly CorpusUtterance[];
}

export interface CorpusSentence extends CorpusTrack {
  readonly id: string;
  /** Has spoken digits (for redaction tests). */
  readonly numbers: boolean;
}

export interface CorpusManifest {
  readonly version: string;
  readonly dir: string;
  readonly sampleRate: 8000;
  readonly voice: string;
  readonly call: { readonly durationMs: number; readonly tracks: { readonly customer: CorpusTrack; readonly agent: CorpusTrack } };
  readonly sentences: readonly CorpusSentence[];
}

const VOICE = 'cmu_us_slt_arctic_hts';
const RATE = 8000;

/** The call: [speaker, text, silence before this turn (ms)]. */
const CALL: readonly (readonly ['customer' | 'agent', string, number])[] = [
  ['agent', 'Thank you for calling Acme Bank, this is Sarah speaking. How can I help you today?', 1000],
  ['customer', 'Hi, I think there is a charge on my account that I do not recognize.', 800],
  ['agent', 'I am sorry to hear that. Can you tell me the date of the charge?', 700],
  ['customer', 'It was last Tuesday, at a coffee shop downtown.', 900],
  ['agent', 'Thank you. I can see the transaction here, and I will open a dispute for you now.', 800],
  ['customer', 'Great. How long will that take?', 700],
  ['agent', 'It usually takes five to seven business days. Is there anything else I can help you with?', 900],
  ['customer', 'No, that is all.', 800],
  // Same speaker again after a pause longer than the endpointer's minimum silence: two utterances.
  ['customer', 'Thank you very much for your help.', 1300],
  ['agent', 'You are welcome. Have a wonderful day.', 800],
];

const SENTENCES: readonly (readonly [string, string, boolean])[] = [
  ['card-number', 'My card number is four one one one, one one one one, one one one one, one one one one.', true],
  ['phone-number', 'You can call me back at five five five, one two three, four five six seven.', true],
  ['account-number', 'My account number is nine eight seven six five four three two.', true],
  ['verification-code', 'The verification code is three zero one eight.', true],
  ['address-change', 'I would like to change the mailing address on my account.', false],
  ['hold', 'Please hold for a moment while I transfer you to the billing department.', false],
  ['weather', 'The weather has been cold and rainy all week, so I stayed home.', false],
  ['order', 'My order arrived yesterday, but two of the items were missing from the box.', false],
];

const LEAD_MS = 500;
const TAIL_MS = 700;
const NOISE_RMS = 0.0004; // a quiet line (about -68 dBFS), so silence is not digital zero

export function defaultTestAudioDir(): string {
  return join(homedir(), '.cache', 'earshot', 'test-audio');
}

const VERSION = createHash('sha256')
  .update(JSON.stringify({ format: 2, VOICE, CALL, SENTENCES, LEAD_MS, TAIL_MS, NOISE_RMS }))
  .digest('hex')
  .slice(0, 16);

export interface GenerateOptions {
  log?: (line: string) => void;
}

/** Generates the corpus in `dir` unless it is already there; returns its manifest. */
export function generateTestAudio(dir: string = defaultTestAudioDir(), options: GenerateOptions = {}): CorpusManifest {
  const root = resolve(dir);
  const cached = readManifest(root);
  if (cached) return cached;
  ensureTools(options.log);
  mkdirSync(root, { recursive: true });
  const work = mkdtempSync(join(root, '.work-'));
  try {
    const synth = (text: string, name: string) => synthesize(text, join(work, name));
    options.log?.(`synthesizing ${CALL.length + SENTENCES.length} utterances with festival (${VOICE})`);

    // The call: both tracks the same length, each silent (line noise) while the other talks.
    const turns = CALL.map(([speaker, text, gapMs], i) => ({ speaker, text, gapMs, audio: synth(text, `call-${i}`) }));
    let at = 0;
    const placed = turns.map((turn) => {
      at += Math.round((turn.gapMs * RATE) / 1000);
      const start = at;
      at += turn.audio.length;
      return { ...turn, start, end: at };
    });
    const length = at + Math.round((TAIL_MS * RATE) / 1000);
    const tracks = { customer: '', agent: '' } as Record<'customer' | 'agent', string>;
    const utterances: Record<'customer' | 'agent', CorpusUtterance[]> = { customer: [], agent: [] };
    for (const speaker of ['customer', 'agent'] as const) {
      const samples = noise(length, speaker === 'customer' ? 1 : 2);
      for (const turn of placed.filter((t) => t.speaker === speaker)) {
        samples.set(turn.audio, turn.start);
        utterances[speaker].push({ startMs: toMs(turn.start), endMs: toMs(turn.end), text: turn.text });
      }
      tracks[speaker] = writeTrack(root, `call-${speaker}`, samples);
    }

    const sentences = SENTENCES.map(([id, text, numbers], i) => {
      const speech = synth(text, `sentence-${id}`);
      const lead = Math.round((LEAD_MS * RATE) / 1000);
      const samples = noise(lead + speech.length + Math.round((TAIL_MS * RATE) / 1000), 10 + i);
      samples.set(speech, lead);
      const base = writeTrack(root, `sentence-${id}`, samples);
      return { id, numbers, base, utterances: [{ startMs: toMs(lead), endMs: toMs(lead + speech.length), text }] };
    });

    const manifest = {
      version: VERSION,
      sampleRate: RATE,
      voice: VOICE,
      call: {
        durationMs: toMs(length),
        tracks: {
          customer: { file: tracks.customer, utterances: utterances.customer },
          agent: { file: tracks.agent, utterances: utterances.agent },
        },
      },
      sentences: sentences.map(({ id, numbers, base, utterances }) => ({ id, numbers, file: base, utterances })),
    };
    atomicWrite(join(root, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    options.log?.(`test audio ready in ${root}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const written = readManifest(root);
  if (!written) throw new Error(`test audio: manifest in ${root} unreadable after writing it`);
  return written;
}

interface StoredTrack {
  readonly file: string;
  readonly utterances: CorpusUtterance[];
}

function readManifest(root: string): CorpusManifest | undefined {
  let stored: {
    version?: string;
    call: { durationMs: number; tracks: Record<'customer' | 'agent', StoredTrack> };
    sentences: (StoredTrack & { id: string; numbers: boolean })[];
  };
  try {
    stored = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (stored.version !== VERSION) return undefined;
  const track = (t: StoredTrack): CorpusTrack => ({
    mulaw: join(root, `${t.file}.mulaw`),
    wav: join(root, `${t.file}.wav`),
    utterances: t.utterances,
  });
  const manifest: CorpusManifest = {
    version: VERSION,
    dir: root,
    sampleRate: RATE,
    voice: VOICE,
    call: {
      durationMs: stored.call.durationMs,
      tracks: { customer: track(stored.call.tracks.customer), agent: track(stored.call.tracks.agent) },
    },
    sentences: stored.sentences.map((s) => ({ id: s.id, numbers: s.numbers, ...track(s) })),
  };
  const files = [manifest.call.tracks.customer, manifest.call.tracks.agent, ...manifest.sentences].flatMap((t) => [t.mulaw, t.wav]);
  return files.every((file) => existsSync(file)) ? manifest : undefined;
}

/** festival → sox telephone channel → 8 kHz float samples with festival's own silence trimmed. */
function synthesize(text: string, base: string): Float32Array {
  writeFileSync(`${base}.txt`, text);
  run('text2wave', ['-eval', `(voice_${VOICE})`, `${base}.txt`, '-o', `${base}.raw.wav`]);
  run('sox', [`${base}.raw.wav`, '-r', String(RATE), '-c', '1', '-b', '16', `${base}.wav`, 'sinc', '300-3400', 'gain', '-n', '-3']);
  const samples = readWav(readFileSync(`${base}.wav`), `${base}.wav`).channels[0] as Float32Array;
  // Speech bounds: first and last 10 ms frame with an RMS above -40 dBFS.
  const frame = RATE / 100;
  const loud: number[] = [];
  for (let i = 0; i + frame <= samples.length; i += frame) {
    let energy = 0;
    for (let k = i; k < i + frame; k++) energy += (samples[k] as number) ** 2;
    if (Math.sqrt(energy / frame) > 0.01) loud.push(i);
  }
  if (loud.length === 0) throw new Error(`festival produced silence for: ${text}`);
  return samples.slice(loud[0], (loud[loud.length - 1] as number) + frame);
}

/** Deterministic low-level white noise (xorshift32). */
function noise(length: number, seed: number): Float32Array {
  const out = new Float32Array(length);
  let s = (seed * 2654435761) >>> 0 || 1;
  const scale = NOISE_RMS * Math.sqrt(3) * 2; // uniform [-a, a] has RMS a/sqrt(3)
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 0xffffffff - 0.5) * scale;
  }
  return out;
}

/** Writes `<name>.mulaw` and a PCM WAV of the decoded mu-law (identical samples); returns `name`. */
function writeTrack(root: string, name: string, samples: Float32Array): string {
  const mulaw = Uint8Array.from(samples, (x) => mulawEncodeSample(x * 32768));
  atomicWrite(join(root, `${name}.mulaw`), mulaw);
  atomicWrite(join(root, `${name}.wav`), writeWavPcm16(RATE, [mulawToPcm16(mulaw)]));
  return name;
}

function atomicWrite(path: string, data: string | Uint8Array): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, data);
  renameSync(temp, path);
}

const toMs = (samples: number): number => Math.round((samples * 1000) / RATE);

function run(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`test audio: ${command} failed: ${(result.stderr || result.error?.message || `exit ${result.status}`).trim()}`);
}

const PACKAGES = ['festival', 'festvox-us-slt-hts', 'sox', 'libsox-fmt-all'];

/** Installs festival, the slt voice and sox with apt-get when missing (`apt-get update` only if needed). */
function ensureTools(log?: (line: string) => void): void {
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  const voice = existsSync(`/usr/share/festival/voices/us/${VOICE}`);
  if (has('text2wave') && has('sox') && voice) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Two test files may generate at once: wait for the other's dpkg lock instead of failing.
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  const install = () => spawnSync('apt-get', [...lock, 'install', '-y', ...PACKAGES], { encoding: 'utf8', env });
  log?.(`installing ${PACKAGES.join(' ')} with apt-get`);
  let result = install();
  if (result.status !== 0) {
    log?.('apt-get install failed; running apt-get update and trying again');
    spawnSync('apt-get', [...lock, 'update'], { encoding: 'utf8', env });
    result = install();
  }
  if (result.status !== 0)
    throw new Error(
      `test audio needs ${PACKAGES.join(' ')} (apt-get install failed: ${(result.stderr || result.error?.message || '').trim().split('\n').pop()})`,
    );
}
