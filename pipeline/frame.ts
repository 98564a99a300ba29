/** One decoded video frame: packed pixels, row-major height x width x channels, uint8. */
export interface Frame {
  /**
   * Pixels, HWC, `height * width * channels` bytes; never reused or written again by the decoder. Frames decoded
   * from one read of ffmpeg's output may be views of one buffer (a decode then copies nothing): use the array's
   * own offset and length, and copy it before transferring `data.buffer` to another thread.
   */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** 3 for rgb24, 1 for gray. */
  readonly channels: 1 | 3;
  /** 0-based index of the frame in the decoded (resampled) stream. */
  readonly index: number;
  /** Presentation time in seconds from the start of the decoded range. */
  readonly timestamp: number;
  /** The input the frame came from (path or URL), so samples can tell videos apart. */
  readonly source: string;
}

/** A frame's pixels as floats in [0, 1], HWC. */
export function frameToFloat(frame: Frame): Float32Array {
  const out = new Float32Array(frame.data.length);
  for (let i = 0; i < out.length; i++) out[i] = frame.data[i]! / 255;
  return out;
}
