import { defer, mergeMap, type Observable, type OperatorFunction } from 'rxjs';
import { OptionError, VideoError } from '../../core/errors.ts';
import type { Frame } from '../../pipeline/frame.ts';
import type { Sample } from '../../pipeline/sample.ts';
import { tripletSample, tripletTask } from '../contrastive/tripletTask.ts';
import type { PretextTask, SamplerContext } from '../task.ts';

/** Options of the time-contrastive sampler. Times are seconds on the frames' timestamps, so any frame rate works. */
export interface TimeContrastiveOptions {
  /**
   * Single view: the positive is a moment at most this long before the anchor (the paper's positive range), or the
   * moment just before the anchor when none is that close (a low frame rate). Default 0.2 s, the official code's
   * 6 frames at 29 fps.
   */
  positiveRange?: number;
  /**
   * Negatives lie more than this long from the anchor (the paper's margin range), and farther than the positive.
   * Default 0.4 s, the official code's negative radius (twice the positive one).
   */
  marginRange?: number;
  /**
   * Negatives lie at most this long from the anchor: temporal neighbours, which look alike but show another state
   * of the scene. Default 2 s.
   */
  negativeRange?: number;
  /** Moments remembered per video, whatever the frame rate (bounds memory). Default 128. */
  memory?: number;
  /** Moments between two triplets. Default 1. */
  stride?: number;
}

/** Seconds below which two time differences count as equal (timestamps are `index / fps`, rounded in floating point). */
const EPSILON = 1e-6;

/** A moment of a recording: one frame per camera (one frame for a single view), and its time. */
interface Moment {
  readonly time: number;
  readonly views: readonly Frame[];
}

/**
 * The time-contrastive sampler (TCN, Sermanet et al. 2018), one triplet (anchor, positive, negative) per moment:
 *
 * - multi-view (items are tuples of two or more synchronized cameras of one moment, from `alignViews`): the anchor
 *   is one camera's frame, the positive another camera's frame of the same moment, the negative the anchor's
 *   camera at another moment of the same recording, more than `marginRange` and at most `negativeRange` away.
 *   What looks alike in one camera but happens at another time is the hard negative that makes the embedding
 *   capture the state of the scene rather than the viewpoint.
 * - single view (items are single frames, or one-frame tuples): the positive is a frame of the same video within
 *   `positiveRange` before the anchor, the negative one more than `marginRange` away (and at most `negativeRange`).
 *
 * The anchor is the newest moment and its positive and negatives come from the moments before it (a stream is
 * read once, forward), `memory` moments at most, forgotten at each new video (source) or when time runs backwards.
 * A recording shorter than `marginRange` gives no triplet.
 *
 * @throws VideoError (in the stream) for frames whose timestamp is not a number (a container without a frame rate
 *   decoded without `fps`): their distances in time are unknown.
 * @example
 * alignViews([left$, right$], { tolerance: 0.04 }).pipe(sampleTimeContrastive({ rng: new Rng(1) }));
 * frames$.pipe(sampleTimeContrastive({ rng: new Rng(1) }, { positiveRange: 0.2, marginRange: 0.4 }));
 */
export function sampleTimeContrastive(
  context: SamplerContext,
  options: TimeContrastiveOptions = {},
): OperatorFunction<Frame | readonly Frame[], Sample> {
  const o = validateTimeContrastiveOptions(options);
  const { rng } = context;

  const singleView = (moment: Moment, earlier: readonly Moment[]): Sample[] => {
    const close = earlier.filter((m) => moment.time - m.time <= o.positiveRange + EPSILON);
    const positives = close.length > 0 ? close : earlier.slice(-1);
    if (positives.length === 0) return [];
    const positive = positives[rng.int(positives.length)]!;
    const margin = Math.max(o.marginRange, moment.time - positive.time);
    const negatives = earlier.filter((m) => moment.time - m.time > margin + EPSILON);
    if (negatives.length === 0) return [];
    const negative = negatives[rng.int(negatives.length)]!;
    return [tripletSample({ anchor: moment.views[0]!, positive: positive.views[0]!, negative: negative.views[0]! })];
  };

  const multiView = (moment: Moment, earlier: readonly Moment[]): Sample[] => {
    const negatives = earlier.filter((m) => moment.time - m.time > o.marginRange + EPSILON);
    if (negatives.length === 0) return [];
    const count = moment.views.length;
    const a = rng.int(count);
    const p = (a + 1 + rng.int(count - 1)) % count;
    const negative = negatives[rng.int(negatives.length)]!;
    return [tripletSample({ anchor: moment.views[a]!, positive: moment.views[p]!, negative: negative.views[a]! })];
  };

  return (items: Observable<Frame | readonly Frame[]>) =>
    defer(() => {
      let recent: Moment[] = [];
      let count = 0;
      return items.pipe(
        mergeMap((item): Sample[] => {
          const moment = momentOf(item);
          const last = recent.at(-1);
          const sameRecording =
            last !== undefined &&
            last.views[0]!.source === moment.views[0]!.source &&
            last.views.length === moment.views.length &&
            last.time < moment.time;
          if (!sameRecording) recent = [];
          const earlier = recent
            .filter((m) => moment.time - m.time <= o.negativeRange + EPSILON)
            .slice(-(o.memory - 1));
          recent = [...earlier, moment];
          if (count++ % o.stride !== 0) return [];
          return moment.views.length === 1 ? singleView(moment, earlier) : multiView(moment, earlier);
        }),
      );
    });
}

function momentOf(item: Frame | readonly Frame[]): Moment {
  const views: readonly Frame[] = Array.isArray(item) ? (item as readonly Frame[]) : [item as Frame];
  const first = views[0];
  if (!first) throw new OptionError('views', views.length, 'moments of at least one frame (one per camera)');
  if (!Number.isFinite(first.timestamp)) {
    throw new VideoError(
      `${first.source}: frame ${first.index} has no timestamp (the container states no frame rate), so tcn cannot tell how far apart its frames are: resample it with --fps (e.g. --fps 10)`,
      first.source,
    );
  }
  return { time: first.timestamp, views };
}

function validateTimeContrastiveOptions(options: TimeContrastiveOptions): Required<TimeContrastiveOptions> {
  const { positiveRange = 0.2, marginRange = 0.4, negativeRange = 2, memory = 128, stride = 1 } = options;
  for (const [name, value] of [
    ['memory', memory],
    ['stride', stride],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
  }
  if (memory < 2) throw new OptionError('memory', memory, 'at least 2 moments (an anchor and one before it)');
  if (!(positiveRange > 0 && Number.isFinite(positiveRange)))
    throw new OptionError('positiveRange', positiveRange, 'a positive number of seconds, e.g. 0.2');
  if (!(marginRange >= positiveRange && Number.isFinite(marginRange)))
    throw new OptionError('marginRange', marginRange, `a number of seconds >= positiveRange (${positiveRange})`);
  if (!(negativeRange > marginRange && Number.isFinite(negativeRange)))
    throw new OptionError('negativeRange', negativeRange, `a number of seconds > marginRange (${marginRange})`);
  return { positiveRange, marginRange, negativeRange, memory, stride };
}

/**
 * Time-Contrastive Networks (Sermanet et al., ICRA 2018).
 *
 * What the paper does: frames of several synchronized cameras filming one scene are embedded (Inception, two conv
 * layers, spatial softmax, a fully connected layer to 32 dimensions) and trained with the triplet loss
 * `|f(a) - f(p)|^2 + alpha < |f(a) - f(n)|^2`: the anchor and positive are simultaneous frames of two cameras,
 * the negative a frame of the anchor's camera at another time of the same sequence, a temporal neighbour that
 * looks alike but shows another state. Single-view TCN takes the positive within a small window around the
 * anchor (the positive range) and negatives outside a margin range. The released code L2-normalizes the
 * embedding with margin 0.2 (FaceNet's), mines semi-hard negatives among the batch's other pairs (drawn from a
 * 20 s window of one sequence), uses a positive radius of 0.2 s and a negative radius of 0.4 s in single view, and
 * also trains multi-view TCN with the n-pairs loss, which its authors found to converge better.
 *
 * What this does: the same sampling (see `sampleTimeContrastive`): with `pretrain --views cam1,cam2,...` each item
 * is one moment of all cameras (`alignViews`), with `pretrain --video` a frame of one video (single view). The
 * shared encoder plus a dense(64)-linear(32) head gives L2-normalized 32-dimensional embeddings, trained with the
 * triplet loss at margin 0.2 (`tripletTask`). Differences and why: each triplet carries its own negative, drawn
 * at random from the temporal neighbours 0.4-2 s away rather than mined semi-hard from the batch, since batches
 * here mix moments of several recordings and tasks and a stream is read once, forward (the anchor is the newest
 * moment, its positive and negatives come from before it); the encoder is the project's small conv encoder, not an
 * ImageNet-pretrained Inception; the n-pairs variant is not built.
 *
 * Reads `views`: moments of one or more cameras (a single frame is a one-camera moment, so frame sources work too).
 */
export const timeContrastive: PretextTask<Frame | readonly Frame[]> = {
  ...tripletTask<Frame | readonly Frame[]>({
    name: 'tcn',
    family: 'temporal',
    paper:
      'Sermanet, Lynch, Chebotar, Hsu, Jang, Schaal, Levine. Time-Contrastive Networks: Self-Supervised Learning from Video. ICRA 2018',
    sampler: (context) => sampleTimeContrastive(context),
  }),
  reads: 'views',
};
