import { filter, map, pipe } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import type { PretextTask } from '../../../tasks/task.ts';

/** The three materials of the scenes: each has its own lightness and its own hue, so colour follows from L. */
const MATERIALS: [number, number, number][] = [
  [30, 50, 150], // dark blue
  [60, 160, 60], // mid green
  [245, 215, 70], // bright yellow
];

/**
 * Colour scenes `size` x `size` whose colour is learnable from lightness and shape: a background of one material,
 * a rectangle of another and a stripe of the third, each pixel with a little noise. Test helper, not a test.
 */
export function colourScenes(count: number, seed: number, size = 32): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, index) => {
    const order = [0, 1, 2].sort(() => rng.next() - 0.5);
    const [ry, rx, rh, rw] = [rng.int(size / 2), rng.int(size / 2), 8 + rng.int(size / 2), 8 + rng.int(size / 2)];
    const stripe = rng.int(size - 6);
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inRect = y >= ry && y < ry + rh && x >= rx && x < rx + rw;
        const material = x >= stripe && x < stripe + 6 ? order[2]! : inRect ? order[1]! : order[0]!;
        for (let c = 0; c < 3; c++) {
          const v = MATERIALS[material]![c]! + rng.int(17) - 8;
          data[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, v));
        }
      }
    }
    return { data, width: size, height: size, channels: 3, index, timestamp: index / 12, source: `scene-${seed}` };
  });
}

/**
 * The same task with each sample's targets taken from the image before it (the first image of a pass is dropped):
 * lightness no longer tells the colour.
 */
export function withShuffledTargets(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) => {
      let previous: Float32Array | undefined;
      return pipe(
        task.sampler(context),
        map((sample) => {
          const label = previous;
          previous = sample.label;
          return label && { ...sample, label };
        }),
        filter((sample): sample is Sample => sample !== undefined),
      );
    },
  };
}
