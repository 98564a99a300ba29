// Synthetic frames for the image-context learning tests. Test helper, not a test.
import { Rng } from '../../../core/rng.ts';
import type { Frame } from '../../../pipeline/frame.ts';

/** A frame whose pixel (y, x, c) is `value(y, x, c)`, clipped to 0..255. */
export function frameOf(
  height: number,
  width: number,
  channels: 1 | 3,
  value: (y: number, x: number, c: number) => number,
  source = 'test',
): Frame {
  const data = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++)
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(value(y, x, c))));
  return { data, width, height, channels, index: 0, timestamp: 0, source };
}

/**
 * Crossing bars: a horizontal and a vertical bar, each 3 pixels wide and the whole frame long, at random places
 * and of random colours, on a dark background with noise. The bars run through the frame, so the centre of a frame
 * follows from its border (inpainting) and a frame is a few numbers (autoencoder).
 */
export function bars(count: number, size: number, seed: number): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const [row, column] = [rng.int(size - 3), rng.int(size - 3)];
    const [across, down] = [[0, 1, 2].map(() => 120 + rng.int(136)), [0, 1, 2].map(() => 120 + rng.int(136))];
    return frameOf(
      size,
      size,
      3,
      (y, x, c) => {
        const noise = rng.int(30) - 15;
        if (y >= row && y < row + 3) return across[c]! + noise;
        if (x >= column && x < column + 3) return down[c]! + noise;
        return 30 + noise;
      },
      `bars-${seed}-${i}`,
    );
  });
}

/**
 * Radial scenes: brightness falls off with the distance from a centre near the middle of the frame (moved by up to
 * 2 pixels), with a random contrast and level, and noise; a patch's gradient points away from the centre, so where
 * a patch lies follows from the patch alone, as a photograph's patches tell sky from ground.
 */
export function radial(count: number, size: number, seed: number): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const [cy, cx] = [(size - 1) / 2 + rng.int(5) - 2, (size - 1) / 2 + rng.int(5) - 2];
    const [level, contrast] = [180 + rng.int(60), 6 + rng.next() * 6];
    const tint = [0, 1, 2].map(() => 0.7 + 0.3 * rng.next());
    return frameOf(
      size,
      size,
      3,
      (y, x, c) => (level - contrast * Math.hypot(y - cy, x - cx)) * tint[c]! + rng.int(20) - 10,
      `radial-${seed}-${i}`,
    );
  });
}
