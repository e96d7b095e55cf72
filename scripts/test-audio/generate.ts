// Generates the synthetic telephone speech corpus used by the ASR tests and benchmark.
//   node --import tsx scripts/test-audio/generate.ts [DIR]     (default ~/.cache/earshot/test-audio)
// Installs festival and its voices, espeak-ng, sox and pocketsphinx-testdata with apt-get when
// missing; cached by version.
import { defaultTestAudioDir, generateTestAudio } from './corpus.js';

try {
  const manifest = generateTestAudio(process.argv[2] ?? defaultTestAudioDir(), { log: (line) => console.log(`test-audio: ${line}`) });
  console.log(`test-audio: ${manifest.dir}/manifest.json (version ${manifest.version})`);
} catch (error) {
  console.error(`test-audio: ${(error as Error).message}`);
  process.exitCode = 1;
}
