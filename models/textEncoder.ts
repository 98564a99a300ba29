import * as tf from '@tensorflow/tfjs';
import { OptionError } from '../core/errors.ts';

/** Options of {@link buildTextEncoder}. */
export interface TextEncoderOptions {
  /** Number of token ids (the tokenizer's `vocabSize`); ids must be below it. */
  vocabSize: number;
  /** Tokens per input sequence: inputs are `[batch, maxLength]` ids, padded or cut by the sampler. */
  maxLength: number;
  /** Size of each token embedding (the word vectors of skip-gram and CBOW). Default 64. */
  embeddingSize?: number;
  /** Units of each GRU direction, and the size of the pooled feature vector. Default 64. */
  hiddenSize?: number;
  /** Seed of the weight initialisers, so a random-init baseline is reproducible. */
  seed?: number;
}

/** Name of the encoder's token embedding layer; word2vec tasks read and train it through this name. */
export const TOKEN_EMBEDDING = 'token_embedding';

/**
 * The text encoder shared by the text and dialogue tasks: token embeddings, then one bidirectional GRU.
 * Input `[batch, maxLength]` token ids (float or int). Two outputs:
 * - `pooled` `[batch, hiddenSize]`: a tanh projection of both directions' final states; what the trainer sizes
 *   heads by (`outputs[0]`) and what sentence-level tasks (NSP, dialogue order) read;
 * - `sequence` `[batch, maxLength, 2 * hiddenSize]`: per-token features, the forward direction in the first
 *   `hiddenSize` channels (causal: position t has seen tokens 0..t, which CPC needs), the backward one after
 *   (masked LM needs both sides).
 *
 * A GRU rather than a transformer: its kernels (matMul, sigmoid, tanh) have gradients on every backend of the
 * ladder, wasm included, and at these sizes it trains faster on CPUs than attention does. Padding is not masked:
 * the pad id has its own embedding and the GRU learns to carry its state over it, which avoids `where` in every
 * step.
 *
 * @example
 * const encoder = buildTextEncoder({ vocabSize: 1000, maxLength: 32, seed: 1 });
 * const [pooled, sequence] = encoder.predict(tf.zeros([2, 32])) as tf.Tensor[]; // [2, 64], [2, 32, 128]
 */
export function buildTextEncoder(options: TextEncoderOptions): tf.LayersModel {
  const { vocabSize, maxLength, embeddingSize = 64, hiddenSize = 64, seed = 0 } = validateTextEncoderOptions(options);
  const ids = tf.input({ shape: [maxLength], name: 'token_ids' });
  const embedded = new TokenEmbedding({
    vocabSize,
    embeddingSize,
    seed: seed * 101,
    name: TOKEN_EMBEDDING,
  }).apply(ids) as tf.SymbolicTensor;
  const gru = (goBackwards: boolean, k: number): tf.layers.RNN =>
    tf.layers.gru({
      units: hiddenSize,
      returnSequences: true,
      returnState: true,
      goBackwards,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + k }),
      recurrentInitializer: tf.initializers.orthogonal({ seed: seed * 101 + k + 10 }),
      name: goBackwards ? 'gru_backward' : 'gru_forward',
    });
  // Two GRUs by hand rather than tf.layers.bidirectional: the final states are needed for pooling, and the backward
  // sequence must be flipped back so that position t of both halves is token t.
  const [forwardSeq, forwardState] = gru(false, 1).apply(embedded) as tf.SymbolicTensor[];
  const [backwardReversed, backwardState] = gru(true, 2).apply(embedded) as tf.SymbolicTensor[];
  const backwardSeq = new ReverseTime({ name: 'reverse_backward' }).apply(backwardReversed!) as tf.SymbolicTensor;
  const sequence = tf.layers
    .concatenate({ axis: -1, name: 'sequence' })
    .apply([forwardSeq!, backwardSeq]) as tf.SymbolicTensor;
  const states = tf.layers
    .concatenate({ axis: -1, name: 'final_states' })
    .apply([forwardState!, backwardState!]) as tf.SymbolicTensor;
  const pooled = tf.layers
    .dense({
      units: hiddenSize,
      activation: 'tanh',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 101 + 99 }),
      name: 'pooled',
    })
    .apply(states) as tf.SymbolicTensor;
  return tf.model({ inputs: ids, outputs: [pooled, sequence], name: 'text_encoder' });
}

function validateTextEncoderOptions(options: TextEncoderOptions): TextEncoderOptions {
  const positive = (name: string, value: unknown): void => {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < 1))
      throw new OptionError(name, value, 'a positive integer');
  };
  positive('vocabSize', options.vocabSize);
  positive('maxLength', options.maxLength);
  positive('embeddingSize', options.embeddingSize);
  positive('hiddenSize', options.hiddenSize);
  if (options.vocabSize === undefined) throw new OptionError('vocabSize', undefined, "the tokenizer's vocabSize");
  if (options.maxLength === undefined)
    throw new OptionError('maxLength', undefined, 'the tokens per sequence, e.g. 32');
  return options;
}

/** Arguments of {@link TokenEmbedding}. */
export interface TokenEmbeddingArgs {
  /** Rows of the table (ids must be below it). */
  vocabSize: number;
  /** Columns of the table. */
  embeddingSize: number;
  /** Seed of the uniform(-0.05, 0.05) initialiser. */
  seed?: number;
  name?: string;
}

/**
 * A token embedding table `[vocabSize, embeddingSize]`: ids `[...shape]` -> vectors `[...shape, embeddingSize]`.
 * Unlike `tf.layers.embedding`, its gradient does not need `UnsortedSegmentSum`, a kernel that
 * tfjs-backend-wasm 4.22 lacks (see {@link lookupEmbeddings}), so it trains on every backend of the ladder.
 */
export class TokenEmbedding extends tf.layers.Layer {
  static className = 'TokenEmbedding';
  readonly vocabSize: number;
  readonly embeddingSize: number;
  readonly seed: number;
  private table!: tf.LayerVariable;

  constructor(args: TokenEmbeddingArgs) {
    super({ name: args.name });
    if (!Number.isInteger(args.vocabSize) || args.vocabSize < 1)
      throw new OptionError('vocabSize', args.vocabSize, 'a positive integer');
    if (!Number.isInteger(args.embeddingSize) || args.embeddingSize < 1)
      throw new OptionError('embeddingSize', args.embeddingSize, 'a positive integer');
    this.vocabSize = args.vocabSize;
    this.embeddingSize = args.embeddingSize;
    this.seed = args.seed ?? 0;
  }

  override build(): void {
    const init = tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: this.seed });
    this.table = this.addWeight('embeddings', [this.vocabSize, this.embeddingSize], 'float32', init);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return [...(inputShape as tf.Shape), this.embeddingSize];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => lookupEmbeddings(this.table.read(), Array.isArray(inputs) ? inputs[0]! : inputs));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), vocabSize: this.vocabSize, embeddingSize: this.embeddingSize, seed: this.seed };
  }
}
tf.serialization.registerClass(TokenEmbedding);

/**
 * Sums rows of `rows` `[n, dim]` into a `[vocab, dim]` gradient at `ids` `[n]`: the backend's UnsortedSegmentSum
 * where it has one, else a JS scatter-add (one pass over the rows, unlike a one-hot matMul of n x vocab x dim).
 */
function scatterRows(rows: tf.Tensor, ids: tf.Tensor, vocab: number): tf.Tensor {
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend()))
    return tf.unsortedSegmentSum(rows, ids as tf.Tensor1D, vocab);
  const dim = rows.shape[1]!;
  const values = rows.dataSync();
  const index = ids.dataSync();
  const out = new Float32Array(vocab * dim);
  for (let r = 0; r < index.length; r++) {
    const to = index[r]! * dim;
    const from = r * dim;
    for (let c = 0; c < dim; c++) out[to + c]! += values[from + c]!;
  }
  return tf.tensor2d(out, [vocab, dim]);
}

/**
 * Rows of `table` `[vocab, dim]` at `ids` `[...shape]` (float or int) -> `[...shape, dim]`, with the gradient of the
 * table by {@link scatterRows}, so that it trains where `UnsortedSegmentSum` is missing (wasm).
 */
export function lookupEmbeddings(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [vocab, dim] = table.shape as [number, number];
  const flat = tf.cast(tf.reshape(ids, [-1]), 'int32');
  const gathered = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([flat]);
    return {
      value: tf.gather(t, flat),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => scatterRows(dy, saved[0]!, vocab),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return tf.reshape(gathered(table), [...ids.shape, dim]);
}

/** Flips the time axis of `[batch, time, channels]`. */
export class ReverseTime extends tf.layers.Layer {
  static className = 'ReverseTime';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.reverse(Array.isArray(inputs) ? inputs[0]! : inputs, 1));
  }
}
tf.serialization.registerClass(ReverseTime);

/** Both outputs of a text encoder for a batch of ids `[batch, maxLength]`. */
export interface TextFeatures {
  /** `[batch, hiddenSize]`. */
  pooled: tf.Tensor2D;
  /** `[batch, maxLength, 2 * hiddenSize]`, forward channels first. */
  sequence: tf.Tensor3D;
}

/** Runs a {@link buildTextEncoder} encoder on ids `[batch, maxLength]` and names its two outputs. */
export function encodeText(encoder: tf.LayersModel, ids: tf.Tensor, training: boolean): TextFeatures {
  const outputs = encoder.apply(ids, { training });
  if (!Array.isArray(outputs) || outputs.length < 2) {
    throw new OptionError(
      'encoder',
      encoder.name,
      'a text encoder from buildTextEncoder (outputs pooled and sequence features)',
    );
  }
  return { pooled: outputs[0] as tf.Tensor2D, sequence: outputs[1] as tf.Tensor3D };
}

/**
 * A single-output view `[batch, maxLength] -> [batch, hiddenSize]` of a text encoder, sharing its weights: what
 * code that expects one feature tensor (the linear probe) takes.
 */
export function pooledTextEncoder(encoder: tf.LayersModel): tf.LayersModel {
  return tf.model({ inputs: encoder.inputs, outputs: encoder.outputs[0]!, name: `${encoder.name}_pooled` });
}

/** The `[vocabSize, embeddingSize]` token embedding matrix of a text encoder (a copy; the caller disposes it). */
export function tokenEmbeddings(encoder: tf.LayersModel): tf.Tensor2D {
  return encoder.getLayer(TOKEN_EMBEDDING).getWeights()[0]!.clone() as tf.Tensor2D;
}

/**
 * The live token embedding variable `[vocabSize, embeddingSize]` of a text encoder, for tasks that read token
 * vectors directly (word2vec, CPC targets); gradients through it train the encoder.
 *
 * @throws OptionError when the model has no {@link TOKEN_EMBEDDING} layer.
 */
export function embeddingTable(encoder: tf.LayersModel): tf.Tensor2D {
  let layer: tf.layers.Layer;
  try {
    layer = encoder.getLayer(TOKEN_EMBEDDING);
  } catch {
    throw new OptionError(
      'encoder',
      encoder.name,
      `a text encoder from buildTextEncoder (with a '${TOKEN_EMBEDDING}' layer)`,
    );
  }
  return layer.trainableWeights[0]!.read() as tf.Tensor2D;
}
