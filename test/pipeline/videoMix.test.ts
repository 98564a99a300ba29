import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, toArray } from 'rxjs';
import { generateLabelledClips } from '../../fixtures/syntheticVideos.ts';
import { Rng } from '../../core/rng.ts';
import { Valve } from '../../core/valve.ts';
import { videoSamples } from '../../recipes/videoSamples.ts';
import { labelledFrames } from '../../evaluation/videoLabels.ts';
import { readVideoLabels } from '../../evaluation/videoLabels.ts';
import { orderVerification } from '../../tasks/temporal/orderVerification.ts';

let dir: string;
let clips: string[];
let positionsFile: string;
const format = { width: 24, height: 24 };

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tempo-dataset-'));
  const set = await generateLabelledClips({ dir, seed: 4, count: 3, width: 24, height: 24, frames: 20 });
  clips = set.clips.map((c) => c.path);
  positionsFile = set.positionsFile;
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

// Regression: mixing the frames of several videos before sampling left the order sampler no window from one video.
test('samples of several videos come from every video and are reproducible', async (t) => {
  const epoch = () =>
    firstValueFrom(videoSamples(orderVerification, clips, format)(0, new Valve(), new Rng(7)).pipe(toArray()));
  const [a, b] = [await epoch(), await epoch()];
  t.true(a.length > 10, `${a.length} samples`);
  t.is(new Set(a.map((s) => s.source)).size, 3);
  t.deepEqual(
    a.map((s) => [s.source, s.label[0]]),
    b.map((s) => [s.source, s.label[0]]),
  );
});

test('frame-level labels give each decoded frame its own label', async (t) => {
  const { videos } = await readVideoLabels(positionsFile);
  t.true(videos.every((v) => v.frame !== undefined && v.label >= 0 && v.label < 4));
  const data = await labelledFrames(videos, format, 2);
  t.is(data.items.length, 3 * 10);
  t.is(data.items[0]!.length, 24 * 24 * 3);
  t.is(new Set(data.groups).size, 3);
});
