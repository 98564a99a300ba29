// Shows what a colorization (or split-brain) run predicts: frames of a video as rows of original | lightness only |
// colorized (the run's L with the ab of annealed-mean decoding, T = 0.38), written as one PNG.
//
//   npx tsx scripts/colorizeFrames.ts --run runs/colour --video clip.mp4 --out colour.png [--frames 6] [--task split-brain]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { firstValueFrom, take, toArray } from 'rxjs';
import sharp from 'sharp';
import { selectBackend } from '../models/backend.ts';
import { loadModel } from '../models/modelIO.ts';
import type { Frame } from '../pipeline/frame.ts';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { labToRgb, rgbToLab } from '../pipeline/labColour.ts';
import { colorize } from '../tasks/image/colorization.ts';

const { values } = parseArgs({
  options: {
    run: { type: 'string' },
    video: { type: 'string' },
    out: { type: 'string' },
    frames: { type: 'string', default: '6' },
    fps: { type: 'string', default: '1' },
    task: { type: 'string', default: 'colorization' },
  },
});
if (!values.run || !values.video || !values.out) {
  console.error(
    'usage: scripts/colorizeFrames.ts --run DIR --video FILE --out FILE.png [--frames N] [--fps F] [--task colorization|split-brain]',
  );
  process.exit(1);
}
await selectBackend({ backend: 'auto', log: () => {} });
const info = JSON.parse(await readFile(join(values.run, 'run.json'), 'utf8')) as {
  format: { width: number; height: number };
};
const { width, height } = info.format;
const encoder = await loadModel(join(values.run, 'encoder'));
const head = await loadModel(join(values.run, 'checkpoint', 'heads', values.task!));
const frames = await firstValueFrom(
  decodeFrames(values.video, { width, height, fps: Number(values.fps) }).pipe(take(Number(values.frames)), toArray()),
);
const coloured = colorize(encoder, head, frames);
const lightnessOnly = (f: Frame): Uint8Array => {
  const out = new Uint8Array(f.data.length);
  for (let i = 0; i < f.data.length; i += 3) {
    const [l] = rgbToLab(f.data[i]! / 255, f.data[i + 1]! / 255, f.data[i + 2]! / 255);
    labToRgb(l, 0, 0).forEach((v, c) => (out[i + c] = Math.round(v * 255)));
  }
  return out;
};
// One row per frame: original, lightness only, colorized.
const sheet = new Uint8Array(frames.length * height * 3 * width * 3);
frames.forEach((frame, row) => {
  [frame.data, lightnessOnly(frame), coloured[row]!.data].forEach((pixels, column) => {
    for (let y = 0; y < height; y++) {
      const to = ((row * height + y) * 3 * width + column * width) * 3;
      sheet.set(pixels.subarray(y * width * 3, (y + 1) * width * 3), to);
    }
  });
});
await sharp(sheet, { raw: { width: 3 * width, height: frames.length * height, channels: 3 } })
  .png()
  .toFile(values.out);
console.log(`${values.out}: ${frames.length} frames (original | lightness | colorized), ${width}x${height} each`);
