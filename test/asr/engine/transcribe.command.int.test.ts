import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { defaultModelsDir, ensureModels } from '../../../apps/asr/src/engine/model-files.js';
import { writeWavPcm16 } from '../../../apps/shared/src/audio/wav.js';
import { type CorpusManifest, generateTestAudio } from '../../../scripts/test-audio/corpus.js';
import { wordErrors } from '../../../scripts/test-audio/wer.js';
import { byTurn } from '../../support/turns.js';

// `earshot transcribe` end to end, as a user runs it: a subprocess of bin/earshot.js.
t.setTimeout(300_000);

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let corpus: CorpusManifest;
let dir: string;

t.before(async () => {
  await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  dir = mkdtempSync(join(tmpdir(), 'earshot-transcribe-'));
});
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function earshot(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'bin/earshot.js'), ...args], { cwd: ROOT, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const lines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as { startMs: number; endMs: number; text: string; channel?: number });

t.test('a mu-law file prints one JSON line per utterance', async (t) => {
  const track = corpus.call.tracks.customer;
  const { code, stdout, stderr } = await earshot('transcribe', track.mulaw);
  t.equal(code, 0, stderr);
  const got = lines(stdout);
  const turns = byTurn(got, track.utterances);
  t.ok(
    turns.turns.every((r) => r.parts.length > 0),
    'every turn of the track came out',
  );
  t.same([turns.stray, turns.overlapping], [[], []], 'nothing outside the turns, nothing twice');
  t.same(Object.keys(got[0] ?? {}), ['startMs', 'endMs', 'text']);
  const wer = wordErrors(track.utterances.map((u) => u.text).join(' '), got.map((u) => u.text).join(' '));
  t.ok(wer.wer < 0.25, `WER ${(wer.wer * 100).toFixed(1)} %`);
});

t.test('a 16 kHz stereo WAV: resampled, each channel transcribed, --format and --json accepted', async (t) => {
  // Customer left, agent right, like a recording; upsampled to 16 kHz so the command resamples.
  const pcm = (file: string) => {
    const raw = readFileSync(file);
    const samples = new Int16Array((raw.length - 44) / 2);
    for (let i = 0; i < samples.length; i++) samples[i] = raw.readInt16LE(44 + i * 2);
    const up = new Int16Array(samples.length * 2);
    for (let i = 0; i < samples.length; i++) up[2 * i] = up[2 * i + 1] = samples[i] as number;
    return up;
  };
  const wav = join(dir, 'call.stereo.dat');
  writeFileSync(wav, writeWavPcm16(16000, [pcm(corpus.call.tracks.customer.wav), pcm(corpus.call.tracks.agent.wav)]));
  const { code, stdout, stderr } = await earshot('transcribe', wav, '--format', 'wav', '--json');
  t.equal(code, 0, stderr);
  const got = lines(stdout);
  for (const [channel, role] of [
    [0, 'customer'],
    [1, 'agent'],
  ] as const) {
    const turns = byTurn(
      got.filter((u) => u.channel === channel),
      corpus.call.tracks[role].utterances,
    );
    t.ok(turns.turns.every((r) => r.parts.length > 0) && turns.stray.length === 0, `${role} (channel ${channel}): every turn, at its time`);
  }
  t.same(
    got.map((u) => u.startMs),
    [...got.map((u) => u.startMs)].sort((a, b) => a - b),
    'in time order',
  );
});

t.test('bad files and options fail with a one-line reason', async (t) => {
  const empty = join(dir, 'empty.wav');
  writeFileSync(empty, '');
  const text = join(dir, 'notes.wav');
  writeFileSync(text, 'this is not audio\n');
  const truncated = join(dir, 'truncated.wav');
  writeFileSync(truncated, readFileSync(corpus.sentences[0]?.wav as string).subarray(0, 30));
  const cases: [string[], RegExp][] = [
    [['transcribe', join(dir, 'missing.wav')], /missing\.wav: no such file/],
    [['transcribe', empty], /empty\.wav is empty/],
    [['transcribe', text], /notes\.wav: not a supported WAV file: no RIFF\/WAVE header/],
    [['transcribe', truncated], /truncated\.wav: not a supported WAV file: truncated header/],
    [['transcribe', dir], /is a directory/],
  ];
  for (const [args, reason] of cases) {
    const { code, stdout, stderr } = await earshot(...args);
    t.equal(code, 1, `${args.join(' ')}: exit 1`);
    t.equal(stdout, '', 'nothing on stdout');
    t.match(stderr, reason);
    t.equal(stderr.trim().split('\n').length, 1, `one line: ${stderr.trim()}`);
  }
  const bad = await earshot('transcribe', empty, '--format', 'mp3');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /--format must be wav or mulaw, not 'mp3'/);
  const help = await earshot('transcribe', '--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: earshot transcribe FILE/);
});
