import * as tf from '@tensorflow/tfjs';

/** A kernel implementation that may call the kernel it replaces (`stock`, absent when wasm has none). */
type Replacement = (stock: tf.KernelFunc | undefined) => tf.KernelFunc;

/** What replaces what on wasm; see {@link registerWasmTrainingKernels}. */
const WASM_REPLACEMENTS: Record<string, Replacement> = {
  Conv2DBackpropFilter: () => conv2DBackpropFilterViaConv,
  Conv2DBackpropInput: conv2DBackpropInputViaConv,
  MaxPoolGrad: () => maxPoolGradInJs,
  DepthwiseConv2dNativeBackpropInput: () => depthwiseBackpropInputInJs,
  DepthwiseConv2dNativeBackpropFilter: () => depthwiseBackpropFilterInJs,
  BatchMatMul: batchMatMulTransposedViaXnn,
};

// The stock kernels, kept the first time they are replaced so that a second registration still finds them.
const stockKernels = new Map<string, tf.KernelFunc | undefined>();

/**
 * Registers, for the wasm backend, the training kernels that tfjs-backend-wasm 4.22 lacks, gets wrong or runs slowly,
 * each built from wasm's fast kernels (XNNPACK convolution, transpose, pad, slice):
 * - `Conv2DBackpropFilter` (missing): the filter gradient of every conv2d, fused or not.
 * - `Conv2DBackpropInput` (slow, a naive loop): one stride-1 convolution of the output gradient with the filter
 *   rearranged per stride phase, then an interleaving transpose; the stock kernel remains for NCHW.
 * - `BatchMatMul` with a transposed operand (slow, a naive loop; every dense layer's two gradients): transposes,
 *   then XNNPACK's matmul per block of 48 along the shared axis, summed in order: bit-identical to the stock kernel.
 * - `MaxPoolGrad` (wrong): wasm's routes no gradient from a pooling window whose maximum is <= 0 (its running max
 *   seems to start at FLT_MIN, not -inf); replaced by an exact JS loop with cpu's tie-breaking.
 * - `DepthwiseConv2dNativeBackpropInput` and `...Filter` (missing): plain loops, as the cpu backend computes them.
 * It also replaces the `FusedBatchNorm` gradient for every backend (see {@link registerBatchNormGradient}).
 * Idempotent. Kernels are registered per backend, so cpu/tensorflow/webgpu keep their own.
 *
 * Why kernels, not a replacement gradient for `Conv2D`: `tf.fused.conv2d` (what `tf.layers.conv2d` runs) computes
 * its gradients in its own customGrad, calling the kernels directly, so only a kernel covers both paths.
 *
 * @example
 * await tf.setBackend('wasm');
 * registerWasmTrainingKernels();
 */
export function registerWasmTrainingKernels(): void {
  const backendName = 'wasm';
  for (const [kernelName, replacement] of Object.entries(WASM_REPLACEMENTS)) {
    const existing = tf.getKernel(kernelName, backendName);
    if (existing && (existing as { ours?: boolean }).ours) continue;
    if (!stockKernels.has(kernelName)) stockKernels.set(kernelName, existing?.kernelFunc);
    if (existing) tf.unregisterKernel(kernelName, backendName);
    const kernelFunc = replacement(stockKernels.get(kernelName));
    tf.registerKernel({ kernelName, backendName, kernelFunc, ours: true } as tf.KernelConfig);
  }
  registerBatchNormGradient();
}

/** Runs backend kernels by name on TensorInfos, remembering every output so that `dispose` frees the temporaries. */
function kernelRunner(backend: tf.KernelBackend) {
  const backendName = tf.getBackend();
  const temps: tf.TensorInfo[] = [];
  return {
    run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
      const kernel = tf.getKernel(kernelName, backendName);
      if (!kernel) throw new Error(`backend ${backendName} lacks the ${kernelName} kernel`);
      const out = kernel.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
      temps.push(out);
      return out;
    },
    /** Takes a buffer written outside `run` (a temporary, freed with the others). */
    adopt(info: tf.TensorInfo): tf.TensorInfo {
      temps.push(info);
      return info;
    },
    /** Frees every output except `keep`, which the engine owns once the kernel returns it. */
    disposeAllBut(keep?: tf.TensorInfo): void {
      for (const t of temps) if (t !== keep) backend.disposeData(t.dataId);
    },
  };
}

/** The stock kernel sums the shared axis in blocks of this many terms (`kBlockSize` in tfjs-backend-wasm). */
const STOCK_MATMUL_BLOCK = 48;

/**
 * `BatchMatMul` when an operand is transposed and there is one matrix a side (`x^T dy` and `dy W^T`, the gradients of
 * every dense layer): wasm's kernel then runs a naive loop (about 0.2 GFLOP/s; 90 ms of a default training step),
 * while without transposes and at batch 1 it uses XNNPACK. So the operands are transposed explicitly and multiplied
 * by XNNPACK. The result is bit-identical to the stock kernel: the stock loop sums the shared axis sequentially in
 * blocks of 48 terms and adds the blocks in order, and XNNPACK sums sequentially too, so each block of at most 48
 * terms is one XNNPACK product and the block results are added in order. Batched products keep the stock kernel.
 */
function batchMatMulTransposedViaXnn(stock: tf.KernelFunc | undefined): tf.KernelFunc {
  if (!stock) throw new Error('the wasm backend lacks BatchMatMul');
  return (args) => {
    const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const batches = (shape: number[]) => shape.slice(0, -2).reduce((x, y) => x * y, 1);
    if (
      (!transposeA && !transposeB) ||
      batches(a.shape) !== 1 ||
      batches(b.shape) !== 1 ||
      a.shape.at(transposeA ? -2 : -1) === 0 ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32'
    )
      return stock(args);
    const backend = args.backend as tf.KernelBackend;
    const r = kernelRunner(backend);
    const [rowsA, colsA] = a.shape.slice(-2) as [number, number];
    const [rowsB, colsB] = b.shape.slice(-2) as [number, number];
    const [m, k] = transposeA ? [colsA, rowsA] : [rowsA, colsA];
    const n = transposeB ? rowsB : colsB;
    // XNNPACK takes the right operand as its weights and repacks them on every call; a transposed operand is copied.
    // C = A B costs transposing the transposed operands plus packing B (k x n); C^T = B^T A^T costs transposing the
    // operands that are not transposed, packing A^T (k x m) and transposing the product (m x n). The dense layer's
    // input gradient dy W^T (m = batch, n = 4096 inputs) is 10x cheaper the second way.
    const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
    const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + k * m + m * n;
    const swap = swapped < direct;
    const [left, right, rows, cols] = swap ? [b, a, n, m] : [a, b, m, n];
    const [leftT, rightT] = swap ? [!transposeB, !transposeA] : [transposeA, transposeB];
    // left (rows x k) times right (k x cols), each stored transposed when its flag says so.
    let l3 = r.run('Reshape', { x: left }, { shape: [1, ...left.shape.slice(-2)] });
    let r3 = r.run('Reshape', { x: right }, { shape: [1, ...right.shape.slice(-2)] });
    if (leftT) l3 = r.run('Transpose', { x: l3 }, { perm: [0, 2, 1] }); // [1, rows, k]
    if (rightT) r3 = r.run('Transpose', { x: r3 }, { perm: [0, 2, 1] }); // [1, k, cols]
    let out: tf.TensorInfo | undefined;
    for (let k0 = 0; k0 < k; k0 += STOCK_MATMUL_BLOCK) {
      const size = Math.min(STOCK_MATMUL_BLOCK, k - k0);
      const lBlock = size === k ? l3 : r.run('Slice', { x: l3 }, { begin: [0, 0, k0], size: [1, rows, size] });
      const rBlock = size === k ? r3 : r.run('Slice', { x: r3 }, { begin: [0, k0, 0], size: [1, size, cols] });
      const attrs = { transposeA: false, transposeB: false };
      const product = r.adopt(stock({ inputs: { a: lBlock, b: rBlock }, backend, attrs }) as tf.TensorInfo);
      out = out ? r.run('Add', { a: out, b: product }) : product;
    }
    if (swap) out = r.run('Transpose', { x: out! }, { perm: [0, 2, 1] }); // [1, m, n]
    r.disposeAllBut(out);
    const outer = a.shape.length >= b.shape.length ? a.shape.slice(0, -2) : b.shape.slice(0, -2);
    return { ...out!, shape: [...outer, m, n] };
  };
}

/**
 * `MaxPoolGrad` as a plain loop: each output cell sends its dy to the first maximum of its window (row-major, strict
 * `>`), as the cpu backend does. Pool windows are small, so this costs about as much as the forward pool.
 */
const maxPoolGradInJs: tf.KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as tf.KernelBackend;
  const { dy, input } = inputs as unknown as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const x = backend.readSync(input.dataId) as Float32Array;
  const dyValues = backend.readSync(dy.dataId) as Float32Array;
  const dx = new Float32Array(x.length);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let ch = 0; ch < inChannels; ch++) {
          let best = -Infinity;
          let at = -1;
          for (let ky = 0; ky < fh; ky += dilationHeight) {
            const y = oy * strideHeight - top + ky;
            if (y < 0 || y >= inHeight) continue;
            for (let kx = 0; kx < fw; kx += dilationWidth) {
              const xx = ox * strideWidth - left + kx;
              if (xx < 0 || xx >= inWidth) continue;
              const index = ((n * inHeight + y) * inWidth + xx) * inChannels + ch;
              if (x[index] > best || at < 0) {
                best = x[index];
                at = index;
              }
            }
          }
          if (at >= 0) dx[at] += dyValues[((n * outHeight + oy) * outWidth + ox) * inChannels + ch];
        }
      }
    }
  }
  return { dataId: backend.write(dx, input.shape, 'float32'), shape: input.shape, dtype: 'float32' };
};

/**
 * Visits every (input pixel, output pixel, tap) pair of a depthwise convolution: `visit(xBase, yBase, wBase)` gets
 * the offsets of channel 0 at the input pixel `[n, y, x]`, the output pixel `[n, oy, ox]` and the tap `[i, j]`; the
 * caller loops over channels c and multipliers m (input c, output c*M + m, filter c*M + m).
 */
function forEachDepthwiseTap(
  info: tf.backend_util.Conv2DInfo,
  visit: (xBase: number, yBase: number, wBase: number) => void,
): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth } =
    info;
  const { filterHeight, filterWidth, dilationHeight, dilationWidth } = info;
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let i = 0; i < filterHeight; i++) {
        const y = oy * strideHeight - top + i * dilationHeight;
        if (y < 0 || y >= inHeight) continue;
        for (let ox = 0; ox < outWidth; ox++) {
          for (let j = 0; j < filterWidth; j++) {
            const x = ox * strideWidth - left + j * dilationWidth;
            if (x < 0 || x >= inWidth) continue;
            visit(
              ((n * inHeight + y) * inWidth + x) * inChannels,
              ((n * outHeight + oy) * outWidth + ox) * outChannels,
              (i * filterWidth + j) * outChannels,
            );
          }
        }
      }
    }
  }
}

/** `DepthwiseConv2dNativeBackpropInput`: dx[n, y, x, c] = sum over taps and m of dy[.., c*M + m] w[i, j, c, m]. */
const depthwiseBackpropInputInJs: tf.KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as tf.KernelBackend;
  const { dy, filter } = inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, inputShape } =
    attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const dyValues = backend.readSync(dy.dataId) as Float32Array;
  const w = backend.readSync(filter.dataId) as Float32Array;
  const dx = new Float32Array(inputShape.reduce((a, b) => a * b, 1));
  const { inChannels: channels, outChannels } = info;
  const multiplier = outChannels / channels;
  forEachDepthwiseTap(info, (xBase, yBase, wBase) => {
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let m = 0; m < multiplier; m++)
        sum += dyValues[yBase + c * multiplier + m]! * w[wBase + c * multiplier + m]!;
      dx[xBase + c] += sum;
    }
  });
  return { dataId: backend.write(dx, inputShape, 'float32'), shape: inputShape, dtype: 'float32' };
};

/** `DepthwiseConv2dNativeBackpropFilter`: dw[i, j, c, m] = sum over n, oy, ox of x[.., c] dy[.., c*M + m]. */
const depthwiseBackpropFilterInJs: tf.KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = anyBackend as tf.KernelBackend;
  const { x, dy } = inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, dilations, pad, dimRoundingMode, filterShape } =
    attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  const xValues = backend.readSync(x.dataId) as Float32Array;
  const dyValues = backend.readSync(dy.dataId) as Float32Array;
  const dw = new Float32Array(filterShape.reduce((a, b) => a * b, 1));
  const { inChannels: channels, outChannels } = info;
  const multiplier = outChannels / channels;
  forEachDepthwiseTap(info, (xBase, yBase, wBase) => {
    for (let c = 0; c < channels; c++) {
      const xv = xValues[xBase + c]!;
      for (let m = 0; m < multiplier; m++) dw[wBase + c * multiplier + m] += xv * dyValues[yBase + c * multiplier + m]!;
    }
  });
  return { dataId: backend.write(dw, filterShape, 'float32'), shape: filterShape, dtype: 'float32' };
};

/**
 * `Conv2DBackpropFilter` built from the backend's own PadV2, Transpose, Conv2D and Slice kernels.
 *
 * dW[i, j, c, f] = sum over n, oh, ow of xPadded[n, i + s*oh, j + s*ow, c] * dy[n, oh, ow, f], which is a stride-1
 * conv with dilation s of xPadded seen as `[C, Hp, Wp, N]` (batch C, channels N) by dy seen as a filter
 * `[OH, OW, N, F]`; its output is `[C, >=KH, >=KW, F]`, cropped to `[C, KH, KW, F]` and transposed to
 * `[KH, KW, C, F]`. This runs on XNNPACK's conv, about 20x faster on wasm than im2col + matMul(transposeA).
 */
const conv2DBackpropFilterViaConv: tf.KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { x, dy } = inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const backend = anyBackend as tf.KernelBackend;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only; got NCHW');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const [kh, kw, c, f] = filterShape;
  const { top, bottom, left, right } = info.padInfo;
  const kernels = kernelRunner(backend);
  let dw: tf.TensorInfo | undefined;
  try {
    const padded =
      top + bottom + left + right === 0
        ? x
        : kernels.run(
            'PadV2',
            { x },
            {
              paddings: [
                [0, 0],
                [top, bottom],
                [left, right],
                [0, 0],
              ],
              constantValue: 0,
            },
          );
    const xT = kernels.run('Transpose', { x: padded }, { perm: [3, 1, 2, 0] });
    const dyT = kernels.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = kernels.run(
      'Conv2D',
      { x: xT, filter: dyT },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [info.strideHeight, info.strideWidth] },
    );
    const cropped =
      conv.shape[1] === kh && conv.shape[2] === kw
        ? conv
        : kernels.run('Slice', { x: conv }, { begin: [0, 0, 0, 0], size: [c, kh, kw, f] });
    dw = kernels.run('Transpose', { x: cropped }, { perm: [1, 2, 0, 3] });
    return dw;
  } finally {
    kernels.disposeAllBut(dw);
  }
};

/**
 * `Conv2DBackpropInput` as one stride-1 convolution on XNNPACK, for NHWC (else the stock kernel).
 *
 * Along one axis, with the forward conv y[o] = sum_k xPadded[o*s + k] w[k] and xPadded[j] = x[j - top]: write
 * j = q*s + r (phase r in [0, s)); the taps reaching j are k = r + m*s, o = q - m, so
 * dx at j = sum over m in [0, M) of dy[q - m] w[r + m*s], M = ceil(K / s) (w is 0 past K). That is, for every phase,
 * a stride-1 correlation of dy (padded by M - 1 before) with the phase's taps reversed. All sh*sw phases become the
 * output channels of one conv with the filter `[Mh, Mw, F, sh*sw*C]`; its output `[N, Qh, Qw, sh, sw, C]`
 * (Q = ceil((top + H) / s)) is interleaved into `[N, Qh, sh, Qw, sw, C]` = `[N, Qh*sh, Qw*sw, C]` by one transpose
 * (wasm's DepthToSpace is 25x slower), and a slice keeps j = top .. top + H - 1.
 * Taps past K are zeros: 16 taps for 9 at 3x3 stride 2, against 36 for zero-upsampling dy (the textbook way).
 */
function conv2DBackpropInputViaConv(stock: tf.KernelFunc | undefined): tf.KernelFunc {
  return (args) => {
    const { inputs, backend: anyBackend, attrs } = args;
    const { dy, filter } = inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const backend = anyBackend as tf.KernelBackend;
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const [kh, kw, c, f] = filter.shape;
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      [kh, kw, c, f],
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      dataFormat === 'NCHW' ? 'channelsFirst' : 'channelsLast',
    );
    const [sh, sw] = [info.strideHeight, info.strideWidth];
    const { top, left } = info.padInfo;
    const [n, h, w] = [info.batchSize, info.inHeight, info.inWidth];
    const [qh, qw] = [Math.ceil((top + h) / sh), Math.ceil((left + w) / sw)];
    // Explicit paddings can make dy reach past the input; those (rare) cases keep the stock kernel.
    if (dataFormat === 'NCHW' || qh < info.outHeight || qw < info.outWidth) {
      if (!stock) throw new Error('Conv2DBackpropInput on wasm: no stock kernel for NCHW or explicit paddings');
      return stock(args);
    }
    const [mh, mw] = [Math.ceil(kh / sh), Math.ceil(kw / sw)];
    const kernels = kernelRunner(backend);
    let dx: tf.TensorInfo | undefined;
    try {
      const weights = backend.readSync(filter.dataId) as Float32Array;
      const phaseFilter = kernels.adopt(writePhaseFilter(backend, weights, [kh, kw, c, f], [sh, sw]));
      const dyPadded = kernels.run(
        'PadV2',
        { x: dy },
        {
          paddings: [
            [0, 0],
            [mh - 1, qh - info.outHeight],
            [mw - 1, qw - info.outWidth],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
      const phases = kernels.run(
        'Conv2D',
        { x: dyPadded, filter: phaseFilter },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
      ); // [N, Qh, Qw, sh*sw*C]
      const interleaved =
        sh * sw === 1
          ? phases
          : kernels.run('Transpose', { x: { ...phases, shape: [n * qh, qw, sh, sw * c] } }, { perm: [0, 2, 1, 3] }); // [N*Qh, sh, Qw, sw*C], the bytes of [N, Qh*sh, Qw*sw, C]
      const full = { ...interleaved, shape: [n, qh * sh, qw * sw, c] };
      dx =
        top === 0 && left === 0 && qh * sh === h && qw * sw === w
          ? interleaved
          : kernels.run('Slice', { x: full }, { begin: [0, top, left, 0], size: [n, h, w, c] });
      if (dx === interleaved) dx.shape = full.shape;
      return dx;
    } finally {
      kernels.disposeAllBut(dx);
    }
  };
}

/**
 * The filter of {@link conv2DBackpropInputViaConv}: `[Mh, Mw, F, sh*sw*C]` with
 * out[th, tw, f, (rh*sw + rw)*C + c] = w[rh + (Mh-1-th)*sh, rw + (Mw-1-tw)*sw, c, f], 0 where the index passes K.
 * Filters are small (3x3x32x64 = 18k values), so a loop here costs far less than the convolution.
 */
function writePhaseFilter(
  backend: tf.KernelBackend,
  w: Float32Array,
  [kh, kw, c, f]: number[],
  [sh, sw]: [number, number],
): tf.TensorInfo {
  const [mh, mw] = [Math.ceil(kh / sh), Math.ceil(kw / sw)];
  const channels = sh * sw * c;
  const out = new Float32Array(mh * mw * f * channels);
  for (let th = 0; th < mh; th++) {
    for (let tw = 0; tw < mw; tw++) {
      for (let rh = 0; rh < sh; rh++) {
        const i = rh + (mh - 1 - th) * sh;
        if (i >= kh) continue;
        for (let rw = 0; rw < sw; rw++) {
          const j = rw + (mw - 1 - tw) * sw;
          if (j >= kw) continue;
          for (let ci = 0; ci < c; ci++) {
            const from = ((i * kw + j) * c + ci) * f;
            const to = (th * mw + tw) * f * channels + (rh * sw + rw) * c + ci;
            for (let fi = 0; fi < f; fi++) out[to + fi * channels] = w[from + fi];
          }
        }
      }
    }
  }
  const shape = [mh, mw, f, channels];
  return { dataId: backend.write(out, shape, 'float32'), shape, dtype: 'float32' };
}

let batchNormGradientRegistered = false;

/**
 * Replaces tfjs's gradient of `FusedBatchNorm` (`tf.batchNorm`, what `tf.layers.batchNormalization` runs), for every
 * backend, by the same formulas without the `Tile`: for per-channel statistics the stock one tiles
 * 1/sqrt(var + eps) to the whole `[N, H, W, C]` input before multiplying, which on wasm cost a quarter of a training
 * step (60 of 250 ms for the default frame encoder). Broadcasting the `[C]` factor gives the same values bit for bit,
 * so training reproduces the stock gradient's losses exactly. The formulas, with g the scale (1 when absent) and sums
 * over the axes mean broadcasts along:
 *   dx = dy / sqrt(var + eps) * g,   dmean = sum(-1 / sqrt(var + eps) * dy * g),   doffset = sum(dy),
 *   dvar = sum(-0.5 * (var + eps)^(-3/2) * (x - mean) * dy * g),   dscale = sum(dy * (x - mean) / sqrt(var + eps)).
 */
export function registerBatchNormGradient(): void {
  if (batchNormGradientRegistered) return;
  batchNormGradientRegistered = true;
  tf.registerGradient({
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: (dyOrList, saved, attrs) => {
      const dy = dyOrList as tf.Tensor;
      const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
      const reduce = (t: tf.Tensor) => tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, mean.shape);
      const scaleValue = scale ?? tf.scalar(1);
      // The stock gradient's products in the stock order (so the values are bit-identical), with broadcasting where it
      // tiles: these tensors serve several derivatives, so they are made here, outside the tape's per-input tidy.
      const xMinusMean = tf.sub(x, mean);
      const dyTimesScale = tf.mul(dy, scaleValue);
      const oneOverSqrtVariance = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
      const minusHalfRCube = tf.mul(
        tf.mul(tf.mul(oneOverSqrtVariance, oneOverSqrtVariance), oneOverSqrtVariance),
        tf.scalar(-0.5),
      );
      return {
        x: () => tf.reshape(tf.mul(tf.mul(dy, oneOverSqrtVariance), scaleValue), x.shape),
        mean: () => reduce(tf.mul(tf.mul(oneOverSqrtVariance, tf.scalar(-1)), dyTimesScale)),
        variance: () => reduce(tf.mul(tf.mul(minusHalfRCube, xMinusMean), dyTimesScale)),
        scale: () => reduce(tf.mul(dy, tf.mul(xMinusMean, oneOverSqrtVariance))),
        offset: () => reduce(dy),
      };
    },
  });
}

/**
 * Replaces `Conv2DBackpropFilter` on another backend (not wasm) by the forward-convolution form used on wasm. On
 * webgpu (Dawn, H200) the stock kernel took 10.5 of a step's 13.7 ms of kernel time and this one 1.4; the default
 * encoder's step at batch 512 went from 1660 to 5964 samples/s, gradients within 3e-6 of cpu (`backend-parity` bench).
 */
export function registerConvFilterGradientViaConv(backendName: string): void {
  const kernelName = 'Conv2DBackpropFilter';
  const existing = tf.getKernel(kernelName, backendName);
  if (existing && (existing as { ours?: boolean }).ours) return;
  if (existing) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: conv2DBackpropFilterViaConv,
    ours: true,
  } as tf.KernelConfig);
}
