import t from 'tap';
import { mulawDecodeSample, mulawEncodeSample, mulawToFloat32, mulawToPcm16, pcm16ToMulaw } from '../../../apps/shared/src/audio/mulaw.js';
import { floatToPcm16, resample } from '../../../apps/shared/src/audio/resample.js';
import { readWav, writeWavPcm16 } from '../../../apps/shared/src/audio/wav.js';

t.test('mu-law decodes the G.711 reference points and round-trips every code', async (t) => {
  t.equal(mulawDecodeSample(0xff), 0, '0xff is silence');
  t.equal(mulawDecodeSample(0x7f), 0, '0x7f is (negative) silence');
  t.equal(mulawDecodeSample(0x80), 32124, 'largest positive');
  t.equal(mulawDecodeSample(0x00), -32124, 'largest negative');
  let exact = 0;
  for (let code = 0; code < 256; code++) if (mulawEncodeSample(mulawDecodeSample(code)) === code) exact++;
  t.ok(exact >= 255, `${exact}/256 codes round-trip (0x7f and 0xff are both zero)`);
  const pcm = Int16Array.from([0, 100, -100, 1000, -1000, 30000, -30000]);
  const back = mulawToPcm16(pcm16ToMulaw(pcm));
  for (let i = 0; i < pcm.length; i++) {
    const v = pcm[i] as number;
    t.ok(Math.abs((back[i] as number) - v) <= Math.max(8, Math.abs(v) * 0.07), `${v} within mu-law step`);
  }
  t.equal(mulawToFloat32(Uint8Array.from([0x80]))[0], 32124 / 32768);
});

t.test('WAV: 16-bit stereo written, read back the same; mu-law and float WAVs read', async (t) => {
  const left = Int16Array.from([0, 1000, -1000, 32767]);
  const right = Int16Array.from([5, -5, 20000, -32768]);
  const audio = readWav(writeWavPcm16(8000, [left, right]));
  t.equal(audio.sampleRate, 8000);
  t.equal(audio.channels.length, 2);
  t.same(Array.from(floatToPcm16(audio.channels[0] as Float32Array)), Array.from(left));
  t.same(Array.from(floatToPcm16(audio.channels[1] as Float32Array)), Array.from(right));
  t.throws(() => readWav(Buffer.from('not a wav file at all')), { message: /no RIFF\/WAVE header/ });
  const truncated = writeWavPcm16(8000, [left]).subarray(0, 36);
  t.throws(() => readWav(truncated, 'x.wav'), { message: /x\.wav: not a supported WAV file: no data chunk/ });
});

t.test('resampling keeps a tone at its frequency and length ratio', async (t) => {
  const rate = 16000;
  const tone = new Float32Array(rate).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / rate));
  const down = resample(tone, rate, 8000);
  t.equal(down.length, 8000);
  // Count zero crossings: 440 Hz over one second = 880 crossings.
  let crossings = 0;
  for (let i = 1; i < down.length; i++) if (Math.sign(down[i] as number) !== Math.sign(down[i - 1] as number)) crossings++;
  t.ok(Math.abs(crossings - 880) <= 2, `${crossings} zero crossings`);
  const peak = down.slice(100, -100).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  t.ok(peak > 0.45 && peak < 0.55, `amplitude kept (${peak.toFixed(3)})`);
  // A 6 kHz tone is above the 4 kHz Nyquist of 8 kHz: it must not alias into the band.
  const high = new Float32Array(rate).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 6000 * i) / rate));
  const aliased = resample(high, rate, 8000)
    .slice(100, -100)
    .reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  t.ok(aliased < 0.02, `out-of-band tone suppressed (${aliased.toFixed(4)})`);
  t.equal(resample(tone, 8000, 16000).length, 32000);
});
