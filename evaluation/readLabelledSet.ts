import { existsSync, statSync } from 'node:fs';
import { OptionError } from '../core/errors.ts';
import type { FrameFormat } from '../pipeline/frameFormat.ts';
import { idxImages } from './evaluate.ts';
import type { LabelledItems } from './linearProbe.ts';
import { labelledFrames, readVideoLabels } from './videoLabels.ts';

/** Options of `readLabelledSet`. */
export interface LabelledSetOptions {
  /** The encoder's input `[height, width, channels]`: IDX images are resized to it. */
  inputShape: number[];
  /** How video frames are decoded (the run's frame format). */
  format: FrameFormat;
  /** At most this many IDX images (the first ones). Default 5000. */
  limit?: number;
  /** Every n-th frame of a labelled video. Default 4. */
  everyNth?: number;
}

/**
 * A labelled set named as the `evaluate` command takes it: a video label CSV (`video,label` or
 * `video,frame,label`; items grouped by video) or an IDX pair written `images.gz,labels.gz` (images first).
 */
export async function readLabelledSet(
  spec: string,
  option: string,
  options: LabelledSetOptions,
): Promise<LabelledItems & { groups?: string[] }> {
  const kind = labelledSetKind(spec, option);
  if (kind === 'csv') {
    const { videos } = await readVideoLabels(spec);
    return labelledFrames(videos, options.format, options.everyNth ?? 4);
  }
  const pair = kind;
  return idxImages(pair[0]!, pair[1]!, options.inputShape, options.limit ?? 5000);
}

/**
 * Which form a labelled set spec has: 'csv' (an existing file) or the IDX `[images, labels]` pair. Checks the
 * files exist, so that a CLI can refuse a bad flag before loading anything.
 */
export function labelledSetKind(spec: string, option: string): 'csv' | [string, string] {
  if (existsSync(spec) && statSync(spec).isFile()) return 'csv';
  const pair = spec.split(',');
  if (pair.length !== 2 || pair.some((path) => !existsSync(path))) {
    throw new OptionError(
      option,
      spec,
      'a video label CSV file, or IDX images and labels written images.gz,labels.gz (both files must exist)',
    );
  }
  return pair as [string, string];
}
