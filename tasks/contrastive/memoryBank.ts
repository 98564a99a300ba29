import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import type { Frame } from '../../pipeline/frame.ts';
import { embeddingStd, l2Normalize } from '../losses/infoNce.ts';
import type { TaskParts, TaskState } from '../task.ts';

/** Options of {@link MemoryBank}. */
export interface MemoryBankOptions {
  /** Slots: one per training item (the size of an image set), or a bound for items without a count (video files). */
  size: number;
  /** Size of each stored vector. */
  dim: number;
  /** Banks kept side by side, one per view (CMC keeps one for L and one for ab). Default 1. */
  views?: number;
  /**
   * Weight of the old vector when a slot is updated: v = normalize(m v + (1 - m) f) (a slot's first write takes f).
   * Default 0.5, the paper's (Wu et al. 2018, section 3.2; CMC also uses 0.5).
   */
  momentum?: number;
  /** Negatives drawn per step, shared by the batch. Default 4096 (the paper's m), at most `size - 1`. */
  negatives?: number;
  /** Seed of the starting vectors and of the negatives' generator. */
  seed: number;
}

/**
 * A memory bank (Wu, Xiong, Yu, Lin, CVPR 2018): one l2-normalized vector per training item and view, the mean of
 * the item's past features (momentum `m`), against which a feature is compared instead of running the encoder
 * on every other item. Each step `hold`s the batch's features and slots; `afterStep` writes them
 * (v <- normalize(m v + (1 - m) f)). `logits` puts a batch of features against its own slot and `negatives`
 * slots drawn uniformly (among the slots written so far) for the step by a generator that is part of the state, so
 * a resumed run draws the same negatives. The banks `memory<v>` `[size, dim]`, the generator's state and the mask
 * of written slots are the checkpointed tensors.
 *
 * @example
 * const bank = new MemoryBank({ size: 14000, dim: 128, seed: 1 });
 * const logits = bank.logits(0, features, slots, 0.07); // [batch, 1 + negatives], column 0 the own slot
 */
export class MemoryBank implements TaskState {
  readonly size: number;
  readonly dim: number;
  readonly momentum: number;
  readonly negatives: number;
  readonly banks: tf.Variable[];
  readonly #rngState: tf.Variable;
  /** 1 for each slot written at least once; checkpointed. */
  readonly #writtenMask: tf.Variable;
  /** The written slots in ascending order (what negatives are drawn from), rebuilt from the mask. */
  #written: Int32Array = new Int32Array(0);
  /** 1 for each written slot (the mask, read back), looked up per row by `logits`. */
  #writtenFlags: Uint8Array;
  #pending: { features: tf.Tensor2D[]; slots: Int32Array } | undefined;
  #drawn: { step: Int32Array } | undefined;

  constructor(options: MemoryBankOptions) {
    const { size, dim, views = 1, momentum = 0.5, seed } = options;
    for (const [name, value] of [
      ['size', size],
      ['dim', dim],
      ['views', views],
    ] as const)
      if (!Number.isInteger(value) || value < 1) throw new OptionError(name, value, 'a positive integer');
    if (size < 2) throw new OptionError('size', size, 'at least 2 slots (an item and a negative)');
    if (!(momentum >= 0 && momentum < 1)) throw new OptionError('momentum', momentum, 'a number in [0, 1)');
    const negatives = Math.min(options.negatives ?? 4096, size - 1);
    if (!Number.isInteger(negatives) || negatives < 1)
      throw new OptionError('negatives', options.negatives, 'a positive integer');
    this.size = size;
    this.dim = dim;
    this.momentum = momentum;
    this.negatives = negatives;
    const rng = new Rng(seed);
    // As the paper's code starts: random vectors (here unit ones), so the first steps have negatives.
    this.banks = Array.from({ length: views }, () =>
      tf.tidy(() =>
        tf.variable(
          l2Normalize(
            tf.tensor2d(
              Float32Array.from({ length: size * dim }, () => rng.normal()),
              [size, dim],
            ),
          ),
          false,
        ),
      ),
    );
    this.#rngState = tf.variable(tf.scalar(rng.fork().state | 0, 'int32'), false);
    this.#writtenMask = tf.variable(tf.zeros([size], 'int32'), false);
    this.#writtenFlags = new Uint8Array(size);
  }

  /** The slots written at least once, ascending. */
  get written(): Int32Array {
    return this.#written;
  }

  #readWritten(): void {
    const mask = this.#writtenMask.dataSync();
    const written: number[] = [];
    mask.forEach((m, i) => m !== 0 && written.push(i));
    this.#written = Int32Array.from(written);
    this.#writtenFlags = Uint8Array.from(mask, (m) => (m !== 0 ? 1 : 0));
  }

  /**
   * The slots of this step's negatives, `negatives` uniform draws over the slots written so far (over every slot
   * before the first write): a bank with more slots than items (hashed video frames) would otherwise draw mostly
   * starting vectors no item ever wrote. The own slot may be among them (`logits` masks it). Training steps
   * advance the generator; other passes (evaluation) draw from a fixed one, so they do not disturb the run.
   */
  #negativeSlots(training: boolean): Int32Array {
    const rng = training ? Rng.fromState(this.#rngState.dataSync()[0]! >>> 0) : new Rng(0);
    const pool = this.#written;
    const slots = Int32Array.from({ length: this.negatives }, () =>
      pool.length > 0 ? pool[rng.int(pool.length)]! : rng.int(this.size),
    );
    if (training) this.#rngState.assign(tf.scalar(rng.state | 0, 'int32'));
    return slots;
  }

  /**
   * Logits `[batch, 1 + negatives]` of l2-normalized `features` `[batch, dim]` against bank `view`: column 0 the
   * item's own slot, then the step's negatives (the own slot among them set to -1e9), all over `temperature`.
   * Call it once per step and view pair with `training` true; every view of one step shares the negatives.
   *
   * `incoming`, when given, is what this step writes to bank `view` (`[batch, dim]`, the batch's features of that
   * view): a slot not written yet holds a random placeholder, not a memory of its item, so its positive is the
   * vector its first write will store (`incoming`'s row, held constant: no gradient reaches it). Without it the
   * positive of an unwritten slot is the placeholder: a random target, while the negatives (drawn among written
   * slots) are real features; cross-view CMC learns from that to push each view away from the other's features
   * and collapses (see `cmc`).
   */
  logits(
    view: number,
    features: tf.Tensor2D,
    slots: Int32Array,
    temperature: number,
    training: boolean,
    incoming?: tf.Tensor2D,
  ): tf.Tensor2D {
    return tf.tidy(() => {
      const bank = this.banks[view];
      if (!bank) throw new OptionError('view', view, `a bank index below ${this.banks.length}`);
      const negatives = this.#drawn?.step ?? this.#negativeSlots(training);
      if (training) this.#drawn ??= { step: negatives };
      else this.#drawn = undefined;
      const stored = tf.gather(bank, tf.tensor1d(slots, 'int32')) as tf.Tensor2D;
      const own = incoming ? this.#memoryOrIncoming(stored, incoming, slots) : stored;
      const positive = tf.sum(tf.mul(features, own), 1, true);
      const others = tf.matMul(features, tf.gather(bank, tf.tensor1d(negatives, 'int32')), false, true);
      // [batch, negatives]: 1 where a drawn negative is the item itself.
      const same = tf.equal(
        tf.tensor2d(slots, [slots.length, 1], 'int32'),
        tf.tensor2d(negatives, [1, negatives.length], 'int32'),
      );
      const masked = tf.sub(others, tf.mul(tf.cast(same, 'float32'), 1e9 * temperature));
      return tf.div(tf.concat([positive, masked], 1), temperature) as tf.Tensor2D;
    });
  }

  /** Rows of `stored` whose slot was written; the others `incoming`'s row, without gradient. */
  #memoryOrIncoming(stored: tf.Tensor2D, incoming: tf.Tensor2D, slots: Int32Array): tf.Tensor2D {
    const fresh = slots.map((slot) => (this.#writtenFlags[slot] === 1 ? 0 : 1));
    if (!fresh.some((f) => f === 1)) return stored;
    const take = tf.tensor2d(Float32Array.from(fresh), [slots.length, 1]);
    return tf.add(tf.mul(stored, tf.sub(1, take)), tf.mul(constant(incoming), take));
  }

  /** The step's features held for `afterStep` (one `[batch, dim]` a view), for the collapse monitor. */
  get pendingFeatures(): readonly tf.Tensor2D[] {
    return this.#pending?.features ?? [];
  }

  /** Keeps a step's features (one `[batch, dim]` a view, l2-normalized) and slots for `afterStep`. */
  hold(features: readonly tf.Tensor2D[], slots: Int32Array): void {
    this.#pending?.features.forEach((f) => f.dispose());
    this.#pending = { features: features.map((f) => tf.keep(f.clone())), slots };
  }

  tensors(): tf.NamedTensorMap {
    const named: tf.NamedTensorMap = { rng: this.#rngState, written: this.#writtenMask };
    this.banks.forEach((bank, v) => (named[`memory${v}`] = bank));
    return named;
  }

  restore(saved: tf.NamedTensorMap): void {
    this.banks.forEach((bank, v) => bank.assign(saved[`memory${v}`]!));
    this.#rngState.assign(saved.rng! as tf.Scalar);
    this.#writtenMask.assign(saved.written!);
    this.#readWritten();
  }

  /**
   * Each held feature moves its slot: v <- normalize(m v + (1 - m) f), or v <- f on the slot's first write (its
   * starting vector is a placeholder, not a memory of the item); a slot twice in a batch takes the last.
   */
  afterStep(): void {
    this.#drawn = undefined;
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    const mask = Int32Array.from(this.#writtenMask.dataSync());
    const fresh = pending.slots.some((slot) => mask[slot] === 0);
    tf.tidy(() => {
      // row -> the batch position that writes it (-1: untouched)
      const writer = new Int32Array(this.size).fill(-1);
      pending.slots.forEach((slot, i) => (writer[slot] = i));
      const keep = tf.tensor2d(
        Float32Array.from(writer, (w) => (w < 0 ? 1 : 0)),
        [this.size, 1],
      );
      const source = tf.tensor1d(
        Int32Array.from(writer, (w) => Math.max(w, 0)),
        'int32',
      );
      const old = tf.tensor2d(
        Float32Array.from(mask, (m) => (m !== 0 ? this.momentum : 0)),
        [this.size, 1],
      );
      this.banks.forEach((bank, v) => {
        const incoming = tf.gather(pending.features[v]!, source);
        const mixed = l2Normalize(tf.add(tf.mul(bank, old), tf.mul(incoming, tf.sub(1, old))));
        bank.assign(tf.add(tf.mul(bank, keep), tf.mul(mixed, tf.sub(1, keep))));
      });
      if (fresh) {
        pending.slots.forEach((slot) => (mask[slot] = 1));
        this.#writtenMask.assign(tf.tensor1d(mask, 'int32'));
      }
    });
    pending.features.forEach((f) => f.dispose());
    if (fresh) this.#readWritten();
  }

  dispose(): void {
    this.#pending?.features.forEach((f) => f.dispose());
    this.#pending = undefined;
    tf.dispose([...this.banks, this.#rngState, this.#writtenMask]);
  }
}

/** `x` in the forward pass, a constant to the gradient (tfjs has no stop-gradient op). */
const constant = tf.customGrad((x, save) => {
  (save as tf.GradSaveFunc)([]);
  return { value: tf.clone(x as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
}) as (x: tf.Tensor2D) => tf.Tensor2D;

/** A string's FNV-1a hash, a uint32. */
function hashOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The bank slot of a frame. `indexed`: its `index` is its position in a listed image set (`imageEpoch`), the slot
 * itself. Otherwise (frames of video files, whose count is not known up front) frames of one file take consecutive
 * slots from an offset hashed from the file's name (`(hash(source) + index) mod size`): a file's frames share no
 * slot until it has more frames than the bank, two files collide only where their ranges overlap.
 *
 * @throws OptionError when an indexed frame lies outside the bank (a bank built for another image set).
 */
export function slotOf(frame: Pick<Frame, 'index' | 'source'>, size: number, indexed: boolean): number {
  if (!indexed) return (hashOf(frame.source) + frame.index) % size;
  if (!(frame.index >= 0 && frame.index < size))
    throw new OptionError(
      'itemCount',
      size,
      `a memory bank as large as the image set (image ${frame.source} is number ${frame.index})`,
    );
  return frame.index;
}

/**
 * The collapse signal of a memory-bank task: `embeddingStd` of the first view's features of the step (the logits
 * alone cannot show it); NaN outside training, where nothing is held.
 */
export function bankEmbeddingStd(_logits: tf.Tensor, { state }: TaskParts): tf.Scalar {
  const features = (state as MemoryBank).pendingFeatures[0];
  return features ? embeddingStd(features) : tf.scalar(Number.NaN);
}
