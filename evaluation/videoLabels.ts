import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve, dirname } from 'node:path';
import { DataFormatError } from '../core/errors.ts';
import { firstValueFrom, filter, toArray } from 'rxjs';
import { decodeFrames } from '../pipeline/decodeFrames.ts';
import { frameToFloat } from '../pipeline/frame.ts';
import { decodeOptionsOf, type FrameFormat } from '../pipeline/frameFormat.ts';
import type { LabelledItems } from './linearProbe.ts';

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
    throw new DataFormatError(
      file,
      `first line must be the header "video,label" or "video,frame,label"; got ${JSON.stringify(lines[0] ?? '')}`,
    );
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
export async function labelledFrames(
  labels: readonly VideoLabel[],
  format: FrameFormat,
  everyNth = 4,
): Promise<LabelledItems & { groups: string[] }> {
  const out = { items: [] as Float32Array[], labels: [] as number[], groups: [] as string[] };
  const byVideo = new Map<string, VideoLabel[]>();
  for (const entry of labels) byVideo.set(entry.video, [...(byVideo.get(entry.video) ?? []), entry]);
  for (const [video, entries] of byVideo) {
    const frameLabels = new Map(entries.filter((e) => e.frame !== undefined).map((e) => [e.frame!, e.label]));
    const clipLabel = entries.find((e) => e.frame === undefined)?.label;
    const frames = await firstValueFrom(
      decodeFrames(video, decodeOptionsOf(format)).pipe(
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
