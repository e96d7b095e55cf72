import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { mulawEncodeSample, mulawToPcm16 } from '../../apps/shared/src/audio/mulaw.js';
import { floatToPcm16 } from '../../apps/shared/src/audio/resample.js';
import { readWav, writeWavPcm16 } from '../../apps/shared/src/audio/wav.js';

/**
 * A small speech corpus with known transcripts and timings, passed through a telephone
 * channel: sox band-pass 300-3400 Hz, 8 kHz, then mu-law, the format of live calls. Each file
 * is written three times: raw mu-law (`.mulaw`), a 16-bit PCM WAV of exactly the same samples
 * (`.wav`), and the telephone-band PCM before mu-law (`.pcm.wav`, for adding noise before
 * encoding).
 *
 * - `call`: a two-party call spoken by festival's most natural voice (cmu_us_slt_arctic_hts):
 *   customer and agent on separate tracks, silence on each track while the other talks; every
 *   utterance's true start and end (speech, trimmed of festival's own silence) are in the
 *   manifest;
 * - `sentences`: single sentences in the same voice, some with spoken numbers (card, phone and
 *   account numbers) for redaction;
 * - `voices`: the 8 sentences and the 10 call turns, each on its own, in every voice of
 *   `VOICES` (festival slt, two festival diphone voices, espeak-ng), tagged with the voice: how
 *   accuracy depends on the speaker. slt's entries reuse the files of `sentences`;
 * - `recordings`: real speech, the recordings with reference transcripts of Debian's
 *   `pocketsphinx-testdata` (CMU's "cards" set: 5 short card names, one speaker; LibriVox
 *   "Sense and Sensibility": 5 read sentences), through the same telephone channel.
 *   Their speech bounds are estimated from energy (no ground truth).
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
  /** Absolute paths: mu-law, WAV of the same samples, PCM before mu-law. */
  readonly mulaw: string;
  readonly wav: string;
  readonly pcm: string;
  readonly utterances: readonly CorpusUtterance[];
}

export interface CorpusSentence extends CorpusTrack {
  readonly id: string;
  /** Has spoken digits (for redaction tests). */
  readonly numbers: boolean;
}

export interface CorpusVoiceSentence extends CorpusSentence {
  /** `CorpusVoice.id` of the voice that speaks it. */
  readonly voice: string;
}

export interface CorpusVoice {
  /** Short tag: 'slt', 'kal', 'ked', 'espeak'. */
  readonly id: string;
  readonly synthesizer: 'festival' | 'espeak-ng';
  /** festival voice name or espeak-ng voice. */
  readonly name: string;
  /** The Debian package it comes from. */
  readonly package: string;
  readonly description: string;
  readonly sentences: readonly CorpusVoiceSentence[];
}

export interface CorpusRecording extends CorpusTrack {
  /** `<set>-<file id>`, e.g. 'cards-001'. */
  readonly id: string;
  readonly set: 'cards' | 'librivox';
  /** The original file (16 kHz WAV of pocketsphinx-testdata). */
  readonly source: string;
}

export interface CorpusManifest {
  readonly version: string;
  readonly dir: string;
  readonly sampleRate: 8000;
  /** The voice of `call` and `sentences`. */
  readonly voice: string;
  readonly call: { readonly durationMs: number; readonly tracks: { readonly customer: CorpusTrack; readonly agent: CorpusTrack } };
  readonly sentences: readonly CorpusSentence[];
  readonly voices: readonly CorpusVoice[];
  readonly recordings: readonly CorpusRecording[];
}

const VOICE = 'cmu_us_slt_arctic_hts';
const RATE = 8000;

interface VoiceSpec {
  readonly id: string;
  readonly synthesizer: 'festival' | 'espeak-ng';
  readonly name: string;
  readonly package: string;
  readonly description: string;
  /** Present once the package is installed. */
  readonly installed: string;
}

const VOICES: readonly VoiceSpec[] = [
  {
    id: 'slt',
    synthesizer: 'festival',
    name: VOICE,
    package: 'festvox-us-slt-hts',
    description: 'festival HTS, US English female (CMU ARCTIC slt)',
    installed: `/usr/share/festival/voices/us/${VOICE}`,
  },
  {
    id: 'kal',
    synthesizer: 'festival',
    name: 'kal_diphone',
    package: 'festvox-kallpc16k',
    description: 'festival diphone (LPC), US English male',
    installed: '/usr/share/festival/voices/english/kal_diphone',
  },
  {
    id: 'ked',
    synthesizer: 'festival',
    name: 'ked_diphone',
    package: 'festvox-kdlpc16k',
    description: 'festival diphone (LPC), US English male',
    installed: '/usr/share/festival/voices/english/ked_diphone',
  },
  {
    id: 'espeak',
    synthesizer: 'espeak-ng',
    name: 'en-us',
    package: 'espeak-ng',
    description: 'espeak-ng formant synthesis, en-us',
    installed: '/usr/bin/espeak-ng',
  },
];

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

/** Every voice says these: the sentences, then each call turn on its own (`turn-1`...). */
const VOICE_TEXTS: readonly (readonly [string, string, boolean])[] = [
  ...SENTENCES,
  ...CALL.map(([, text], i) => [`turn-${i + 1}`, text, false] as const),
];

/** pocketsphinx-testdata: the sets with reference transcripts (`<s> text </s> (file id)` lines). */
const RECORDINGS_ROOT = '/usr/share/pocketsphinx/test/data';
const RECORDING_SETS: readonly { readonly set: 'cards' | 'librivox'; readonly dir: string; readonly transcription: string }[] = [
  { set: 'cards', dir: 'cards', transcription: 'cards.transcription' },
  { set: 'librivox', dir: 'librivox', transcription: 'transcription' },
];

const LEAD_MS = 500;
const TAIL_MS = 700;
const NOISE_RMS = 0.0004; // a quiet line (about -68 dBFS), so silence is not digital zero

export function defaultTestAudioDir(): string {
  return join(homedir(), '.cache', 'earshot', 'test-audio');
}

const VERSION = createHash('sha256')
  .update(
    JSON.stringify({
      format: 3,
      VOICE,
      CALL,
      SENTENCES,
      VOICES: VOICES.map((v) => [v.id, v.synthesizer, v.name]),
      RECORDING_SETS,
      LEAD_MS,
      TAIL_MS,
      NOISE_RMS,
    }),
  )
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
    const slt = VOICES[0] as VoiceSpec;
    const synth = (voice: VoiceSpec, text: string, name: string) => synthesize(voice, text, join(work, name));
    const lead = Math.round((LEAD_MS * RATE) / 1000);
    const tail = Math.round((TAIL_MS * RATE) / 1000);
    /** One utterance between LEAD_MS and TAIL_MS of line noise. */
    const single = (name: string, speech: Float32Array, seed: number, text: string): StoredTrack => {
      const samples = noise(lead + speech.length + tail, seed);
      samples.set(speech, lead);
      return { file: writeTrack(root, name, samples), utterances: [{ startMs: toMs(lead), endMs: toMs(lead + speech.length), text }] };
    };
    options.log?.(`synthesizing ${CALL.length + SENTENCES.length} utterances with festival (${VOICE})`);

    // The call: both tracks the same length, each silent (line noise) while the other talks.
    const turns = CALL.map(([speaker, text, gapMs], i) => ({ speaker, text, gapMs, audio: synth(slt, text, `call-${i}`) }));
    let at = 0;
    const placed = turns.map((turn) => {
      at += Math.round((turn.gapMs * RATE) / 1000);
      const start = at;
      at += turn.audio.length;
      return { ...turn, start, end: at };
    });
    const length = at + tail;
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

    const sentences = SENTENCES.map(([id, text, numbers], i) => ({
      id,
      numbers,
      ...single(`sentence-${id}`, synth(slt, text, `sentence-${id}`), 10 + i, text),
    }));

    // Every voice: the sentences and the call turns one by one. slt's are already there.
    const voices = VOICES.map((voice) => {
      if (voice.id !== slt.id) options.log?.(`synthesizing ${VOICE_TEXTS.length} utterances with ${voice.synthesizer} (${voice.name})`);
      const spoken = VOICE_TEXTS.map(([id, text, numbers], i) => {
        if (voice.id === slt.id) {
          const sentence = sentences.find((s) => s.id === id);
          if (sentence) return { id, numbers, voice: voice.id, file: sentence.file, utterances: sentence.utterances };
          const turn = turns[Number(id.slice('turn-'.length)) - 1];
          if (turn) return { id, numbers, voice: voice.id, ...single(`voice-${voice.id}-${id}`, turn.audio, 100 + i, text) };
        }
        const name = `voice-${voice.id}-${id}`;
        return { id, numbers, voice: voice.id, ...single(name, synth(voice, text, name), seedOf(name), text) };
      });
      return {
        id: voice.id,
        synthesizer: voice.synthesizer,
        name: voice.name,
        package: voice.package,
        description: voice.description,
        sentences: spoken,
      };
    });

    // Real recordings: the whole file (its own background kept), padded with line noise.
    const recordings = RECORDING_SETS.flatMap(({ set, dir: folder, transcription }) => {
      const references = parseTranscription(readFileSync(join(RECORDINGS_ROOT, folder, transcription), 'utf8'));
      options.log?.(`converting ${references.length} recordings of pocketsphinx-testdata (${set})`);
      return references.map(({ fileId, text }) => {
        const id = `${set}-${fileId.split('-').pop()}`;
        const source = join(RECORDINGS_ROOT, folder, `${fileId}.wav`);
        const audio = telephone(source, join(work, `recording-${id}`));
        const [start, end] = speechBounds(audio, `${source}`);
        const samples = noise(lead + audio.length + tail, seedOf(id));
        samples.set(audio, lead);
        const file = writeTrack(root, `recording-${id}`, samples);
        return { id, set, source, file, utterances: [{ startMs: toMs(lead + start), endMs: toMs(lead + end), text }] };
      });
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
      sentences,
      voices,
      recordings,
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

type StoredSentence = StoredTrack & { id: string; numbers: boolean };

function readManifest(root: string): CorpusManifest | undefined {
  let stored: {
    version?: string;
    call: { durationMs: number; tracks: Record<'customer' | 'agent', StoredTrack> };
    sentences: StoredSentence[];
    voices: (Omit<CorpusVoice, 'sentences'> & { sentences: (StoredSentence & { voice: string })[] })[];
    recordings: (StoredTrack & { id: string; set: 'cards' | 'librivox'; source: string })[];
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
    pcm: join(root, `${t.file}.pcm.wav`),
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
    voices: stored.voices.map((v) => ({
      id: v.id,
      synthesizer: v.synthesizer,
      name: v.name,
      package: v.package,
      description: v.description,
      sentences: v.sentences.map((s) => ({ id: s.id, numbers: s.numbers, voice: s.voice, ...track(s) })),
    })),
    recordings: stored.recordings.map((r) => ({ id: r.id, set: r.set, source: r.source, ...track(r) })),
  };
  const files = [
    manifest.call.tracks.customer,
    manifest.call.tracks.agent,
    ...manifest.sentences,
    ...manifest.voices.flatMap((v) => v.sentences),
    ...manifest.recordings,
  ].flatMap((t) => [t.mulaw, t.wav, t.pcm]);
  return files.every((file) => existsSync(file)) ? manifest : undefined;
}

/** `<s> ten of clubs </s> (001)` lines → file ids and texts. */
function parseTranscription(text: string): { fileId: string; text: string }[] {
  return text
    .split('\n')
    .map((line) => /^\s*(?:<s>)?\s*(.*?)\s*(?:<\/s>)?\s*\(([^)]+)\)\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ fileId: m[2] as string, text: m[1] as string }));
}

/** The voice → sox telephone channel → 8 kHz float samples with the synthesizer's own silence trimmed. */
function synthesize(voice: VoiceSpec, text: string, base: string): Float32Array {
  writeFileSync(`${base}.txt`, text);
  if (voice.synthesizer === 'festival') run('text2wave', ['-eval', `(voice_${voice.name})`, `${base}.txt`, '-o', `${base}.raw.wav`]);
  else run('espeak-ng', ['-v', voice.name, '-f', `${base}.txt`, '-w', `${base}.raw.wav`]);
  const samples = telephone(`${base}.raw.wav`, base);
  const [start, end] = speechBounds(samples, `${voice.name}: ${text}`);
  return samples.slice(start, end);
}

/** Any WAV → sox telephone channel (band-pass 300-3400 Hz, 8 kHz, peak at -3 dBFS) → float samples. */
function telephone(input: string, base: string): Float32Array {
  run('sox', [input, '-r', String(RATE), '-c', '1', '-b', '16', `${base}.wav`, 'sinc', '300-3400', 'gain', '-n', '-3']);
  return readWav(readFileSync(`${base}.wav`), `${base}.wav`).channels[0] as Float32Array;
}

/** Speech bounds [start, end) in samples: first and last 10 ms frame with an RMS above -40 dBFS. */
function speechBounds(samples: Float32Array, what: string): [number, number] {
  const frame = RATE / 100;
  const loud: number[] = [];
  for (let i = 0; i + frame <= samples.length; i += frame) {
    let energy = 0;
    for (let k = i; k < i + frame; k++) energy += (samples[k] as number) ** 2;
    if (Math.sqrt(energy / frame) > 0.01) loud.push(i);
  }
  if (loud.length === 0) throw new Error(`test audio: no speech in ${what}`);
  return [loud[0] as number, (loud[loud.length - 1] as number) + frame];
}

/** A stable seed from a name. */
function seedOf(name: string): number {
  return createHash('sha256').update(name).digest().readUInt32LE(0);
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

/** Writes `<name>.mulaw`, a PCM WAV of the decoded mu-law (identical samples) and `<name>.pcm.wav` (before mu-law); returns `name`. */
function writeTrack(root: string, name: string, samples: Float32Array): string {
  const mulaw = Uint8Array.from(samples, (x) => mulawEncodeSample(x * 32768));
  atomicWrite(join(root, `${name}.mulaw`), mulaw);
  atomicWrite(join(root, `${name}.wav`), writeWavPcm16(RATE, [mulawToPcm16(mulaw)]));
  atomicWrite(join(root, `${name}.pcm.wav`), writeWavPcm16(RATE, [floatToPcm16(samples)]));
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

const PACKAGES = ['festival', ...VOICES.map((v) => v.package), 'sox', 'libsox-fmt-all', 'pocketsphinx-testdata'];

/** Installs festival, the voices, espeak-ng, sox and pocketsphinx-testdata with apt-get when missing (`apt-get update` only if needed). */
function ensureTools(log?: (line: string) => void): void {
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  const present = [...VOICES.map((v) => v.installed), ...RECORDING_SETS.map((s) => join(RECORDINGS_ROOT, s.dir, s.transcription))].every(
    (path) => existsSync(path),
  );
  if (has('text2wave') && has('sox') && has('espeak-ng') && present) return;
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
