import test from 'ava';
import { decodeOptionsOf, frameShape } from '../../pipeline/frameFormat.ts';

test('a frame format gives the decode options of its size, rate and channels', (t) => {
  t.deepEqual(decodeOptionsOf({ width: 64, height: 48, fps: 12 }), {
    width: 64,
    height: 48,
    fps: 12,
    pixelFormat: 'rgb',
  });
  t.deepEqual(decodeOptionsOf({ width: 64, height: 64, gray: true }), {
    width: 64,
    height: 64,
    fps: undefined,
    pixelFormat: 'gray',
  });
});

test('a size left out is left to the video', (t) => {
  t.deepEqual(decodeOptionsOf({ gray: false }), {
    width: undefined,
    height: undefined,
    fps: undefined,
    pixelFormat: 'rgb',
  });
});

test('the shape of frames in a format has one channel for gray, three for rgb', (t) => {
  t.deepEqual(frameShape({ width: 8, height: 4, gray: true }), [4, 8, 1]);
  t.deepEqual(frameShape({ width: 8, height: 4 }), [4, 8, 3]);
});
