/**
 * CIE L*a*b* colour (D65 white, sRGB primaries), the colour space of colorization (Zhang, Isola and Efros 2016) and
 * split-brain autoencoders (2017): L is lightness in [0, 100], a and b the two opponent chroma axes (about -86..98
 * and -108..95 over the sRGB gamut). The formulas are the CIE's and skimage's `rgb2lab` / `lab2rgb` (sRGB gamma,
 * the sRGB to XYZ matrix, then the cube-root compression with its linear toe).
 */

/** The D65 reference white in XYZ (Y = 1). */
const WHITE = [0.95047, 1, 1.08883] as const;
const DELTA = 6 / 29;

/** sRGB's gamma undone: an 8-bit-style channel in [0, 1] to linear light. */
function linearOf(c: number): number {
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
}

/** Linear light back to an sRGB channel in [0, 1] (clipped: Lab colours outside the gamut land on its edge). */
function gammaOf(c: number): number {
  const v = c <= 0.0031308 ? 12.92 * c : 1.055 * Math.max(0, c) ** (1 / 2.4) - 0.055;
  return Math.min(1, Math.max(0, v));
}

function compress(t: number): number {
  return t > DELTA ** 3 ? Math.cbrt(t) : t / (3 * DELTA * DELTA) + 4 / 29;
}

function expand(f: number): number {
  return f > DELTA ? f ** 3 : 3 * DELTA * DELTA * (f - 4 / 29);
}

/**
 * An sRGB colour (channels in [0, 1]) in L*a*b*: `[L, a, b]`.
 *
 * @example
 * rgbToLab(1, 0, 0); // [53.24, 80.09, 67.20] (pure red)
 */
export function rgbToLab(r: number, g: number, b: number): [number, number, number] {
  return linearToLab(linearOf(r), linearOf(g), linearOf(b));
}

/** Linear-light RGB in L*a*b*. */
function linearToLab(lr: number, lg: number, lb: number): [number, number, number] {
  const x = (0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb) / WHITE[0];
  const y = (0.2126729 * lr + 0.7151522 * lg + 0.072175 * lb) / WHITE[1];
  const z = (0.0193339 * lr + 0.119192 * lg + 0.9503041 * lb) / WHITE[2];
  const [fx, fy, fz] = [compress(x), compress(y), compress(z)];
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/**
 * An L*a*b* colour back in sRGB, each channel in [0, 1] (clipped where the colour is outside the sRGB gamut).
 *
 * @example
 * labToRgb(53.24, 80.09, 67.2); // about [1, 0, 0]
 */
export function labToRgb(l: number, a: number, b: number): [number, number, number] {
  const fy = (l + 16) / 116;
  const x = expand(fy + a / 500) * WHITE[0];
  const y = expand(fy) * WHITE[1];
  const z = expand(fy - b / 200) * WHITE[2];
  return [
    gammaOf(3.2404542 * x - 1.5371385 * y - 0.4985314 * z),
    gammaOf(-0.969266 * x + 1.8760108 * y + 0.041556 * z),
    gammaOf(0.0556434 * x - 0.2040259 * y + 1.0572252 * z),
  ];
}

/**
 * An HWC uint8 RGB image (`width * height * 3` bytes) as planar L*a*b*: `{ l, a, b }`, each `width * height`
 * floats in pixel order.
 *
 * @example
 * const { l, a, b } = imageToLab(frame.data); // frame.channels === 3
 */
export function imageToLab(rgb: Uint8Array): { l: Float32Array; a: Float32Array; b: Float32Array } {
  const count = rgb.length / 3;
  const [l, a, b] = [new Float32Array(count), new Float32Array(count), new Float32Array(count)];
  for (let i = 0; i < count; i++) {
    const [lr, lg, lb] = [LINEAR[rgb[3 * i]!]!, LINEAR[rgb[3 * i + 1]!]!, LINEAR[rgb[3 * i + 2]!]!];
    [l[i], a[i], b[i]] = linearToLab(lr, lg, lb);
  }
  return { l, a, b };
}

/** Linear light of each 8-bit level: `imageToLab` looks gamma up instead of raising to 2.4 per pixel. */
const LINEAR = Float64Array.from({ length: 256 }, (_, v) => linearOf(v / 255));
