import { EarshotError } from '../errors.js';
import { mulawDecodeSample } from './mulaw.js';

/**
 * Minimal RIFF/WAVE reader and writer for PCM (8/16/24/32-bit integer, 32-bit float) and
 * G.711 mu-law, any rate and channel count. Enough for test audio, `earshot transcribe`
 * and recordings; no compressed formats.
 */
export interface PcmAudio {
  readonly sampleRate: number;
  /** One Float32Array per channel, samples in [-1, 1]. */
  readonly channels: readonly Float32Array[];
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_MULAW = 7;
const FORMAT_EXTENSIBLE = 0xfffe;

export function readWav(buffer: Buffer, name = 'audio'): PcmAudio {
  const fail = (why: string) => new EarshotError('EARSHOT_USAGE', `${name}: not a supported WAV file: ${why}`);
  if (buffer.length < 12 || buffer.toString('ascii', 0, 4) !== 'RIFF' || buffer.toString('ascii', 8, 12) !== 'WAVE')
    throw fail('no RIFF/WAVE header');
  let offset = 12;
  let format: { code: number; channels: number; rate: number; bits: number } | undefined;
  while (offset + 8 <= buffer.length) {
    const id = buffer.toString('ascii', offset, offset + 4);
    const size = buffer.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      if (body + 16 > buffer.length) throw fail('truncated header');
      if (size < 16) throw fail('fmt chunk too short');
      let code = buffer.readUInt16LE(body);
      if (code === FORMAT_EXTENSIBLE && size >= 26) code = buffer.readUInt16LE(body + 24);
      format = { code, channels: buffer.readUInt16LE(body + 2), rate: buffer.readUInt32LE(body + 4), bits: buffer.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!format) throw fail('data before fmt');
      const end = Math.min(buffer.length, body + size); // tolerate streamed WAVs with a bogus size
      return { sampleRate: format.rate, channels: decode(buffer.subarray(body, end), format, fail) };
    }
    offset = body + size + (size & 1);
  }
  throw fail('no data chunk');
}

function decode(data: Buffer, f: { code: number; channels: number; bits: number }, fail: (why: string) => Error): Float32Array[] {
  if (f.channels < 1 || f.channels > 8) throw fail(`${f.channels} channels`);
  const bytes = f.bits / 8;
  const read: ((at: number) => number) | undefined =
    f.code === FORMAT_PCM && f.bits === 16
      ? (at) => data.readInt16LE(at) / 32768
      : f.code === FORMAT_PCM && f.bits === 8
        ? (at) => ((data[at] as number) - 128) / 128
        : f.code === FORMAT_PCM && f.bits === 24
          ? (at) => data.readIntLE(at, 3) / 8388608
          : f.code === FORMAT_PCM && f.bits === 32
            ? (at) => data.readInt32LE(at) / 2147483648
            : f.code === FORMAT_FLOAT && f.bits === 32
              ? (at) => data.readFloatLE(at)
              : f.code === FORMAT_MULAW && f.bits === 8
                ? (at) => mulawFloat(data[at] as number)
                : undefined;
  if (!read) throw fail(`format ${f.code} with ${f.bits} bits is not supported (use PCM, float or mu-law)`);
  const frames = Math.floor(data.length / (bytes * f.channels));
  const channels = Array.from({ length: f.channels }, () => new Float32Array(frames));
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < f.channels; c++) (channels[c] as Float32Array)[i] = read((i * f.channels + c) * bytes);
  }
  return channels;
}

const mulawFloat = (byte: number): number => mulawDecodeSample(byte) / 32768;

/** 16-bit PCM WAV of one or more channels of equal length (e.g. customer left, agent right). */
export function writeWavPcm16(sampleRate: number, channels: readonly Int16Array[]): Buffer {
  const frames = channels[0]?.length ?? 0;
  const count = channels.length;
  const out = Buffer.alloc(44 + frames * count * 2);
  writeWavPcm16Header(out, sampleRate, count, frames);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < count; c++) out.writeInt16LE((channels[c] as Int16Array)[i] ?? 0, 44 + (i * count + c) * 2);
  }
  return out;
}

/** The 44-byte header of a 16-bit PCM WAV, written at the start of `out` (for callers that fill the samples themselves). */
export function writeWavPcm16Header(out: Buffer, sampleRate: number, count: number, frames: number): void {
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + frames * count * 2, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(count, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * count * 2, 28);
  out.writeUInt16LE(count * 2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(frames * count * 2, 40);
}
