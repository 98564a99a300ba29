// Shared by the tests of the tasks on two views of a frame (simclr, moco): scenes, the wrong-partner control and
// the held-out partner retrieval they are scored by.
import type * as tf from '@tensorflow/tfjs';
import { bufferCount, firstValueFrom, from, mergeMap, pipe, toArray } from 'rxjs';
import { Rng } from '../../../core/rng.ts';
import { metricOverBatches } from '../../../evaluation/pretextMetrics.ts';
import type { Frame } from '../../../pipeline/frame.ts';
import type { Sample } from '../../../pipeline/sample.ts';
import { simclr } from '../../../tasks/contrastive/simclr.ts';
import type { PretextTask } from '../../../tasks/task.ts';

export const SIZE = 16;

export /** Scenes: a coloured background gradient and two rectangles of random colours at random places. */
function scenes(count: number, seed: number): Frame[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, index) => {
    const background = [0, 1, 2].map(() => rng.int(200));
    const boxes = [0, 1].map(() => ({
      y: rng.int(SIZE - 5),
      x: rng.int(SIZE - 5),
      h: 3 + rng.int(3),
      w: 3 + rng.int(3),
      colour: [0, 1, 2].map(() => rng.int(256)),
    }));
    const data = new Uint8Array(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        for (let c = 0; c < 3; c++) {
          const box = boxes.find((b) => y >= b.y && y < b.y + b.h && x >= b.x && x < b.x + b.w);
          data[(y * SIZE + x) * 3 + c] = box ? box.colour[c]! : background[c]! + 3 * y;
        }
    return { data, width: SIZE, height: SIZE, channels: 3, index, timestamp: 0, source: `scene-${seed}-${index}` };
  });
}

export /** The same task with each sample's second view taken from the next frame's sample: positives are other images. */
function withWrongPartners(task: PretextTask<Frame>): PretextTask<Frame> {
  return {
    ...task,
    sampler: (context) =>
      pipe(
        task.sampler(context),
        bufferCount(2),
        mergeMap((pair): Sample[] => {
          if (pair.length < 2) return pair;
          const half = pair[0]!.inputs[0]!.length / 2;
          const cross = (a: Sample, b: Sample): Sample => {
            const views = new Float32Array(2 * half);
            views.set(a.inputs[0]!.subarray(0, half));
            views.set(b.inputs[0]!.subarray(half), half);
            return { ...a, inputs: [views] };
          };
          return [cross(pair[0]!, pair[1]!), cross(pair[1]!, pair[0]!)];
        }),
      ),
  };
}

let heldOut: Promise<Sample[][]> | undefined;

/**
 * Two fresh augmentations of each of 64 scenes never trained on, in batches of 16 (32 views, 31 candidates: chance
 * 1/31), and how often a view's nearest other view through `encoder` and the projection `head` is its partner
 * (simclr's metric, whatever task trained them).
 */
export async function heldOutRetrieval(encoder: tf.LayersModel, head: tf.LayersModel): Promise<number> {
  heldOut ??= firstValueFrom(
    from(scenes(64, 900)).pipe(simclr.sampler({ rng: new Rng(1) }), bufferCount(16), toArray()),
  );
  const { accuracy } = await metricOverBatches(simclr, encoder, { head }, await heldOut, [SIZE, SIZE, 3]);
  return accuracy;
}
