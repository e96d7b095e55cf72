import { readFileSync } from 'node:fs';
import { upsample2x } from '../../../apps/asr/src/engine/upsample.js';
import { mulawToFloat32 } from '../../../apps/shared/src/audio/mulaw.js';
import { generateTestAudio } from '../../../scripts/test-audio/corpus.js';

/** The corpus call's scripted utterances as the model sees them: 16 kHz floats, 500 ms before and 200 ms after the speech. */
export function corpusUtterances(): { label: string; audio: Float32Array }[] {
  const corpus = generateTestAudio(process.env.EARSHOT_TEST_AUDIO_DIR);
  return (['customer', 'agent'] as const).flatMap((role) => {
    const track = corpus.call.tracks[role];
    const mulaw = new Uint8Array(readFileSync(track.mulaw));
    return track.utterances.map((u, i) => ({
      label: `${role} #${i + 1}`,
      audio: upsample2x(mulawToFloat32(mulaw.subarray((u.startMs - 500) * 8, (u.endMs + 200) * 8))),
    }));
  });
}
