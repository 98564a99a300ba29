import type { Frame } from '../../pipeline/frame.ts';

/** Builds an in-memory frame whose pixel (x, y, c) is `pixel(x, y, c)` (clamped to 0..255). Test helper, not a test. */
export function makeFrame(
  index: number,
  pixel: (x: number, y: number, c: number) => number,
  options: { width?: number; height?: number; channels?: 1 | 3; source?: string; fps?: number } = {},
): Frame {
  const { width = 8, height = 6, channels = 3, source = 'synthetic', fps = 25 } = options;
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++)
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(pixel(x, y, c))));
    }
  }
  return { data, width, height, channels, index, timestamp: index / fps, source };
}

/** A flat frame of one grey level. */
export function flatFrame(index: number, level: number, options: Parameters<typeof makeFrame>[2] = {}): Frame {
  return makeFrame(index, () => level, options);
}
