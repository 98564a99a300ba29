import type { DecodeOptions } from './decodeFrames.ts';

/** How frames are decoded for training and evaluation. */
export interface FrameFormat {
  width: number;
  height: number;
  /** Resample to this rate; default: every source frame. */
  fps?: number;
  gray?: boolean;
}

/** The `[height, width, channels]` shape of frames in `format`. */
export function frameShape(format: FrameFormat): [number, number, number] {
  return [format.height, format.width, format.gray ? 1 : 3];
}

/**
 * The `decodeFrames` (and `liveFrames`) options that give frames in `format`. A width or height left out is the
 * video's own (keeping the aspect ratio if the other is given), as `tempo-ssl frames` allows.
 *
 * @example
 * decodeFrames(video, { ...decodeOptionsOf({ width: 64, height: 64, gray: true }), valve });
 */
export function decodeOptionsOf(
  format: Partial<FrameFormat>,
): Required<Pick<DecodeOptions, 'pixelFormat'>> & Pick<DecodeOptions, 'width' | 'height' | 'fps'> {
  return { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb' };
}
