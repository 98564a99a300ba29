import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { bufferCount, concat, defer, filter, firstValueFrom, toArray, type Observable } from 'rxjs';
import type { PretextTask, Sample } from '../tasks/task.ts';
import { collate, disposeBatch } from './batchSamples.ts';
import { decodeFrames } from './decodeFrames.ts';
import { DataFormatError } from './errors.ts';
import { frameToFloat, type Frame } from './frame.ts';
import type { LabelledItems } from './linearProbe.ts';
import { Rng } from './rng.ts';
import type { Valve } from './valve.ts';

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
 * One epoch of frames from several videos: the videos in an order shuffled by `rng`, each decoded in turn
 * (one ffmpeg at a time), pausing on `valve`. The same generator state gives the same epoch.
 */
export function videoEpoch(videos: readonly string[], format: FrameFormat, rng: Rng, valve?: Valve): Observable<Frame> {
  const order = rng.shuffle([...videos]);
  return concat(
    ...order.map((video) =>
      defer(() => decodeFrames(video, { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb', valve })),
    ),
  );
}

/** A task's samples for one epoch over `videos`: what `train` wants as `TrainTask.samples`. */
export function videoSamples(task: PretextTask<Frame>, videos: readonly string[], format: FrameFormat) {
  return (_epoch: number, valve: Valve, rng: Rng): Observable<Sample> =>
    videoEpoch(videos, format, rng, valve).pipe(task.sampler({ rng: rng.fork() }));
}

/** A labelled video, or one labelled frame of it when `frame` is given. */
export interface VideoLabel {
  video: string;
  /** 0-based frame index (in the decoded stream) for frame-level labels; absent when the label is the clip's. */
  frame?: number;
  label: number;
}

/**
 * Reads a labels file, CSV with a header: `video,label` (one clip a line: every frame gets the clip's label)
 * or `video,frame,label` (one frame a line). A label is a class index or a class name (names are numbered in
 * order of first appearance). Paths are relative to the file's folder.
 */
export async function readVideoLabels(file: string): Promise<{ videos: VideoLabel[]; classNames: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataFormatError(file, 'cannot read the labels file (check the path)', { cause: error });
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]?.replace(/\s/g, '');
  if (header !== 'video,label' && header !== 'video,frame,label') {
    throw new DataFormatError(file, `first line must be the header "video,label" or "video,frame,label"; got ${JSON.stringify(lines[0] ?? '')}`);
  }
  const perFrame = header === 'video,frame,label';
  const classNames: string[] = [];
  const videos = lines.slice(1).map((line, i): VideoLabel => {
    // Split from the right: a video path may itself hold commas.
    const fields = line.split(',');
    const raw = fields.pop()!.trim();
    const frameText = perFrame ? fields.pop()?.trim() : undefined;
    const path = fields.join(',').trim();
    if (!path || raw === '' || (perFrame && !/^\d+$/.test(frameText ?? ''))) {
      throw new DataFormatError(file, `line ${i + 2}: expected "${header}"; got ${JSON.stringify(line)}`);
    }
    let label = /^\d+$/.test(raw) ? Number(raw) : classNames.indexOf(raw);
    if (label === -1) label = classNames.push(raw) - 1;
    const video = isAbsolute(path) ? path : resolve(dirname(file), path);
    return perFrame ? { video, frame: Number(frameText), label } : { video, label };
  });
  if (videos.length === 0) throw new DataFormatError(file, 'no videos listed under the header');
  return { videos, classNames };
}

/**
 * Labelled frames for a probe, with the video as the group (so a split keeps each clip on one side):
 * for clip labels every `everyNth` frame of each video; for frame labels every `everyNth` labelled frame.
 */
export async function labelledFrames(labels: readonly VideoLabel[], format: FrameFormat, everyNth = 4): Promise<LabelledItems & { groups: string[] }> {
  const out = { items: [] as Float32Array[], labels: [] as number[], groups: [] as string[] };
  const byVideo = new Map<string, VideoLabel[]>();
  for (const entry of labels) byVideo.set(entry.video, [...(byVideo.get(entry.video) ?? []), entry]);
  for (const [video, entries] of byVideo) {
    const frameLabels = new Map(entries.filter((e) => e.frame !== undefined).map((e) => [e.frame!, e.label]));
    const clipLabel = entries.find((e) => e.frame === undefined)?.label;
    const frames = await firstValueFrom(
      decodeFrames(video, { width: format.width, height: format.height, fps: format.fps, pixelFormat: format.gray ? 'gray' : 'rgb' }).pipe(
        filter((f) => f.index % everyNth === 0 && (clipLabel !== undefined || frameLabels.has(f.index))),
        toArray(),
      ),
    );
    for (const frame of frames) {
      out.items.push(frameToFloat(frame));
      out.labels.push(frameLabels.get(frame.index) ?? clipLabel!);
      out.groups.push(video);
    }
  }
  return out;
}

/**
 * Pretext accuracy of a trained task on held-out videos: every sample the sampler draws from one pass over
 * them, in batches, mean of the task's metric weighted by batch size.
 */
export async function evaluateTask(
  task: PretextTask<Frame>,
  encoder: tf.LayersModel,
  head: tf.LayersModel,
  videos: readonly string[],
  format: FrameFormat,
  options: { seed?: number; batchSize?: number } = {},
): Promise<{ accuracy: number; samples: number }> {
  const rng = new Rng(options.seed ?? 12345);
  const shape = frameShape(format);
  // Unlike training, the short last batch counts too.
  const batches = await firstValueFrom(
    videoEpoch(videos, format, rng).pipe(task.sampler({ rng: rng.fork() }), bufferCount(options.batchSize ?? 32), toArray()),
  );
  let correct = 0;
  let count = 0;
  for (const samples of batches) {
    const batch = collate(samples, task.inputShapes(shape), task.labelShape(shape));
    const metric = tf.tidy(() => task.metric(batch.labels, task.forward(encoder, head, batch.inputs, false)));
    correct += (await metric.data())[0]! * samples.length;
    count += samples.length;
    metric.dispose();
    disposeBatch(batch);
  }
  return { accuracy: count ? correct / count : NaN, samples: count };
}
