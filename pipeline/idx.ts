import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { DataFormatError } from '../core/errors.ts';

/** An IDX array (the MNIST / Fashion-MNIST file format): its dimensions and raw bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/**
 * Reads an IDX file of unsigned bytes (type 0x08), gzipped or not: images `[count, rows, cols]` or labels
 * `[count]`. Other element types and truncated files are rejected with a message naming the file.
 */
export async function readIdx(path: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new DataFormatError(path, 'cannot read the file (check the path)', { cause: error });
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new DataFormatError(path, 'looks gzipped but does not gunzip (truncated download?)', { cause: error });
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0 || bytes[2] !== 0x08) {
    throw new DataFormatError(
      path,
      'not an IDX file of unsigned bytes (expected magic 0x0000 08 nn, as in MNIST files)',
    );
  }
  const rank = bytes[3]!;
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const offset = 4 + 4 * rank;
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length < offset + size) {
    throw new DataFormatError(
      path,
      `holds ${bytes.length - offset} data bytes but its header [${dims}] needs ${size} (truncated file)`,
    );
  }
  return { dims, data: bytes.subarray(offset, offset + size) };
}
