import { basename, dirname } from 'node:path';
import { lastValueFrom, reduce } from 'rxjs';
import { Rng } from '../../core/rng.ts';
import { readLabelledSet } from '../../evaluation/readLabelledSet.ts';
import { decodeFrames } from '../../pipeline/decodeFrames.ts';
import { frameToFloat, type Frame } from '../../pipeline/frame.ts';
import { decodeOptionsOf, frameShape, type FrameFormat } from '../../pipeline/frameFormat.ts';
import { decodeImage, listImages } from '../../pipeline/readImages.ts';
import type { RunInfo } from '../pretrainVideo.ts';
import type { MapItems } from './embeddingMap.ts';

const LIVE = /^(-|[a-z][a-z0-9+.-]*:\/\/)/i;

/**
 * Up to `count` items of a frame run's own inputs to map: frames spread evenly over each video (coloured by
 * source video), or a seeded draw of its images (coloured by class subfolder when there are any). Live inputs
 * (URLs, stdin) cannot be read again and are left out; `undefined` when nothing is left.
 */
export async function runItems(info: RunInfo, count: number, seed = 0): Promise<MapItems | undefined> {
  const shape = frameShape(info.format);
  if (info.images && info.images.length > 0) return imageItems(info.images, info.format, count, seed);
  const videos = [...(info.videos ?? []), ...(info.viewGroups ?? []).flat()].filter((v) => !LIVE.test(v));
  if (videos.length === 0) return undefined;
  const perVideo = Math.max(1, Math.floor(count / videos.length));
  const items: MapItems = {
    shape,
    items: [],
    labels: [],
    classes: [],
    captions: [],
    colourBy: 'source video',
    from: '',
  };
  for (const [k, video] of videos.slice(0, count).entries()) {
    const frames = await evenFrames(video, info.format, perVideo);
    items.classes.push(basename(video));
    for (const frame of frames) {
      items.items.push(frameToFloat(frame));
      items.labels.push(k);
      items.captions.push(`${basename(video)} @ ${frame.timestamp.toFixed(2)} s`);
    }
  }
  items.from = `${items.items.length} frames of the run's ${videos.length} video(s), spread evenly over each`;
  return items;
}

/** Up to `count` frames of a video, spread evenly: every n-th frame, n doubling whenever `count` are held. */
async function evenFrames(video: string, format: FrameFormat, count: number): Promise<Frame[]> {
  const state = await lastValueFrom(
    decodeFrames(video, decodeOptionsOf(format)).pipe(
      reduce(
        (s, frame, index) => {
          if (index % s.stride !== 0) return s;
          s.kept.push(frame);
          if (s.kept.length > count) {
            s.kept = s.kept.filter((_, k) => k % 2 === 0);
            s.stride *= 2;
          }
          return s;
        },
        { kept: [] as Frame[], stride: 1 },
      ),
    ),
    { defaultValue: { kept: [] as Frame[], stride: 1 } },
  );
  return state.kept;
}

async function imageItems(inputs: string[], format: FrameFormat, count: number, seed: number): Promise<MapItems> {
  const list = await listImages(inputs);
  const rng = new Rng(seed);
  // A seeded partial Fisher-Yates draw, kept in list order.
  const order = list.images.map((_, i) => i);
  const n = Math.min(count, order.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng.next() * (order.length - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const chosen = order.slice(0, n).sort((a, b) => a - b);
  const byClass = list.classes.length > 0;
  const items: MapItems = {
    shape: frameShape(format),
    items: [],
    labels: [],
    classes: byClass ? [...list.classes] : ['image'],
    captions: [],
    colourBy: byClass ? 'label (class folder)' : 'none (no class folders)',
    from: `${n} of the run's ${list.images.length} images (a seeded draw)`,
  };
  for (const i of chosen) {
    const ref = list.images[i]!;
    items.items.push(frameToFloat(await decodeImage(ref, format)));
    items.labels.push(byClass ? (ref.label ?? 0) : 0);
    items.captions.push(ref.kind === 'file' ? `${basename(dirname(ref.path))}/${basename(ref.path)}` : ref.source);
  }
  return items;
}

/**
 * Items of a labelled set as `evaluate --train` takes it (a video label CSV, an IDX pair `images,labels`, or a
 * folder of class folders), coloured by label: up to `count` of them, spread evenly over the set.
 */
export async function labelledItems(spec: string, format: FrameFormat, count: number): Promise<MapItems> {
  const shape = frameShape(format);
  const set = await readLabelledSet(spec, '--labels', { inputShape: shape, format, limit: Math.max(count, 1) });
  const step = Math.max(1, set.items.length / count);
  const picked: number[] = [];
  for (let at = 0; Math.floor(at) < set.items.length && picked.length < count; at += step) picked.push(Math.floor(at));
  const labelCount = Math.max(0, ...set.labels) + 1;
  const classes = set.classes ? [...set.classes] : Array.from({ length: labelCount }, (_, k) => `class ${k}`);
  return {
    shape,
    items: picked.map((i) => set.items[i]!),
    labels: picked.map((i) => set.labels[i]!),
    classes,
    captions: picked.map(
      (i) => `${set.groups?.[i] ? basename(set.groups[i]) + ' ' : '#' + i + ' '}(${classes[set.labels[i]!]})`,
    ),
    colourBy: 'label',
    from: `${picked.length} items of ${spec}`,
  };
}
