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
