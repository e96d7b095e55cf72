import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { EarshotError } from '../../../shared/src/errors.js';
import { extractFromTarGz } from './tar-gz.js';

/**
 * The model weights, taken out of npm tarballs with `npm pack` (NOTES "Speech recognition"):
 * we never depend on those packages (they drag in half a GB of browser bundles) and never
 * download anything at request time. `ensureModels` is idempotent: a stamp file records the
 * size and mtime of each verified file, so a second call costs a few `stat`s.
 */
export interface ModelPaths {
  readonly dir: string;
  /** Moonshine tiny, quantized: encoder (`input_values` 16 kHz → `last_hidden_state`). */
  readonly encoder: string;
  /** Moonshine tiny, quantized: merged decoder with KV cache. */
  readonly decoder: string;
  /** Silero VAD v5 (runs natively at 8 kHz). */
  readonly vad: string;
}

interface ModelFile {
  readonly key: 'encoder' | 'decoder' | 'vad';
  readonly name: string;
  readonly entry: string;
  readonly sha256: string;
}

interface ModelPackage {
  readonly spec: string;
  readonly files: readonly ModelFile[];
}

/** Pinned versions and the sha256 of each extracted file, measured on extraction. */
export const MODEL_PACKAGES: readonly ModelPackage[] = [
  {
    spec: '@moonshine-ai/moonshine-js@0.1.29',
    files: [
      {
        key: 'encoder',
        name: 'moonshine-tiny-quantized-encoder_model.onnx',
        entry: 'package/dist/model/tiny/quantized/encoder_model.onnx',
        sha256: 'c6fc4b7bc5af75c0591fd157a1f3829b533d18e9769a888fd95a62e470dd4f4a',
      },
      {
        key: 'decoder',
        name: 'moonshine-tiny-quantized-decoder_model_merged.onnx',
        entry: 'package/dist/model/tiny/quantized/decoder_model_merged.onnx',
        sha256: 'eed87831c3a6103534aae7d47a5d485025c659a1323901513961c39fe8a1a367',
      },
    ],
  },
  {
    spec: '@ricky0123/vad-web@0.0.31',
    files: [
      {
        key: 'vad',
        name: 'silero_vad_v5.onnx',
        entry: 'package/dist/silero_vad_v5.onnx',
        sha256: '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f',
      },
    ],
  },
];

const STAMP = 'earshot-models.json';

/** `~/.cache/earshot/models`: outside the work tree, so fresh clones on one machine share it. */
export function defaultModelsDir(): string {
  return join(homedir(), '.cache', 'earshot', 'models');
}

/** Paths of the model files in `dir`, without checking them (see `ensureModels`). */
export function modelPaths(dir: string): ModelPaths {
  const abs = resolve(dir);
  const path = (key: ModelFile['key']) => join(abs, MODEL_PACKAGES.flatMap((p) => p.files).find((f) => f.key === key)?.name ?? key);
  return { dir: abs, encoder: path('encoder'), decoder: path('decoder'), vad: path('vad') };
}

export interface EnsureModelsOptions {
  /** Progress lines ("fetching ..."); silent by default. */
  log?: (line: string) => void;
  /** The npm executable (default `npm` from PATH). */
  npm?: string;
}

/**
 * Makes sure the verified model files are in `dir` (fetching the pinned packages from the npm
 * registry with `npm pack` if not) and returns their paths. Safe to run concurrently from
 * several processes: files are verified, then renamed into place.
 */
export async function ensureModels(dir: string = defaultModelsDir(), options: EnsureModelsOptions = {}): Promise<ModelPaths> {
  const paths = modelPaths(dir);
  mkdirSync(paths.dir, { recursive: true });
  const stamp = readStamp(paths.dir);
  let changed = false;
  for (const pkg of MODEL_PACKAGES) {
    const missing = pkg.files.filter((file) => !isVerified(paths.dir, file, stamp));
    if (missing.length === 0) continue;
    // A file that is present but not stamped may still be right (e.g. copied in by hand).
    const stillMissing = missing.filter((file) => {
      const path = join(paths.dir, file.name);
      if (existsSync(path) && sha256(readFileSync(path)) === file.sha256) {
        stamp[file.name] = fingerprint(path);
        changed = true;
        return false;
      }
      return true;
    });
    if (stillMissing.length === 0) continue;
    options.log?.(`fetching ${pkg.spec} from the npm registry`);
    const tgz = await npmPack(pkg.spec, paths.dir, options.npm ?? 'npm');
    const entries = extractFromTarGz(tgz, new Set(stillMissing.map((f) => f.entry)));
    for (const file of stillMissing) {
      const data = entries.get(file.entry);
      if (!data) throw modelError(`${pkg.spec} has no ${file.entry}`, pkg.spec);
      const actual = sha256(data);
      if (actual !== file.sha256) throw modelError(`${pkg.spec}: ${file.entry} has sha256 ${actual}, expected ${file.sha256}`, pkg.spec);
      const target = join(paths.dir, file.name);
      const temp = `${target}.${process.pid}.tmp`;
      writeFileSync(temp, data);
      renameSync(temp, target);
      stamp[file.name] = fingerprint(target);
      changed = true;
      options.log?.(`${file.name}: ${data.length} bytes, sha256 ok`);
    }
  }
  if (changed) {
    const temp = join(paths.dir, `${STAMP}.${process.pid}.tmp`);
    writeFileSync(temp, `${JSON.stringify(stamp, null, 2)}\n`);
    renameSync(temp, join(paths.dir, STAMP));
  }
  return paths;
}

type Stamp = Record<string, string>;

function readStamp(dir: string): Stamp {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dir, STAMP), 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as Stamp) : {};
  } catch {
    return {};
  }
}

/** A file counts as verified when it still has the size and mtime it had when its hash was checked. */
function isVerified(dir: string, file: ModelFile, stamp: Stamp): boolean {
  const path = join(dir, file.name);
  return existsSync(path) && stamp[file.name] === fingerprint(path);
}

function fingerprint(path: string): string {
  const s = statSync(path);
  return `${s.size}:${s.mtimeMs}`;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function npmPack(spec: string, dir: string, npm: string): Promise<Buffer> {
  const temp = mkdtempSync(join(dir, '.pack-'));
  return new Promise<Buffer>((resolvePack, reject) => {
    execFile(
      npm,
      ['pack', spec, '--pack-destination', temp, '--loglevel=error', '--no-fund', '--no-audit'],
      { timeout: 180_000, maxBuffer: 4 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        try {
          if (error) {
            const code = (error as NodeJS.ErrnoException).code;
            const why =
              code === 'ENOENT'
                ? `'${npm}' was not found on PATH`
                : `${npmReason(stderr) || error.message.split('\n')[0]} (is the npm registry reachable? check 'npm ping')`;
            reject(modelError(`cannot fetch ${spec} with npm pack: ${why}`, spec));
            return;
          }
          const file = readdirSync(temp).find((name) => name.endsWith('.tgz'));
          if (!file) {
            reject(modelError(`npm pack ${spec} wrote no tarball`, spec));
            return;
          }
          resolvePack(readFileSync(join(temp, file)));
        } finally {
          rmSync(temp, { recursive: true, force: true });
        }
      },
    );
  });
}

/** The telling line of npm's error output ("FetchError: request to ... failed, reason: ..."). */
function npmReason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .filter((line) => line.startsWith('npm error '))
    .map((line) => line.slice('npm error '.length).trim());
  const telling = lines.find((line) => line.length > 0 && !/^(code|syscall|errno|at |A complete log|If you are behind|[{}])/.test(line));
  return telling ?? lines[0] ?? '';
}

// TODO(lead): a dedicated code such as EARSHOT_ASR_MODEL_UNAVAILABLE would fit better; errors.ts
// is not ours to change, and a missing model is a missing prerequisite.
function modelError(message: string, spec: string): EarshotError {
  return new EarshotError('EARSHOT_INFRA_PREREQUISITE_MISSING', `speech models: ${message}`, { fields: { package: spec } });
}
