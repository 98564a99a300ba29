// issue 12: CIE Lab conversion for colorization and split-brain, checked against published values.
import test from 'ava';
import { imageToLab, labToRgb, rgbToLab } from '../../pipeline/labColour.ts';

const close = (got: readonly number[], want: readonly number[], tolerance: number) =>
  got.every((v, k) => Math.abs(v - want[k]!) <= tolerance);

// Reference values: skimage.color.rgb2lab (D65, 2 degree observer), as tabulated by colormine and Bruce Lindbloom.
const KNOWN: [string, [number, number, number], [number, number, number]][] = [
  ['white', [1, 1, 1], [100, 0, 0]],
  ['black', [0, 0, 0], [0, 0, 0]],
  ['red', [1, 0, 0], [53.2408, 80.0925, 67.2032]],
  ['green', [0, 1, 0], [87.7347, -86.1827, 83.1793]],
  ['blue', [0, 0, 1], [32.297, 79.1875, -107.8602]],
  ['mid grey', [0.5, 0.5, 0.5], [53.389, 0, 0]],
  ['yellow', [1, 1, 0], [97.1393, -21.5537, 94.478]],
];

for (const [name, rgb, lab] of KNOWN) {
  test(`${name} has its published L*a*b* and converts back`, (t) => {
    const got = rgbToLab(...rgb);
    t.true(close(got, lab, 0.01), `${name}: ${got.map((v) => v.toFixed(4)).join(', ')}`);
    t.true(close(labToRgb(...got), rgb, 1e-5));
  });
}

test('every 8-bit colour of a sweep goes to Lab and back to itself, and imageToLab agrees with rgbToLab', (t) => {
  const pixels: number[] = [];
  for (let r = 0; r < 256; r += 17)
    for (let g = 0; g < 256; g += 17) for (let b = 0; b < 256; b += 17) pixels.push(r, g, b);
  const image = Uint8Array.from(pixels);
  const { l, a, b } = imageToLab(image);
  let worst = 0;
  for (let i = 0; i < l.length; i++) {
    const rgb = [image[3 * i]! / 255, image[3 * i + 1]! / 255, image[3 * i + 2]! / 255] as const;
    const lab = rgbToLab(...rgb);
    t.true(close([l[i]!, a[i]!, b[i]!], lab, 1e-3));
    worst = Math.max(worst, ...labToRgb(...lab).map((v, k) => Math.abs(v - rgb[k]!)));
  }
  t.true(worst < 1e-5, `worst round trip ${worst}`);
});

test('a Lab colour outside the sRGB gamut comes back clipped to [0, 1]', (t) => {
  const rgb = labToRgb(50, 120, -120);
  t.true(rgb.every((v) => v >= 0 && v <= 1));
});
