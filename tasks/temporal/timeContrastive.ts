import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { OptionError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { cropResize } from '../../pipeline/multiView.ts';
import type { Rng } from '../../core/rng.ts';
import { tripletSample, tripletTask } from '../contrastive/tripletTask.ts';
import type { SamplerContext } from '../task.ts';
import type { Sample } from '../../pipeline/sample.ts';

/** Options of the time-contrastive sampler. */
export interface TimeContrastiveOptions {
  /** Least distance in frames between the anchor's moment and its negative's. Default 6. */
  negativeGap?: number;
  /** Tuples (moments) of the current video remembered as negative candidates. Default 32. */
  memory?: number;
  /** Moments between two triplets. Default 1. */
  stride?: number;
  /**
   * When the raw items are single frames (one camera), views are made from each frame as random crops of this
   * side fraction resized back (as `syntheticViews` does), `[min, max]`. Default `[0.6, 0.9]`.
   */
  cropFraction?: readonly [number, number];
  /** Views made from a single frame. Default 2. */
  views?: number;
}

/** Multi-view tuples pass through; a single frame becomes `views` random crops of itself (a stand-in for cameras). */
function viewsOf(
  item: Frame | readonly Frame[],
  views: number,
  [lo, hi]: readonly [number, number],
  rng: Rng,
): readonly Frame[] {
  if (isTuple(item)) return item;
  return Array.from({ length: views }, () => {
    const side = rng.uniform(lo, hi);
    const w = Math.max(1, Math.round(side * item.width));
    const h = Math.max(1, Math.round(side * item.height));
    return { ...item, data: cropResize(item, [rng.int(item.width - w + 1), rng.int(item.height - h + 1), w, h]) };
  });
}

function isTuple(item: Frame | readonly Frame[]): item is readonly Frame[] {
  return Array.isArray(item);
}

/**
 * The multi-view time-contrastive sampler (TCN, Sermanet et al. 2018): for each moment, the anchor is one view,
 * the positive another view of the same moment, the negative the anchor's view at another moment of the same
 * video at least `negativeGap` frames away (what looks alike but happens at another time is the hard negative
 * that forces the embedding to capture the state of the scene, not the viewpoint). Items are multi-view tuples
 * (`alignViews`, `syntheticViews`) or single frames, which are cut into views. Memory: `memory` tuples, restarted
 * at each new video.
 *
 * @example
 * alignViews([left$, right$], { tolerance: 0.02 }).pipe(sampleTimeContrastive({ rng: new Rng(1) }));
 */
export function sampleTimeContrastive(
  context: SamplerContext,
  options: TimeContrastiveOptions = {},
): OperatorFunction<Frame | readonly Frame[], Sample> {
  const { negativeGap, memory, stride, cropFraction, views } = validateTimeContrastiveOptions(options);
  const { rng } = context;
  return (items: Observable<Frame | readonly Frame[]>) =>
    defer(() => {
      let recent: (readonly Frame[])[] = [];
      let count = 0;
      return items.pipe(
        mergeMap((item): Sample[] => {
          const tuple = viewsOf(item, views, cropFraction, rng);
          const moment = tuple[0];
          if (!moment || tuple.length < 2) {
            throw new OptionError(
              'views',
              tuple.length,
              'tuples of at least two views of one moment (alignViews or syntheticViews with count >= 2)',
            );
          }
          if (recent.length > 0 && recent[0]![0]!.source !== moment.source) recent = [];
          const far = recent.filter((other) => Math.abs(other[0]!.index - moment.index) >= negativeGap);
          recent.push(tuple);
          if (recent.length > memory) recent.shift();
          if (count++ % stride !== 0 || far.length === 0) return [];
          const a = rng.int(tuple.length);
          const p = (a + 1 + rng.int(tuple.length - 1)) % tuple.length;
          const other = far[rng.int(far.length)]!;
          return [tripletSample({ anchor: tuple[a]!, positive: tuple[p]!, negative: other[a] ?? other[0]! })];
        }),
      );
    });
}

function validateTimeContrastiveOptions(options: TimeContrastiveOptions): Required<TimeContrastiveOptions> {
  const { negativeGap = 6, memory = 32, stride = 1, cropFraction = [0.6, 0.9], views = 2 } = options;
  for (const [name, value] of [
    ['negativeGap', negativeGap],
    ['memory', memory],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (!Number.isInteger(views) || views < 2)
    throw new OptionError('views', views, 'an integer >= 2 (anchor and positive are two views)');
  const [lo, hi] = cropFraction;
  if (!(lo > 0 && lo <= hi && hi <= 1))
    throw new OptionError('cropFraction', cropFraction, 'a [min, max] range with 0 < min <= max <= 1');
  return { negativeGap, memory, stride, cropFraction, views };
}

/**
 * Multi-view time-contrastive learning (TCN): the same moment seen from another view is positive, the same view
 * at another moment negative; triplet loss on unit embeddings from the shared encoder and an embedding head.
 * Raw items: multi-view frame tuples, or single frames (views then made by random crops).
 */
export const timeContrastive = tripletTask<Frame | readonly Frame[]>({
  name: 'tcn',
  family: 'temporal',
  paper:
    'Sermanet, Lynch, Chebotar, Hsu, Jang, Schaal, Levine. Time-Contrastive Networks: Self-Supervised Learning from Video. ICRA 2018',
  sampler: (context) => sampleTimeContrastive(context),
});
