import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve, dirname } from 'node:path';
import { CsvError, parse, type Info } from 'csv-parse/sync';
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
 *
 * Parsed with `csv-parse`: a path holding commas or quotes may be double-quoted (`"a, b.mp4"`, inner quotes
 * doubled); an unquoted path with commas still works, since the fields left of the label (and frame) are joined
 * back. LF and CRLF line ends, a UTF-8 BOM and blank lines are accepted.
 *
 * @throws DataFormatError naming the file (and the line) for an unreadable file, a bad header, a bad line or an
 *   unclosed quote.
 * @example
 * // labels.csv:  video,label \n "walks, park.mp4",walk \n run.mp4,run
 * const { videos, classNames } = await readVideoLabels('clips/labels.csv'); // classNames: ['walk', 'run']
 */
export async function readVideoLabels(file: string): Promise<{ videos: VideoLabel[]; classNames: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataFormatError(file, 'cannot read the labels file (check the path)', { cause: error });
  }
  const [headerRow, ...rows] = parseRows(file, text);
  const header = headerRow?.fields.join(',').replace(/\s/g, '');
  if (header !== 'video,label' && header !== 'video,frame,label') {
    throw new DataFormatError(
      file,
      `first line must be the header "video,label" or "video,frame,label"; got ${JSON.stringify(headerRow?.raw ?? '')}`,
    );
  }
  const perFrame = header === 'video,frame,label';
  const classNames: string[] = [];
  const videos = rows.map(({ fields, line, raw }): VideoLabel => {
    // The label (and frame) are the last fields; what is left of them is the path, commas and all.
    const rest = [...fields];
    const labelText = rest.pop()!.trim();
    const frameText = perFrame ? rest.pop()?.trim() : undefined;
    const path = rest.join(',').trim();
    if (!path || labelText === '' || (perFrame && !/^\d+$/.test(frameText ?? ''))) {
      throw new DataFormatError(file, `line ${line}: expected "${header}"; got ${JSON.stringify(raw)}`);
    }
    let label = /^\d+$/.test(labelText) ? Number(labelText) : classNames.indexOf(labelText);
    if (label === -1) label = classNames.push(labelText) - 1;
    const video = isAbsolute(path) ? path : resolve(dirname(file), path);
    return perFrame ? { video, frame: Number(frameText), label } : { video, label };
  });
  if (videos.length === 0) throw new DataFormatError(file, 'no videos listed under the header');
  return { videos, classNames };
}

/** One CSV record: its fields, the (last) line it is on, and its text as written. */
interface CsvRow {
  fields: string[];
  line: number;
  raw: string;
}

/** The non-blank records of a CSV text. */
function parseRows(file: string, text: string): CsvRow[] {
  let records: Array<{ record: string[]; info: Info; raw: string }>;
  try {
    // With `info` and `raw` each record comes as { record, info, raw }; the typings know only plain rows.
    records = parse(text, {
      bom: true,
      record_delimiter: ['\r\n', '\n'],
      skip_empty_lines: true,
      // Rows have 2 or 3 fields, more when an unquoted path holds commas; a quote inside an unquoted path is text.
      relax_column_count: true,
      relax_quotes: true,
      info: true,
      raw: true,
    }) as unknown as typeof records;
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = typeof error.lines === 'number' ? `line ${error.lines}: ` : '';
    throw new DataFormatError(
      file,
      `${line}${error.message} (double-quote a path that holds commas or quotes, doubling the quotes inside: "a ""b"", c.mp4")`,
      { cause: error },
    );
  }
  return records
    .map(({ record, info, raw }) => ({ fields: record, line: info.lines, raw: raw.replace(/\r?\n$/, '') }))
    .filter((row) => !(row.fields.length === 1 && row.fields[0]!.trim() === ''));
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
