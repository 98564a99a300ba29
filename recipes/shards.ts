import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Data,
  DataType,
  Dictionary,
  Field,
  FixedSizeList,
  Float32,
  Int16,
  Int32,
  Int8,
  makeData,
  Precision,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  tableFromIPC,
  Uint16,
  Uint8,
  Utf8,
  makeVector,
  type Vector,
  type Table,
} from 'apache-arrow';
import { concatMap, defer, Observable } from 'rxjs';
import type { TaskName } from '../tasks/registry.ts';
import type { Sample } from '../pipeline/sample.ts';
import { DataFormatError, OptionError } from '../core/errors.ts';
import type { TextTaskConfig } from '../tasks/text/textTaskConfig.ts';
import type { Valve } from '../core/valve.ts';

/**
 * The manifest version this code writes: 3 = Arrow IPC shards whose columns take the narrowest exact type (2 wrote
 * every column as float32; this code still reads those; 1 was gzip JSON lines).
 */
export const MANIFEST_VERSION = 3;

/** Manifest versions this code reads. */
const READABLE_VERSIONS: readonly unknown[] = [2, MANIFEST_VERSION];

/** Shapes of a task's samples (without the batch axis): each input, and the label. */
export interface SampleShapes {
  inputs: number[][];
  label: number[];
}

/** One finished shard file: the samples of one task. */
export interface ShardEntry {
  /** File name inside the output folder. */
  file: string;
  /** The task whose samples it holds. */
  task: string;
  samples: number;
  bytes: number;
  /** Hex sha256 of the file's bytes. */
  sha256: string;
}

/** What `manifest.json` holds: enough to check, resume and read back a process-corpus run. */
export interface ShardManifest {
  version: 2 | typeof MANIFEST_VERSION;
  /** True once every sample has been written. */
  complete: boolean;
  seed: number;
  /** The tokenizer copied beside the shards, with the hash of its bytes. */
  tokenizer: { file: string; sha256: string };
  taskConfig: TextTaskConfig;
  /** Every option that changes the bytes; a rerun with other options refuses to resume. */
  options: {
    tasks: TaskName[];
    /** Samples per shard, or null: each task's shards hold about {@link SHARD_BYTES} (see {@link shardCapacity}). */
    shardSize: number | null;
    shard: { index: number; count: number } | null;
    /** In the merged `manifest.json` of a partitioned run: the partitions whose manifests it joins. */
    partitions?: number;
    text: string[];
    dialogues: string[];
    dialogueFormat: string;
    onInvalid: string;
  };
  /** Per task, the shapes of its inputs and label (each shard's schema metadata holds them too). */
  shapes: Record<string, SampleShapes>;
  /** Samples per task over finished shards. */
  counts: Record<string, number>;
  /** Tokens of the whole corpus counted for word2vec's negatives and subsampling (absent when no task needed them). */
  corpusTokens?: number;
  shards: ShardEntry[];
}

/**
 * What a shard holds when no shard size is given: its columns read back as float32 (with the source index) take
 * about this many bytes. A skip-gram row is 56 bytes that way, so 74,898 rows (1.6 MB on disk, narrowed); an NSP
 * or MLM sample at 32 tokens about 260-400. Fixed sample counts made skip-gram write 349 files of 210 kB for
 * 3.2 MB of text, each with its own fsync.
 */
export const SHARD_BYTES = 4 * 2 ** 20;

/** Samples per shard of a task with these shapes: `shardSize` when given, else those that fill {@link SHARD_BYTES}. */
export function shardCapacity(shardSize: number | null, shapes: SampleShapes): number {
  if (shardSize !== null) return shardSize;
  const floats = shapes.inputs.reduce((n, shape) => n + size(shape), size(shapes.label));
  return Math.max(1, Math.floor(SHARD_BYTES / (4 * floats + 4)));
}

/** File names of a worker's shards and manifest. */
export function manifestNames(shard: ShardManifest['options']['shard']): {
  manifest: string;
  shard: (i: number) => string;
} {
  const tag = shard ? `-${shard.index}-of-${shard.count}` : '';
  return { manifest: `manifest${tag}.json`, shard: (i) => `shard${tag}-${String(i).padStart(5, '0')}.arrow` };
}

/**
 * The manifest at `path`, or undefined when there is none.
 *
 * @throws DataFormatError when it is not JSON, or was written by an older process-corpus (version 1: gzip JSON
 *   lines), which this one no longer reads.
 */
export async function readManifestFile(path: string): Promise<ShardManifest | undefined> {
  if (!existsSync(path)) return undefined;
  let manifest: { version?: unknown };
  try {
    manifest = JSON.parse(await readFile(path, 'utf8')) as typeof manifest;
  } catch (cause) {
    throw new DataFormatError(
      path,
      `not a valid manifest: ${(cause as Error).message} (delete the folder and rerun process-corpus)`,
      { cause },
    );
  }
  if (!READABLE_VERSIONS.includes(manifest.version))
    throw new DataFormatError(
      path,
      `manifest version ${String(manifest.version)}${manifest.version === 1 ? ' (gzip JSON-lines shards)' : ''}, this tempo-ssl reads versions ${READABLE_VERSIONS.join(' and ')} (Arrow shards): rerun process-corpus into a new folder`,
    );
  return manifest as ShardManifest;
}

/**
 * The manifests of a process-corpus folder (one, or one per `--shard` worker), merged: their shards in worker
 * order and their counts summed.
 *
 * @throws DataFormatError when the folder holds no manifest, a run is unfinished, or workers disagree.
 */
export async function readShardManifest(dir: string): Promise<ShardManifest> {
  const all = existsSync(dir) ? await readdir(dir) : [];
  // A partitioned run's manifest.json lists every partition's shards: it alone is the folder's manifest.
  const files = all.includes('manifest.json')
    ? ['manifest.json']
    : all.filter((f) => /^manifest(-\d+-of-\d+)?\.json$/.test(f)).sort(byWorker);
  if (files.length === 0)
    throw new DataFormatError(
      dir,
      'no manifest.json: not a process-corpus folder (run tempo-ssl process-corpus --out DIR first)',
    );
  const manifests: ShardManifest[] = [];
  for (const f of files) manifests.push((await readManifestFile(join(dir, f)))!);
  const first = manifests[0]!;
  manifests.forEach((m, i) => {
    if (!m.complete)
      throw new DataFormatError(
        join(dir, files[i]!),
        'unfinished: process-corpus was stopped before the end (rerun the same command to finish it)',
      );
    if (
      m.tokenizer.sha256 !== first.tokenizer.sha256 ||
      JSON.stringify(m.taskConfig) !== JSON.stringify(first.taskConfig)
    ) {
      throw new DataFormatError(
        join(dir, files[i]!),
        `tokenizer or task settings differ from ${files[0]} (process every worker with the same options)`,
      );
    }
  });
  const counts: Record<string, number> = {};
  for (const m of manifests) for (const [k, v] of Object.entries(m.counts)) counts[k] = (counts[k] ?? 0) + v;
  return { ...first, counts, shards: manifests.flatMap((m) => m.shards) };
}

function byWorker(a: string, b: string): number {
  const n = (f: string): number => Number(/-(\d+)-of-/.exec(f)?.[1] ?? -1);
  return n(a) - n(b);
}

/** Options of {@link shardSamples}. */
export interface ShardSamplesOptions {
  /** Backpressure: reading pauses while it is closed. */
  valve?: Valve;
}

/**
 * The samples of one task from a process-corpus folder, in the order they were written, as plain Float32Arrays
 * (copies, so a sample does not hold its shard's bytes alive); `source` is the corpus place the sample came from.
 *
 * @throws (via the stream) DataFormatError for a shard that is not the Arrow file its manifest lists; OptionError
 *   when the folder holds no sample of the task.
 */
export function shardSamples(dir: string, task: TaskName, options: ShardSamplesOptions = {}): Observable<Sample> {
  return defer(async () => {
    const manifest = await readShardManifest(dir);
    if (!manifest.counts[task]) {
      throw new OptionError(
        '--tasks',
        task,
        `a task with samples in ${dir} (it has ${Object.keys(manifest.counts).join(', ') || 'none'})`,
      );
    }
    return manifest.shards.filter((s) => s.task === task).map((s) => join(dir, s.file));
  }).pipe(concatMap((files) => emitShards(files, options.valve)));
}

/** Reads the files one after the other and emits their samples while the valve is open. */
function emitShards(files: readonly string[], valve: Valve | undefined): Observable<Sample> {
  return new Observable<Sample>((subscriber) => {
    let stopped = false;
    let cancelWait = (): void => {};
    const opened = (): Promise<void> =>
      new Promise<void>((resolve) => {
        cancelWait = valve ? valve.onOpen(resolve) : (resolve(), () => {});
      });
    void (async () => {
      for (const file of files) {
        const shard = readShard(file, await readFile(file));
        for (let i = 0; i < shard.length && !stopped; i++) {
          if (valve && !valve.isOpen) await opened();
          if (!stopped) subscriber.next(shard.sample(i));
        }
        if (stopped) return;
      }
      subscriber.complete();
    })().catch((error: unknown) => subscriber.error(error));
    return () => {
      stopped = true;
      cancelWait();
    };
  });
}

/** One shard file read back: its task, shapes and samples by row. */
export interface ShardTable {
  task: string;
  shapes: SampleShapes;
  length: number;
  /** Row `i` as a sample of fresh Float32Arrays. */
  sample(i: number): Sample;
}

/**
 * Parses one Arrow IPC shard (see {@link encodeShard}).
 *
 * @throws DataFormatError naming `where` when the bytes are not such a shard.
 */
export function readShard(where: string, bytes: Uint8Array): ShardTable {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (cause) {
    throw new DataFormatError(
      where,
      `not an Arrow IPC shard: ${(cause as Error).message} (rerun process-corpus into a new folder)`,
      { cause },
    );
  }
  const meta = table.schema.metadata;
  const task = meta.get(META_TASK);
  const shapes = parseShapes(meta.get(META_SHAPES));
  if (task === undefined || !shapes)
    throw new DataFormatError(where, `no ${META_TASK} / ${META_SHAPES} metadata (rerun process-corpus)`);
  const column = (name: string, width: number): NumberColumn => {
    const vector = table.getChild(name);
    if (
      !vector ||
      !(vector.type instanceof FixedSizeList) ||
      vector.type.listSize !== width ||
      !isNumberType((vector.type as FixedSizeList).valueType)
    )
      throw new DataFormatError(
        where,
        `column ${name} is not a fixed-size list of ${width} numbers (rerun process-corpus)`,
      );
    // One record batch per shard (more are joined here, as floats): the flat values of every row, in their own type.
    // Each sample widens its rows to floats when it is read (narrow integers widen exactly): a shard in memory stays
    // narrow, and its first sample does not wait for the whole shard to be widened.
    const chunks = vector.data.map((d) =>
      (d.children[0]!.values as NumberColumn).subarray(d.offset * width, (d.offset + d.length) * width),
    );
    if (chunks.length === 1) return chunks[0]!;
    return concatFloats(chunks.map((c) => (c instanceof Float32Array ? c : new Float32Array(c))));
  };
  const inputWidths = shapes.inputs.map(size);
  const labelWidth = size(shapes.label);
  const inputs = inputWidths.map((w, k) => column(inputName(k), w));
  const label = column('label', labelWidth);
  const sources = table.getChild('source');
  const length = table.numRows;
  return {
    task,
    shapes,
    length,
    sample: (i) => ({
      inputs: inputs.map((flat, k) => new Float32Array(flat.subarray(i * inputWidths[k]!, (i + 1) * inputWidths[k]!))),
      label: new Float32Array(label.subarray(i * labelWidth, (i + 1) * labelWidth)),
      source: (sources?.get(i) as string | null | undefined) ?? `${where}:${i}`,
    }),
  };
}

/** Schema metadata keys of a shard: the task name, and its {@link SampleShapes} as JSON. */
export const META_TASK = 'tempo-ssl.task';
export const META_SHAPES = 'tempo-ssl.shapes';

/**
 * Gathers the samples of one task into flat typed columns and encodes them as one Arrow IPC file: columns
 * `input_0` .. `input_{n-1}` and `label` (fixed-size lists of numbers, one row a sample, flattened row-major from
 * the shapes in the schema metadata) and `source` (dictionary-encoded utf8: the corpus place of the sample), in one
 * record batch. Number columns are narrow where that is exact: rows added as integer columns ({@link addRows} with
 * uint16 or int32 ids) keep that type; columns of samples added one by one take the narrowest type that holds
 * all their values exactly (uint8 / uint16 for token ids and 0/1 labels, else int8, int16, int32, or float32).
 * A skip-gram row takes 21 bytes instead of 60, and a reader gets the same floats back. The bytes depend only on
 * the samples and how they were added (the dictionary id is fixed, Arrow writes no timestamp).
 *
 * @example
 * const shard = new ShardBuilder('nsp', { inputs: [[32], [32]], label: [1] }, 10000);
 * shard.add(sample);
 * await writeFile('shard-00000.arrow', shard.encode());
 */
export class ShardBuilder {
  readonly task: string;
  readonly shapes: SampleShapes;
  readonly capacity: number;
  readonly #widths: number[];
  readonly #labelWidth: number;
  /** Each input's values, allocated by the first rows added, in their type. */
  readonly #inputs: Array<StoredColumn | undefined>;
  /** The label of every row while all came with one shared label ({@link addRows}); then no column is kept. */
  #sharedLabel: Float32Array | undefined;
  #label: Float32Array | undefined;
  #sources: Int32Array;
  readonly #dictionary = new Map<string, number>();
  #lastSource: string | undefined;
  #lastIndex = -1;
  #length = 0;

  constructor(task: string, shapes: SampleShapes, capacity: number) {
    this.task = task;
    this.shapes = shapes;
    this.capacity = capacity;
    this.#widths = shapes.inputs.map(size);
    this.#labelWidth = size(shapes.label);
    this.#inputs = this.#widths.map(() => undefined);
    this.#sources = new Int32Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Bytes of the columns held (what the shard's values take in memory). */
  get byteLength(): number {
    return this.#inputs.reduce(
      (n, a) => n + (a?.byteLength ?? 0),
      (this.#label?.byteLength ?? 0) + this.#sources.byteLength,
    );
  }

  get full(): boolean {
    return this.#length >= this.capacity;
  }

  /** Appends one sample. @throws Error when its arrays do not fit the task's shapes, or the shard is full. */
  add(sample: Sample): void {
    const row = this.#length;
    if (row >= this.capacity) throw new Error(`shard of ${this.task} is full (${this.capacity} samples)`);
    const widths = this.#widths;
    if (sample.inputs.length !== widths.length || sample.label.length !== this.#labelWidth)
      throw new Error(this.#misfit(sample));
    for (let k = 0; k < widths.length; k++) {
      const input = sample.inputs[k]!;
      if (input.length !== widths[k]) throw new Error(this.#misfit(sample));
      copyInto(this.#column(k, Float32Array) as Float32Array, input, row * widths[k]!);
    }
    copyInto(this.#labels(), sample.label, row * this.#labelWidth);
    this.#setSources(sample.source ?? '', row, row + 1);
    this.#length = row + 1;
  }

  /**
   * Appends rows `from` .. `to` - 1 of flat columns at once, as many as fit: `inputs[k]` holds the task's k-th
   * input width values a row (float32, or uint16 / int32 ids, which the shard then stores as they are), `label`
   * one label for every row (`sharedLabel`) or one a row; every row comes from `source`. Returns the row after the
   * last one taken (`to` when all fit). What {@link add} does a sample at a time, for samplers that draw into
   * columns (skip-gram: millions of rows).
   *
   * @throws Error when the columns do not fit the task's shapes.
   */
  addRows(
    inputs: readonly (Float32Array | Uint16Array | Int32Array)[],
    label: Float32Array,
    sharedLabel: boolean,
    from: number,
    to: number,
    source = '',
  ): number {
    const widths = this.#widths;
    const labelWidth = this.#labelWidth;
    if (inputs.length !== widths.length || (sharedLabel && label.length !== labelWidth))
      throw new Error(`rows of ${this.task} do not fit the shapes ${JSON.stringify(this.shapes)} its task declares`);
    const start = this.#length;
    const n = Math.min(to - from, this.capacity - start);
    if (n <= 0) return from;
    for (let k = 0; k < widths.length; k++) {
      const w = widths[k]!;
      const values = inputs[k]!;
      this.#column(k, values.constructor as ColumnArray).set(values.subarray(from * w, (from + n) * w), start * w);
    }
    if (sharedLabel && this.#label === undefined && (start === 0 || sameValues(this.#sharedLabel!, label)))
      this.#sharedLabel ??= label.slice();
    else {
      const labels = this.#labels();
      if (!sharedLabel) labels.set(label.subarray(from * labelWidth, (from + n) * labelWidth), start * labelWidth);
      else repeatRow(labels, label, start, n);
    }
    this.#setSources(source, start, start + n);
    this.#length = start + n;
    return from + n;
  }

  /** Input k's column, allocated in `Type` on first use; a column meeting rows of another type turns float32. */
  #column(k: number, Type: ColumnArray): StoredColumn {
    const column = this.#inputs[k];
    if (column?.constructor === Type || column instanceof Float32Array) return column;
    const values = new (column ? Float32Array : Type)(this.#widths[k]! * this.capacity);
    if (column) values.set(column);
    return (this.#inputs[k] = values);
  }

  /** The label column, written out row by row from the shared label once a row comes without it. */
  #labels(): Float32Array {
    if (this.#label) return this.#label;
    this.#label = new Float32Array(this.#labelWidth * this.capacity);
    if (this.#sharedLabel) repeatRow(this.#label, this.#sharedLabel, 0, this.#length);
    this.#sharedLabel = undefined;
    return this.#label;
  }

  #setSources(source: string, from: number, to: number): void {
    // Consecutive samples mostly share their source (one sentence gives many skip-grams): skip the map then.
    if (source !== this.#lastSource) {
      let index = this.#dictionary.get(source);
      if (index === undefined) this.#dictionary.set(source, (index = this.#dictionary.size));
      this.#lastSource = source;
      this.#lastIndex = index;
    }
    if (to - from === 1) this.#sources[from] = this.#lastIndex;
    else this.#sources.fill(this.#lastIndex, from, to);
  }

  #misfit(sample: Sample): string {
    const got = `inputs of ${sample.inputs.map((a) => a.length).join(', ')} and a label of ${sample.label.length}`;
    return `a ${this.task} sample holds ${got} values, not the shapes ${JSON.stringify(this.shapes)} its task declares`;
  }

  /**
   * The shard as plain data another thread can take (see {@link fromParts}): its columns go in
   * {@link ShardParts.transfer}, to be moved, not copied. The builder must not be used after its parts are moved.
   */
  parts(): ShardParts {
    const inputs = [...this.#inputs];
    const arrays = [...inputs, this.#sharedLabel, this.#label, this.#sources].filter((a) => a !== undefined);
    return {
      task: this.task,
      shapes: this.shapes,
      capacity: this.capacity,
      length: this.#length,
      inputs,
      sharedLabel: this.#sharedLabel,
      label: this.#label,
      sources: this.#sources,
      dictionary: [...this.#dictionary.keys()],
      transfer: arrays.map((a) => a.buffer as ArrayBuffer),
    };
  }

  /** The builder whose {@link parts} these are: it encodes the same bytes. */
  static fromParts(parts: ShardParts): ShardBuilder {
    const shard = new ShardBuilder(parts.task, parts.shapes, parts.capacity);
    for (const [k, column] of parts.inputs.entries()) shard.#inputs[k] = column;
    shard.#sharedLabel = parts.sharedLabel;
    shard.#label = parts.label;
    shard.#sources = parts.sources;
    for (const [i, source] of parts.dictionary.entries()) shard.#dictionary.set(source, i);
    shard.#length = parts.length;
    return shard;
  }

  /** The Arrow IPC file of the samples added so far. */
  encode(): Uint8Array {
    return RecordBatchFileWriter.writeAll([this.#batch()]).toUint8Array(true);
  }

  /**
   * {@link encode}'s bytes as the Arrow writer makes them: pieces that are mostly views of the columns themselves,
   * to write (writev) and hash without joining them into one copy first.
   */
  async encodeChunks(): Promise<Uint8Array[]> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of RecordBatchFileWriter.writeAll([this.#batch()])) chunks.push(chunk);
    return chunks;
  }

  /** The rows added so far as one Arrow record batch. */
  #batch(): RecordBatch {
    const n = this.#length;
    const list = (width: number, type: NumberType): FixedSizeList<NumberType> =>
      new FixedSizeList(width, new Field('item', type, false));
    const widths = this.#widths;
    const labelWidth = this.#labelWidth;
    const shared = this.#sharedLabel && narrowest(this.#sharedLabel);
    const label = shared
      ? { type: shared.type, data: repeatRow(sameKind(shared.data, n * labelWidth), shared.data, 0, n) }
      : narrowest(this.#label?.subarray(0, n * labelWidth) ?? new Float32Array(0));
    const numbers = [
      ...this.#inputs.map((values, k) => {
        const flat = (values ?? new Float32Array(0)).subarray(0, n * widths[k]!);
        const narrow = flat instanceof Float32Array ? narrowest(flat) : typed(flat);
        return { name: inputName(k), width: widths[k]!, values: narrow };
      }),
      { name: 'label', width: labelWidth, values: label },
    ].map(({ name, width, values }) => {
      const type = list(width, values.type);
      const child = numberData(values.type, values.data);
      return { field: new Field(name, type, false), data: makeData({ type, length: n, nullCount: 0, child }) };
    });
    const entries = this.#dictionary.size;
    const [IndexArray, indexType] =
      entries <= 0x80
        ? [Int8Array, new Int8()]
        : entries <= 0x8000
          ? [Int16Array, new Int16()]
          : [Int32Array, new Int32()];
    const indices = new IndexArray(n);
    indices.set(this.#sources.subarray(0, n));
    const sourceType = new Dictionary(new Utf8(), indexType, 0);
    const fields = [...numbers.map((c) => c.field), new Field('source', sourceType, false)];
    const metadata = new Map([
      [META_TASK, this.task],
      [META_SHAPES, JSON.stringify(this.shapes)],
    ]);
    const sources = makeData({
      type: sourceType,
      length: n,
      nullCount: 0,
      data: indices,
      dictionary: utf8Vector([...this.#dictionary.keys()]),
    });
    const children = [...numbers.map((c) => c.data), sources];
    const schema = new Schema(fields, metadata);
    return new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, nullCount: 0, children }));
  }
}

/** A {@link ShardBuilder}'s state as plain data (structured-cloneable), from {@link ShardBuilder.parts}. */
export interface ShardParts {
  task: string;
  shapes: SampleShapes;
  capacity: number;
  length: number;
  inputs: Array<StoredColumn | undefined>;
  sharedLabel: Float32Array | undefined;
  label: Float32Array | undefined;
  sources: Int32Array;
  dictionary: string[];
  /** The buffers of the columns above, for postMessage's transfer list. */
  transfer: ArrayBuffer[];
}

/** A utf8 Arrow vector of `strings`, encoded at once (Arrow's builder goes string by string). */
function utf8Vector(strings: readonly string[]): Vector<Utf8> {
  const offsets = new Int32Array(strings.length + 1);
  const bytes = new TextEncoder().encode(strings.join(''));
  let at = 0;
  for (let i = 0; i < strings.length; i++) {
    at += Buffer.byteLength(strings[i]!);
    offsets[i + 1] = at;
  }
  return makeVector(
    makeData({ type: new Utf8(), length: strings.length, nullCount: 0, valueOffsets: offsets, data: bytes }),
  );
}

/** The Arrow number types a shard column may take. */
type NumberType = Uint8 | Uint16 | Int8 | Int16 | Int32 | Float32;
type NumberColumn = Uint8Array | Uint16Array | Int8Array | Int16Array | Int32Array | Float32Array;
/** What a builder keeps an input in: floats, or the ids of rows added as ids. */
type StoredColumn = Float32Array | Uint16Array | Int32Array;
type ColumnArray = Float32ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor;

/** Whether a read column's values are one of {@link NumberType} (Arrow reads them back as Int_ or Float). */
function isNumberType(type: DataType): boolean {
  return (
    (DataType.isInt(type) && type.bitWidth <= 32) || (DataType.isFloat(type) && type.precision === Precision.SINGLE)
  );
}

/** Arrow data of a number column (makeData's overloads take one type at a time: any of ours is a Float32 to it). */
function numberData(type: NumberType, values: NumberColumn): Data<Float32> {
  return makeData({ type: type as Float32, length: values.length, nullCount: 0, data: values as Float32Array });
}

/** An integer column added as such, with its Arrow type. */
function typed(values: Uint16Array | Int32Array): { type: NumberType; data: NumberColumn } {
  return { type: values instanceof Uint16Array ? new Uint16() : new Int32(), data: values };
}

/**
 * `values` in the narrowest Arrow type that holds each of them exactly: uint8 / uint16 when all are integers in
 * their range, int8 / int16 / int32 for other integers, else float32 (the values themselves, no copy). -0 counts
 * as the integer 0.
 */
function narrowest(values: Float32Array): { type: NumberType; data: NumberColumn } {
  let min = 0;
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if ((v | 0) !== v) return { type: new Float32(), data: values };
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  const as = (type: NumberType, Array: new (n: number) => NumberColumn): { type: NumberType; data: NumberColumn } => {
    const data = new Array(values.length);
    data.set(values);
    return { type, data };
  };
  if (min >= 0 && max <= 0xff) return as(new Uint8(), Uint8Array);
  if (min >= 0 && max <= 0xffff) return as(new Uint16(), Uint16Array);
  if (min >= -0x80 && max <= 0x7f) return as(new Int8(), Int8Array);
  if (min >= -0x8000 && max <= 0x7fff) return as(new Int16(), Int16Array);
  return as(new Int32(), Int32Array);
}

/** Writes `row` into rows `start` .. `start + n - 1` of `to` (one copy, then doubling copies); returns `to`. */
function repeatRow<T extends NumberColumn>(to: T, row: ArrayLike<number>, start: number, n: number): T {
  const width = row.length;
  if (n <= 0) return to;
  for (let i = 0; i < width; i++) to[start * width + i] = row[i]!;
  for (let done = 1; done < n; done *= 2)
    to.copyWithin((start + done) * width, start * width, (start + Math.min(done, n - done)) * width);
  return to;
}

/** A zeroed typed array of `values`' kind and `length`. */
function sameKind(values: NumberColumn, length: number): NumberColumn {
  return new (values.constructor as new (n: number) => NumberColumn)(length);
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** `to.set(from, at)`, by hand for the short arrays of most samples (where `set`'s own cost dominates). */
function copyInto(to: Float32Array, from: Float32Array, at: number): void {
  if (from.length > 16) to.set(from, at);
  else for (let i = 0; i < from.length; i++) to[at + i] = from[i]!;
}

function inputName(k: number): string {
  return `input_${k}`;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function parseShapes(json: string | undefined): SampleShapes | undefined {
  if (json === undefined) return undefined;
  try {
    const shapes = JSON.parse(json) as SampleShapes;
    const isShape = (s: unknown): boolean => Array.isArray(s) && s.every((d) => Number.isInteger(d) && d > 0);
    return Array.isArray(shapes.inputs) && shapes.inputs.every(isShape) && isShape(shapes.label) ? shapes : undefined;
  } catch {
    return undefined;
  }
}

function concatFloats(chunks: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, (at += c.length) - c.length);
  return out;
}
