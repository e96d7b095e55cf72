import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { hasInt8DotProduct } from '../../apps/asr/src/engine/encoder-graph.js';
import { defaultModelsDir, ensureModels } from '../../apps/asr/src/engine/model-files.js';
import { type DecoderVariant, type EncoderVariant, Moonshine } from '../../apps/asr/src/engine/moonshine.js';
import { upsample2x } from '../../apps/asr/src/engine/upsample.js';
import { mulawToFloat32 } from '../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../test-audio/corpus.js';
import type { BenchResult } from './run.js';

/**
 * Moonshine alone, one thread, on the corpus call's 10 utterances (telephone audio upsampled as
 * the live path does, 500 ms padding before, 200 ms after): the decoder as shipped (split in
 * two graphs, int8 output projection) against the two earlier ways (the merged decoder with
 * its quantized constant weights folded at load, and as downloaded), then the encoder ways
 * (encoder-graph.ts) with that decoder, then the decoder's int8 weights signed as well; interleaved utterance by utterance so all see the same
 * machine load. CPU time of this process is the measure (wall time on a shared machine says
 * more about the neighbours); the encoder's share is measured by running it alone as well.
 *
 *   npm run bench -- decoder [--rounds 3]
 */
export async function run(args: string[]): Promise<BenchResult> {
  const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
  const models = await ensureModels(process.env.EARSHOT_MODELS_DIR ?? defaultModelsDir());
  const corpus = generateTestAudio();
  // The rows before the last keep the declared input shapes (batchOfOne off), as they ran when measured.
  const variants: { name: string; decoder: DecoderVariant; encoder: EncoderVariant; batchOfOne?: boolean }[] = [
    { name: 'merged, as downloaded: projection dequantized every token', decoder: 'merged', encoder: 'as-shipped' },
    { name: 'merged, constant weights folded at load (disable_quant_qdq)', decoder: 'folded', encoder: 'as-shipped' },
    { name: 'split first/later step, int8 projection', decoder: 'split-int8', encoder: 'as-shipped' },
    { name: 'split int8 + encoder int8 weights signed', decoder: 'split-int8', encoder: 'signed' },
    {
      name: 'split int8, first-step int8 weights signed + encoder signed (default with VNNI until change 12)',
      decoder: 'split-signed-first',
      encoder: 'signed',
    },
    { name: 'split int8, both steps signed + encoder signed', decoder: 'split-signed', encoder: 'signed' },
    { name: 'split signed first + encoder signed + conv2 in int8', decoder: 'split-signed-first', encoder: 'signed-conv2' },
    {
      name: 'split signed first + encoder signed, batch and token sizes fixed at 1 (default)',
      decoder: 'split-signed-first',
      encoder: 'signed',
      batchOfOne: true,
    },
  ];
  const engines = await Promise.all(
    variants.map((v) =>
      Moonshine.load({
        encoderPath: models.encoder,
        decoderPath: models.decoder,
        decoder: v.decoder,
        encoder: v.encoder,
        batchOfOne: v.batchOfOne ?? false,
      }),
    ),
  );
  const utterances = (['customer', 'agent'] as const).flatMap((role) => {
    const track = corpus.call.tracks[role];
    const mulaw = new Uint8Array(readFileSync(track.mulaw));
    return track.utterances.map((u) => upsample2x(mulawToFloat32(mulaw.subarray((u.startMs - 500) * 8, (u.endMs + 200) * 8))));
  });
  const totals = variants.map(() => ({ cpuMs: 0, encoderCpuMs: 0, wallMs: [] as number[], tokens: 0, texts: [] as string[] }));
  const load = loadavg()[0] as number;
  for (const engine of engines) await engine.recognize(utterances[0] as Float32Array); // warm up
  for (let round = 0; round < rounds; round++) {
    for (const audio of utterances) {
      for (let v = 0; v < variants.length; v++) {
        const cpu = process.cpuUsage();
        const t0 = performance.now();
        const r = await (engines[v] as Moonshine).recognize(audio);
        const wall = performance.now() - t0;
        const used = process.cpuUsage(cpu);
        const total = totals[v] as (typeof totals)[number];
        total.cpuMs += (used.user + used.system) / 1000;
        const encoderCpu = process.cpuUsage();
        await (engines[v] as Moonshine).encode(audio);
        const encoderUsed = process.cpuUsage(encoderCpu);
        total.encoderCpuMs += (encoderUsed.user + encoderUsed.system) / 1000;
        total.wallMs.push(wall);
        total.tokens += r.tokenIds.length + 1;
        if (round === 0) total.texts.push(r.text);
      }
    }
  }
  await Promise.all(engines.map((e) => e.close()));
  const decodes = rounds * utterances.length;
  const [before, folded, split, signed, firstSigned, bothSigned] = totals as [
    (typeof totals)[number],
    (typeof totals)[number],
    (typeof totals)[number],
    (typeof totals)[number],
    (typeof totals)[number],
    (typeof totals)[number],
  ];
  const batchOfOne = totals.at(-1) as (typeof totals)[number];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const sameAsFirst = (t: (typeof totals)[number]) => t.texts.filter((text, i) => text === before.texts[i]).length;
  // The decoder's share: recognize() less the encoder run alone.
  const decoderMs = (t: (typeof totals)[number]) => ((t.cpuMs - t.encoderCpuMs) / decodes).toFixed(1);
  const change = (a: (typeof totals)[number], b: (typeof totals)[number]) =>
    `${a.cpuMs < b.cpuMs ? '−' : '+'}${Math.abs(100 * (a.cpuMs / b.cpuMs - 1)).toFixed(1)} %`;
  const less = (a: (typeof totals)[number], b: (typeof totals)[number]) => `${(100 * (1 - a.cpuMs / b.cpuMs)).toFixed(0)} %`;
  return {
    title: `Moonshine tiny (quantized) recognize(), 1 thread: ${utterances.length} corpus utterances (${(utterances.reduce((n, u) => n + u.length, 0) / 16000).toFixed(1)} s) × ${rounds} rounds, interleaved`,
    columns: [
      'decoder / encoder',
      'CPU ms per utterance',
      'of which encoder (run alone)',
      'CPU ms per token (incl. encoder)',
      'wall median ms',
      'same text as before',
    ],
    rows: variants.map((v, i) => {
      const t = totals[i] as (typeof totals)[number];
      return [
        v.name,
        t.cpuMs / decodes,
        t.encoderCpuMs / decodes,
        t.cpuMs / t.tokens,
        median(t.wallMs),
        i === 0 ? '-' : `${sameAsFirst(t)} / ${utterances.length}`,
      ];
    }),
    notes: [
      `CPU per utterance: split int8 ${(split.cpuMs / decodes).toFixed(0)} ms, ${less(split, folded)} less than folded (${(folded.cpuMs / decodes).toFixed(0)} ms), ${less(split, before)} less than as downloaded (${(before.cpuMs / decodes).toFixed(0)} ms); with the signed encoder ${(signed.cpuMs / decodes).toFixed(0)} ms (${less(signed, split)} less; encoder alone ${(split.encoderCpuMs / decodes).toFixed(1)} → ${(signed.encoderCpuMs / decodes).toFixed(1)} ms)`,
      `decoder weights signed as well: first step ${(firstSigned.cpuMs / decodes).toFixed(0)} ms (${change(firstSigned, signed)} against the encoder's alone), both steps ${(bothSigned.cpuMs / decodes).toFixed(0)} ms (${change(bothSigned, signed)}); decoder alone (recognize() less the encoder run alone) ${decoderMs(signed)} → ${decoderMs(firstSigned)} / ${decoderMs(bothSigned)} ms`,
      `batch and token sizes fixed at 1 (decoder-graph.ts \`batchOfOne\`, encoder too): ${(batchOfOne.cpuMs / decodes).toFixed(0)} ms per utterance against ${(firstSigned.cpuMs / decodes).toFixed(0)} ms with the shapes as declared (${change(batchOfOne, firstSigned)}); encoder alone ${(firstSigned.encoderCpuMs / decodes).toFixed(1)} → ${(batchOfOne.encoderCpuMs / decodes).toFixed(1)} ms, decoder alone ${decoderMs(firstSigned)} → ${decoderMs(batchOfOne)} ms; same text as with the declared shapes: ${batchOfOne.texts.filter((text, i) => text === firstSigned.texts[i]).length} / ${utterances.length}`,
      `this CPU ${hasInt8DotProduct() ? 'has' : 'lacks'} VNNI: the default here is ${hasInt8DotProduct() ? 'the first-step decoder graph and the encoder signed' : 'split int8 with the encoder as shipped'}`,
      `load average at start ${load.toFixed(1)}, at end ${(loadavg()[0] as number).toFixed(1)} (2 cores): wall times move with it, CPU times much less`,
      'folded: the decoder output projection (tied embedding, uint8 288 × 32768) sat behind a DequantizeLinear that onnxruntime keeps for QDQ-aware providers, so each token dequantized 9.4 M weights (profiled: ~60 % of a step); `session.disable_quant_qdq` lets constant folding do it once at load (+36 MiB per worker)',
      'split int8 (apps/asr/src/engine/decoder-graph.ts): the merged If graph split into a first-step and a later-step session (no If frame per token, later steps skip encoder_hidden_states), and the projection as DynamicQuantizeLinear → MatMulInteger (fused by onnxruntime into one int8 kernel) instead of a float MatMul (then ~18 % of a step, profiled)',
      'encoder signed (apps/asr/src/engine/encoder-graph.ts): the encoder int8 layers weights shifted from uint8 to int8 at load, so onnxruntime takes its uint8 × int8 (VNNI) kernels; the products are the same, the output bit-identical',
      'decoder signed (`split-signed-first`, `split-signed`, decoder-graph.ts): the same shift on the first-step graph, or on both, the output projection included (its weights are the tied uint8 embedding, also gathered for the input token: the whole table and its zero point shift, so the dequantized embedding is unchanged); logits bit-identical with VNNI (test/asr/engine/decoder-graph.int.test.ts). The first step runs once per utterance (~5 ms of CPU), so signing it can save ~1 ms; a larger gap between these rows is the machine, and the later steps (one row per product) measured ±5 % from run to run, either way (docs/benchmarks.md, Change 8)',
      'encoder conv2 in int8: the second conv (float, ~20 % of the encoder) as DynamicQuantizeLinear → MatMulInteger over its windows; its input quantized per tensor costs WER (accuracy bench: 16.4 / 31.5 against 15.1 / 31.1), so it is not the default',
      '"same text": identical text to the as-downloaded decoder; int8 quantizes the last hidden state per token, so a close call between two tokens can flip (the accuracy bench measures the WER effect on 82 files)',
    ],
  };
}
