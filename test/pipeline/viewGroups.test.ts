import test from 'ava';
import { firstValueFrom, map, toArray } from 'rxjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OptionError, VideoDecodeError, VideoNotFoundError, type VideoError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';
import { generateEdgeCaseVideos } from '../../fixtures/edgeCaseVideos.ts';
import { generateSyncedViews, renderSyncedViews } from '../../fixtures/syncedViews.ts';
import { checkViewGroups, decodeViewGroup, viewGroupMix } from '../../pipeline/viewGroups.ts';

const root = join(tmpdir(), 'tempo-ssl-fixtures', 'viewGroups-test');
const recordings = () => generateSyncedViews({ dir: join(root, 'short'), seed: 7, recordings: 2, frames: 12 });

test('a group of cameras at different rates and sizes is decoded at the lowest rate', async (t) => {
  const { groups } = await recordings();
  const [group] = await checkViewGroups([groups[0]!.files]);
  t.deepEqual(group, { files: groups[0]!.files, fps: 6 });
  const [faster] = await checkViewGroups([groups[0]!.files], { fps: 12 });
  t.is(faster!.fps, 12);
});

test('decodeViewGroup gives one frame of every camera per instant, of the same scene moment, at the run format', async (t) => {
  const { groups } = await recordings();
  const [group] = await checkViewGroups([groups[0]!.files]);
  const moments = await firstValueFrom(decodeViewGroup(group!, { width: 64, height: 64 }).pipe(toArray()));
  // 12 scene frames at 12 fps filmed by cameras at 12, 12 and 6 fps: 6 instants at 6 fps.
  t.is(moments.length, 6);
  for (const [k, moment] of moments.entries()) {
    t.is(moment.length, 3);
    t.deepEqual(
      moment.map((f) => [f.timestamp, f.width, f.height]),
      [0, 1, 2].map(() => [k / 6, 64, 64]),
    );
    t.deepEqual(
      moment.map((f) => f.source),
      groups[0]!.files,
    );
  }
  // The content too: camera 0's frame at instant k is the scene at frame 2k (closest of all its rendered frames).
  const rendered = renderSyncedViews({ seed: 7, frames: 12 }).cameras[0]!.pixels;
  const mae = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
  for (const [k, moment] of moments.entries()) {
    const errors = rendered.map((pixels) => mae(moment[0]!.data, pixels));
    t.is(errors.indexOf(Math.min(...errors)), 2 * k, `instant ${k}`);
  }
});

test('viewGroupMix mixes the recordings, each through its own sampler, the same for the same seed', async (t) => {
  const { groups } = await recordings();
  const checked = await checkViewGroups(groups.map((g) => g.files));
  const epoch = (seed: number) =>
    firstValueFrom(
      viewGroupMix(checked, { width: 16, height: 16 }, new Rng(seed), undefined, {}, () =>
        map((moment) => `${moment[0]!.source}@${moment[0]!.index}`),
      ).pipe(toArray()),
    );
  const first = await epoch(3);
  t.is(first.length, 12);
  t.deepEqual(new Set(first.map((item) => item.split('/').at(-2))), new Set(['rec_00', 'rec_01']));
  t.deepEqual(await epoch(3), first);
});

const refused = test.macro(async (t, groups: () => string[][] | Promise<string[][]>, expected: RegExp) => {
  await t.throwsAsync(checkViewGroups(await groups()), { instanceOf: OptionError, message: expected });
});

test(
  'a group of one file is refused with the fix',
  refused,
  () => [['cam0.mp4']],
  /--views must be two or more synchronized camera files.*--views cam1\.mp4,cam2\.mp4.*"cam0\.mp4"/,
);
test(
  'a file given twice in a group is refused',
  refused,
  () => [['a.mp4', 'a.mp4']],
  /distinct camera files \(a\.mp4 is given twice/,
);
test(
  'a live stream in a group is refused',
  refused,
  () => [['a.mp4', 'rtsp://cam/1']],
  /live stream.*record each camera to a file first.*"rtsp:\/\/cam\/1"/,
);
test('no group at all is refused', refused, () => [], /--views must be one or more groups/);
test(
  'cameras of very different lengths are refused as not one recording',
  refused,
  async () => {
    const short = await recordings();
    const long = await generateSyncedViews({ dir: join(root, 'long'), seed: 8, frames: 48 });
    return [[short.groups[0]!.files[0]!, long.groups[0]!.files[1]!]];
  },
  /one synchronized recording, of about one length \(.*cam0\.mp4 lasts 1\.0 s, .*cam1\.mp4 4\.0 s\): trim them/,
);

test('a camera that cannot be read fails naming it, or with skip its group is left out and reported', async (t) => {
  const { groups } = await recordings();
  const edge = await generateEdgeCaseVideos(join(root, 'edge'));
  const bad = [groups[0]!.files[0]!, edge.notAVideo];
  await t.throwsAsync(checkViewGroups([bad]), { instanceOf: VideoDecodeError, message: /not-a-video\.mp4/ });
  await t.throwsAsync(checkViewGroups([[groups[0]!.files[0]!, join(root, 'missing.mp4')]]), {
    instanceOf: VideoNotFoundError,
    message: /missing\.mp4/,
  });
  const reported: string[] = [];
  const onBadInput = (input: string, error: VideoError) => reported.push(`${input}: ${error.name}`);
  const kept = await checkViewGroups([bad, groups[1]!.files], { badInputs: 'skip', onBadInput });
  t.deepEqual(
    kept.map((g) => g.files),
    [groups[1]!.files],
  );
  t.deepEqual(reported, [`${edge.notAVideo}: VideoDecodeError`]);
});
