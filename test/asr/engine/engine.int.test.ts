import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_ENDPOINTING } from '../../../apps/asr/src/engine/endpointer.js';
import { defaultModelsDir, ensureModels, type ModelPaths } from '../../../apps/asr/src/engine/model-files.js';
import { createMoonshineEngine } from '../../../apps/asr/src/engine/moonshine-engine.js';
import { RecognizerPool } from '../../../apps/asr/src/engine/recognizer-pool.js';
import type { SpeechEngine, Utterance } from '../../../apps/asr/src/engine/speech-engine.port.js';
import { loadAsMulaw } from '../../../apps/cli/src/commands/transcribe.command.js';
import { mulawToFloat32, mulawToPcm16 } from '../../../apps/shared/src/audio/mulaw.js';
import { type CorpusManifest, type CorpusTrack, generateTestAudio } from '../../../scripts/test-audio/corpus.js';
import { pooledWer, wordErrors } from '../../../scripts/test-audio/wer.js';
import { byTurn } from '../../support/turns.js';

// Real audio through the real models: Silero VAD v5 + Moonshine tiny on the generated corpus
// (festival slt voice, telephone band, 8 kHz mu-law). Accuracy bounds are generous; no timings.
t.setTimeout(600_000);

let models: ModelPaths;
let corpus: CorpusManifest;
let engine: SpeechEngine;

t.before(async () => {
  models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  engine = createMoonshineEngine({ modelsDir: models.dir });
});
t.teardown(() => engine?.close());

/** Pushes `mulaw` in chunks of `chunk` bytes (without awaiting in between, as a consumer would), then flushes. */
async function transcribe(mulaw: Uint8Array, chunk = 160, options: Parameters<SpeechEngine['createStream']>[0] = {}): Promise<Utterance[]> {
  const stream = engine.createStream(options);
  const pushes: Promise<Utterance[]>[] = [];
  for (let at = 0; at < mulaw.length; at += chunk) pushes.push(stream.push(mulaw.subarray(at, at + chunk)));
  pushes.push(stream.flush());
  return (await Promise.all(pushes)).flat();
}

const read = (track: CorpusTrack) => new Uint8Array(readFileSync(track.mulaw));
const refText = (track: CorpusTrack) => track.utterances.map((u) => u.text).join(' ');

t.test('the corpus is transcribed with a word error rate under 25 %', async (t) => {
  const tracks = [corpus.call.tracks.customer, corpus.call.tracks.agent, ...corpus.sentences];
  const pairs: [string, string][] = [];
  for (const track of tracks) {
    const got = await transcribe(read(track), 800);
    pairs.push([refText(track), got.map((u) => u.text).join(' ')]);
  }
  const wer = pooledWer(pairs);
  t.comment(`WER ${(wer.wer * 100).toFixed(1)} % (${wer.errors} errors / ${wer.words} words)`);
  t.ok(wer.wer < 0.25, `pooled WER ${(wer.wer * 100).toFixed(1)} % < 25 %`);
  for (const [i, [reference, hypothesis]] of pairs.entries())
    t.ok(wordErrors(reference, hypothesis).wer < 0.5, `${tracks[i]?.mulaw.split('/').pop()}: "${hypothesis}"`);
});

t.test('numbers come out as digits the redaction can find', async (t) => {
  const card = corpus.sentences.find((s) => s.id === 'card-number') as CorpusTrack;
  const text = (await transcribe(read(card))).map((u) => u.text).join(' ');
  t.match(text.replace(/\D/g, ''), /4111111111111111/, text);
});

t.test('endpointing ends utterances at the turns, and inside a turn only in a real pause (within 300 ms of the truth)', async (t) => {
  let splits = 0;
  for (const [role, track] of Object.entries(corpus.call.tracks)) {
    const mulaw = read(track);
    const got = await transcribe(mulaw, 160);
    const { turns, stray, overlapping } = byTurn(got, track.utterances);
    t.same(stray, [], `${role}: no utterance outside the turns`);
    t.same(overlapping, [], `${role}: no two utterances overlap`);
    const samples = mulawToFloat32(mulaw);
    for (const [i, r] of turns.entries()) {
      t.ok(r.parts.length >= 1, `${role} turn #${i} has utterances`);
      t.ok(Math.abs((r.startMs ?? 0) - r.turn.startMs) <= 300, `${role} turn #${i} starts at ${r.startMs} ms (truth ${r.turn.startMs})`);
      t.ok(Math.abs((r.endMs ?? 0) - r.turn.endMs) <= 300, `${role} turn #${i} ends at ${r.endMs} ms (truth ${r.turn.endMs})`);
      for (const u of r.parts) {
        t.equal(u.endpoint, 'silence');
        t.equal(u.startSample, u.startMs * 8, 'sample-exact start on the 8 kHz grid');
      }
      // A split inside a turn is a pause the endpointer heard: ≥ minSilenceMs between the parts,
      // and the audio there quiet (10 ms frames under -40 dBFS, the corpus's own speech/silence
      // line) but for the VAD's onset lag: at least 75 % of the frames.
      for (let k = 1; k < r.parts.length; k++) {
        splits++;
        const [end, start] = [(r.parts[k - 1] as Utterance).endMs, (r.parts[k] as Utterance).startMs];
        t.ok(start - end >= DEFAULT_ENDPOINTING.minSilenceMs, `${role} turn #${i} split at a ${start - end} ms pause`);
        const frames = Math.floor((start - end) / 10);
        let quiet = 0;
        for (let f = 0; f < frames; f++) {
          const frame = samples.subarray((end + f * 10) * 8, (end + f * 10 + 10) * 8);
          if (Math.sqrt(frame.reduce((sum, x) => sum + x * x, 0) / frame.length) < 0.01) quiet++;
        }
        t.ok(quiet >= frames * 0.75, `${role} turn #${i}: the pause ${end}-${start} ms is quiet (${quiet} of ${frames} frames)`);
      }
    }
  }
  t.comment(`${splits} turns split at a pause between sentences`);
});

t.test('flush() returns the utterance in progress when the audio stops mid-speech', async (t) => {
  const sentence = corpus.sentences.find((s) => s.id === 'order') as CorpusTrack;
  const ref = sentence.utterances[0] as { startMs: number; endMs: number; text: string };
  const cut = (ref.startMs + Math.round((ref.endMs - ref.startMs) * 0.6)) * 8; // 60 % into the speech
  const stream = engine.createStream();
  const early = await stream.push(read(sentence).subarray(0, cut));
  t.same(early, [], 'no endpoint before the audio stops');
  const last = await stream.flush();
  t.equal(last.length, 1, 'flush gives the last utterance');
  t.equal(last[0]?.endpoint, 'flush');
  t.ok((last[0]?.endMs ?? 0) > ref.startMs && (last[0]?.endMs ?? 0) <= cut / 8, `ends by the end of the audio (${last[0]?.endMs} ms)`);
  t.match(last[0]?.text ?? '', /order arrived/i, String(last[0]?.text));
  t.same(await stream.flush(), [], 'a second flush has nothing left');
});

t.test('the same audio in different chunk sizes gives identical utterances', async (t) => {
  const audio = read(corpus.call.tracks.agent);
  const frames = await transcribe(audio, 160, { detailedTokens: true }); // 20 ms, as Twilio sends
  const chunks = await transcribe(audio, 800, { detailedTokens: true }); // 100 ms, as ingest batches
  const whole = await transcribe(audio, audio.length, { detailedTokens: true });
  let seed = 7;
  const stream = engine.createStream({ detailedTokens: true });
  const pushes: Promise<Utterance[]>[] = [];
  for (let at = 0; at < audio.length; ) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (seed % 3000);
    pushes.push(stream.push(audio.subarray(at, at + size)));
    at += size;
  }
  pushes.push(stream.flush());
  const random = (await Promise.all(pushes)).flat();
  t.ok(frames.length >= 4, `${frames.length} utterances`);
  t.same(chunks, frames, '100 ms chunks = 20 ms frames');
  t.same(whole, frames, 'whole file = 20 ms frames');
  t.same(random, frames, 'random chunk sizes = 20 ms frames');
  t.ok(
    frames.every((u) => (u.tokens?.length ?? 0) > 0),
    'word tokens when asked',
  );
});

t.test('pendingFromSample holds the speech in progress; a stream resumed there gives the rest of the call', async (t) => {
  const audio = read(corpus.call.tracks.agent);
  const all = await transcribe(audio, 800);
  const stream = engine.createStream();
  await stream.push(audio.subarray(0, 3000 * 8)); // inside the first utterance (1000-6090 ms)
  t.ok(stream.pendingFromSample <= 1000 * 8, `mid-speech: pending from ${stream.pendingFromSample / 8} ms`);
  const first = await stream.push(audio.subarray(3000 * 8, 9000 * 8)); // its endpoint and text are behind us
  t.equal(first.length, 1);
  const pending = stream.pendingFromSample;
  t.ok(pending > 6090 * 8 && pending <= 9000 * 8, `in a pause: pending from ${pending / 8} ms`);
  t.equal(stream.samples, 9000 * 8);

  // A restart replays from a chunk boundary at or before `pending`, as the consumer would.
  const replayFrom = Math.floor(pending / 800) * 800;
  const resumed = engine.createStream({ startSample: replayFrom });
  const pushes: Promise<Utterance[]>[] = [];
  for (let at = replayFrom; at < audio.length; at += 800) pushes.push(resumed.push(audio.subarray(at, at + 800)));
  pushes.push(resumed.flush());
  const again = (await Promise.all(pushes)).flat();
  // The resumed VAD starts cold (Silero's state remembers seconds), so starts may move a few windows.
  const rest = all.slice(1);
  t.same(
    again.map((u) => u.text),
    rest.map((u) => u.text),
    'the remaining utterances, same text',
  );
  again.forEach((u, i) => {
    t.ok(
      Math.abs(u.startMs - (rest[i]?.startMs ?? 0)) <= 300,
      `#${i + 1} starts at ${u.startMs} ms (${rest[i]?.startMs} ms uninterrupted)`,
    );
    t.ok(u.startSample >= replayFrom, 'on the track clock');
  });
  const twice = engine.createStream({ startSample: replayFrom });
  const again2 = (await Promise.all([twice.push(audio.subarray(replayFrom)), twice.flush()])).flat();
  t.same(again2, again, 'a replay from the same point is deterministic');
});

t.test('streams run concurrently and independently', async (t) => {
  const customer = read(corpus.call.tracks.customer);
  const agent = read(corpus.call.tracks.agent);
  const [a, b] = await Promise.all([transcribe(customer, 160), transcribe(agent, 160)]);
  const [a2, b2] = [await transcribe(customer, 800), await transcribe(agent, 800)];
  t.same(a, a2, 'customer track: same alone or alongside the agent');
  t.same(b, b2, 'agent track: same alone or alongside the customer');
});

t.test('a WAV file takes the same path as mu-law: same utterances', async (t) => {
  const track = corpus.sentences.find((s) => s.id === 'phone-number') as CorpusTrack;
  const [fromWav] = loadAsMulaw(track.wav, undefined);
  // Same samples: mu-law has two codes for zero (0x7f, 0xff), so compare decoded.
  t.same(mulawToPcm16(fromWav as Uint8Array), mulawToPcm16(read(track)), 'the WAV copy becomes the same mu-law samples');
  t.same(await transcribe(fromWav as Uint8Array, 800), await transcribe(read(track), 800));
});

t.test('silence and line noise give no utterances', async (t) => {
  const quiet = read(corpus.call.tracks.agent).subarray(6500 * 8, 11_500 * 8); // the customer's turn
  t.same(await transcribe(quiet), []);
  t.same(await transcribe(new Uint8Array(0)), [], 'no audio at all');
});

t.test('an unsupported language is refused, naming the supported ones', async (t) => {
  t.throws(() => engine.createStream({ language: 'fr-FR' as 'en-US' }), { code: 'EARSHOT_USAGE', message: /fr-FR.*en-US/ });
  t.same(engine.languages, ['en-US']);
});

t.test('a full model queue rejects at once, retriable; the pool keeps working', async (t) => {
  const pool = new RecognizerPool({ encoderPath: models.encoder, decoderPath: models.decoder, workers: 1, maxQueue: 1 });
  t.teardown(() => pool.close());
  const second = () => new Float32Array(8000);
  const running = pool.recognize(second(), 8);
  const queued = pool.recognize(second(), 8);
  t.match(pool.stats(), { workers: 1, running: 1, queued: 1, maxQueue: 1, speculative: 0 });
  await t.rejects(pool.recognize(second(), 8), { retriable: true, message: /overloaded: 1 utterances waiting/ });
  const results = await Promise.all([running, queued]);
  t.equal(results.length, 2, 'the accepted jobs complete');
  t.ok(await pool.recognize(second(), 8), 'and new ones are accepted again');
});

t.test('confirmed decodes go before speculative ones; a queued speculation can be promoted or cancelled', async (t) => {
  const pool = new RecognizerPool({ encoderPath: models.encoder, decoderPath: models.decoder, workers: 1, maxQueue: 4 });
  t.teardown(() => pool.close());
  const audio = () => new Float32Array(2000);
  const order: string[] = [];
  const note = (name: string) => () => order.push(name);
  const running = pool.recognize(audio(), 8).then(note('first'));
  const early = pool.speculate(audio(), 8);
  const dropped = pool.speculate(audio(), 8);
  const promoted = pool.speculate(audio(), 8);
  t.ok(early && dropped && promoted, 'speculations taken');
  const confirmed = pool.recognize(audio(), 8).then(note('confirmed'));
  t.match(pool.stats(), { workers: 1, running: 1, queued: 1, maxQueue: 4, speculative: 3 });
  dropped?.cancel();
  await t.rejects(dropped?.result as Promise<unknown>, /cancelled/, 'a cancelled speculation never runs');
  promoted?.promote();
  t.match(
    pool.stats(),
    { workers: 1, running: 1, queued: 2, maxQueue: 4, speculative: 1, speculation: { started: 3, promoted: 1, cancelled: 1 } },
    'promoted: counted as confirmed',
  );
  await Promise.all([running, confirmed, early?.result.then(note('speculative')), promoted?.result.then(note('promoted'))]);
  t.same(order, ['first', 'confirmed', 'promoted', 'speculative'], 'speculative work waits for every confirmed decode');
  t.match(pool.stats().speculation, { started: 3, promoted: 1, cancelled: 1, ranUnconfirmed: 1 }, 'one ran without being confirmed');
});

t.test('a running speculation that is cancelled stops at its next decoder step and frees the worker', async (t) => {
  const pool = new RecognizerPool({ encoderPath: models.encoder, decoderPath: models.decoder, workers: 1, maxQueue: 4 });
  t.teardown(() => pool.close());
  await pool.ready();
  // Eight seconds of the agent's speech with a generous token budget: a decode of many steps.
  const speech = () => mulawToFloat32(read(corpus.call.tracks.agent).subarray(0, 8 * 8000));
  const full = await pool.recognize(speech(), 60);
  t.ok(full.tokenIds.length >= 10, `a full decode takes ${full.tokenIds.length} steps`);

  const stopped = pool.speculate(speech(), 60);
  t.ok(stopped, 'speculation taken');
  t.match(pool.stats(), { running: 1, speculative: 0 }, 'on the worker at once');
  stopped?.cancel();
  await t.rejects(stopped?.result as Promise<unknown>, /cancelled/, 'its result is given up at once');
  stopped?.promote(); // too late: a cancelled decode stays cancelled
  const next = await pool.recognize(speech(), 60);
  t.same(next, full, 'the worker goes on with the next job, same text as before');
  t.match(pool.stats().speculation, { started: 1, promoted: 0, cancelled: 0, ranUnconfirmed: 1, aborted: 1 }, 'stopped early, not run out');

  const confirmed = pool.speculate(speech(), 60);
  confirmed?.promote();
  confirmed?.cancel(); // a promoted decode is needed: cancel leaves it alone
  t.same(await confirmed?.result, full, 'a promoted speculation runs to its end');
  t.match(pool.stats().speculation, { started: 2, promoted: 1, aborted: 1 });
});

t.test('two workers: ready() loads both models, and utterances that end together are decoded side by side', async (t) => {
  const pool = new RecognizerPool({ encoderPath: models.encoder, decoderPath: models.decoder, workers: 2, maxQueue: 64 });
  t.teardown(() => pool.close());
  await pool.ready();
  t.match(pool.stats(), { workers: 2, running: 0 }, 'both loaded before the first call');
  const speech = () => mulawToFloat32(read(corpus.call.tracks.agent).subarray(0, 4 * 8000));
  const alone = await pool.recognize(speech(), 40);
  const burst = [pool.recognize(speech(), 40), pool.recognize(speech(), 40), pool.recognize(speech(), 40)];
  t.match(pool.stats(), { workers: 2, running: 2, queued: 1 }, 'two run at once, the third waits');
  const texts = new Set((await Promise.all(burst)).map((r) => r.text));
  t.same([...texts], [alone.text], 'same text on either worker');
});

t.test('ready() also settles for workers a job started first: loaded resolves, a failed load rejects', async (t) => {
  // Bounded, so a regression fails here with a message instead of hanging the file.
  const settled = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('ready() did not settle in 60 s')), 60_000).unref()),
    ]);
  const pool = new RecognizerPool({ encoderPath: models.encoder, decoderPath: models.decoder, workers: 1 });
  t.teardown(() => pool.close());
  t.ok(await pool.recognize(new Float32Array(4000), 8), 'the job spawned the worker and it answered');
  await settled(pool.ready());
  t.match(pool.stats(), { workers: 1 }, 'no second worker spawned for it');

  const missing = new RecognizerPool({ encoderPath: join(models.dir, 'no-such-encoder.onnx'), decoderPath: models.decoder, workers: 1 });
  t.teardown(() => missing.close());
  await t.rejects(missing.recognize(new Float32Array(4000), 8), /no-such-encoder/, 'the job that started the worker fails with the cause');
  await t.rejects(settled(missing.ready()), /no-such-encoder/, 'the load failure, not a hang');
});

t.test('speculative decoding gives the same utterances as decoding at the endpoint', async (t) => {
  const options = { modelsDir: models.dir, endpointing: { trailingPadMs: 200 } };
  const eager = createMoonshineEngine(options);
  const plain = createMoonshineEngine({ ...options, speculate: false });
  t.teardown(() => Promise.all([eager.close(), plain.close()]));
  const audio = read(corpus.call.tracks.customer);
  const run = async (e: SpeechEngine) => {
    const stream = e.createStream();
    const pushes: Promise<Utterance[]>[] = [];
    for (let at = 0; at < audio.length; at += 160) pushes.push(stream.push(audio.subarray(at, at + 160)));
    pushes.push(stream.flush());
    return (await Promise.all(pushes)).flat();
  };
  const [withSpeculation, without] = [await run(eager), await run(plain)];
  t.ok(withSpeculation.length >= 4, `${withSpeculation.length} utterances`);
  t.same(withSpeculation, without, 'same segments and texts');
});

t.test('missing model files fail the push with a clear error', async (t) => {
  const broken = createMoonshineEngine({ modelsDir: '/nonexistent/earshot-models' });
  t.teardown(() => broken.close());
  await t.rejects(broken.createStream().push(new Uint8Array(8000).fill(0xff)), {
    code: 'EARSHOT_INFRA_PREREQUISITE_MISSING',
    message: /speech models missing in \/nonexistent\/earshot-models/,
  });
});
