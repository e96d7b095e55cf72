import { readFileSync } from 'node:fs';
import { mulawEncodeSample } from '../../../shared/src/audio/mulaw.js';
import { resample } from '../../../shared/src/audio/resample.js';
import { readWav } from '../../../shared/src/audio/wav.js';
import type { Config } from '../../../shared/src/config.js';
import { EarshotError } from '../../../shared/src/errors.js';
import { parseOptions } from '../args.js';
import { readCredentials } from '../credentials.js';
import { simulateCall } from '../simulate/twilio-call.js';

const USAGE = `Usage: earshot simulate-call --audio FILE --credentials FILE [options]

Plays calls to a running gateway exactly as Twilio would: stream URL, start-streaming, the
media WebSocket with 20 ms mu-law frames (both tracks interleaved), stop-streaming, stop.

  --audio FILE             caller audio (track inbound): WAV (any rate; first channel) or raw 8 kHz mu-law
  --audio-outbound FILE    agent audio (track outbound); omit for an inbound-only stream
  --format wav|mulaw       format of the audio files (default: by extension, .wav = wav)
  --credentials FILE       JSON {"apiId", "apiSecret"} as printed by 'earshot apps create'
  --api URL                the gateway's API (default http://127.0.0.1:EARSHOT_API_PORT)
  --ca FILE                CA certificate for a gateway with a private certificate
  --calls N                concurrent calls (default 1)
  --speed N                1 = real time (default), 10 = ten times faster, 0 = as fast as possible
  --start-at-ms MS         call start-streaming at this media time (default 0); --no-start: never
  --stop-at-ms MS          call stop-streaming at this media time (default: at the end)

Prints one JSON line per call: callSid, frames sent, media and wall time, HTTP statuses.`;

export async function simulateCallCommand(argv: string[], loadConfig: () => Config): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      audio: { type: 'string' },
      'audio-outbound': { type: 'string' },
      format: { type: 'string' },
      credentials: { type: 'string' },
      api: { type: 'string' },
      ca: { type: 'string' },
      calls: { type: 'string' },
      speed: { type: 'string' },
      'start-at-ms': { type: 'string' },
      'no-start': { type: 'boolean' },
      'stop-at-ms': { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.audio) throw usage('--audio is required');
  if (!values.credentials) throw usage('--credentials is required (the JSON printed by earshot apps create)');
  const credentials = readCredentials(values.credentials, USAGE);
  const config = loadConfig();
  const format = values.format;
  if (format !== undefined && format !== 'wav' && format !== 'mulaw') throw usage(`--format must be wav or mulaw, not '${format}'`);
  const inbound = loadMulaw(values.audio, format);
  const outbound = values['audio-outbound'] ? loadMulaw(values['audio-outbound'], format) : undefined;
  const calls = number('--calls', values.calls ?? '1', 1, 100_000);
  const speedValue = number('--speed', values.speed ?? '1', 0, 1000);
  const startAtMs = values['no-start'] ? null : number('--start-at-ms', values['start-at-ms'] ?? '0', 0, 86_400_000);
  const stopAtMs = values['stop-at-ms'] === undefined ? undefined : number('--stop-at-ms', values['stop-at-ms'], 0, 86_400_000);
  const apiUrl = (values.api ?? `http://127.0.0.1:${config.EARSHOT_API_PORT}`).replace(/\/$/, '');
  const ca = values.ca ? readFileSync(values.ca) : undefined;

  let failures = 0;
  await Promise.all(
    Array.from({ length: calls }, async () => {
      try {
        const result = await simulateCall({
          apiUrl,
          ...credentials,
          inbound,
          outbound,
          speed: speedValue === 0 ? Number.POSITIVE_INFINITY : speedValue,
          startAtMs,
          stopAtMs,
          ca,
        });
        console.log(
          JSON.stringify({
            callSid: result.callSid,
            framesSent: result.framesSent,
            mediaMs: result.mediaMs,
            wallMs: result.wallMs,
            startStatus: (result.start as { status: number } | null)?.status ?? null,
            stopStatus: (result.stop as { status: number } | null)?.status ?? null,
          }),
        );
      } catch (error) {
        failures++;
        console.error(`earshot: simulated call failed: ${(error as Error).message}`);
      }
    }),
  );
  return failures === 0 ? 0 : 1;
}

function loadMulaw(path: string, format: string | undefined): Uint8Array {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw usage(`cannot read ${path}: ${(error as Error).message}`);
  }
  if ((format ?? (path.toLowerCase().endsWith('.wav') ? 'wav' : 'mulaw')) === 'mulaw') return bytes;
  const audio = readWav(bytes, path);
  const samples = resample(audio.channels[0] as Float32Array, audio.sampleRate, 8000);
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = mulawEncodeSample((samples[i] as number) * 32768);
  return out;
}

function number(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || value > max) throw usage(`${flag} must be a number from ${min} to ${max}, not '${text}'`);
  return value;
}

const usage = (message: string) => new EarshotError('EARSHOT_USAGE', `${message}\n\n${USAGE}`);
