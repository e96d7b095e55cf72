import { gunzipSync } from 'node:zlib';

/**
 * Reads named regular files out of a .tgz held in memory (what `npm pack` writes: ustar, with
 * the package under `package/`). Only what model extraction needs: no links, no streaming.
 * Format: 512-byte header blocks (name at 0..100, octal size at 124..136, type flag at 156,
 * ustar prefix at 345..500), each file's data padded to 512 bytes, two zero blocks at the end.
 * PAX (`x`) and GNU long-name (`L`) headers override the next entry's name.
 */
export function extractFromTarGz(tgz: Buffer, wanted: ReadonlySet<string>): Map<string, Buffer> {
  const tar = gunzipSync(tgz);
  const found = new Map<string, Buffer>();
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = Number.parseInt(cString(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] as number);
    const prefix = cString(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
    const body = offset + 512;
    if (!Number.isFinite(size) || body + size > tar.length) throw new Error(`truncated tar entry '${name}'`);
    const data = tar.subarray(body, body + size);
    longName = undefined;
    if (type === 'L') longName = cString(data, 0, data.length);
    else if (type === 'x') longName = paxPath(data);
    else if ((type === '0' || type === '\0') && wanted.has(name)) found.set(name, Buffer.from(data));
    offset = body + Math.ceil(size / 512) * 512;
  }
  return found;
}

function cString(buffer: Buffer, start: number, length: number): string {
  const slice = buffer.subarray(start, start + length);
  const end = slice.indexOf(0);
  return slice.toString('utf8', 0, end === -1 ? slice.length : end);
}

function paxPath(data: Buffer): string | undefined {
  for (const record of data.toString('utf8').split('\n')) {
    const match = /^\d+ path=(.*)$/.exec(record);
    if (match) return match[1];
  }
  return undefined;
}
