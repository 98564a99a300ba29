// `npm run bench [-- name ...]`: runs the named benches (default: the quick ones) and prints a table each.
// Every table holds a ratio against a baseline measured in the same run, so a loaded machine skews both sides alike.
import { benchConvFlops } from './convFlops.ts';
import { benchDecode } from './decode.ts';
import { benchTokenize } from './tokenize.ts';
import { benchTrainerFeed } from './trainerFeed.ts';
import { benchVideoTasks } from './videoTasks.ts';

const BENCHES: Record<string, { run: () => Promise<object[]>; quick: boolean; what: string }> = {
  decode: {
    run: () => benchDecode(),
    quick: true,
    what: 'decodeFrames frames/s vs raw ffmpeg at 64x64, and frame counts vs ffprobe',
  },
  'trainer-feed': {
    run: () => benchTrainerFeed(),
    quick: true,
    what: 'trainer samples/s fed live from ffmpeg vs pre-built tensors',
  },
  'conv-flops': {
    run: () => benchConvFlops(),
    quick: true,
    what: 'encoder training GFLOP/s vs the backend matMul GFLOP/s',
  },
  tokenize: {
    run: () => benchTokenize(),
    quick: true,
    what: 'WordPiece MB/s vs tokenizers.js on the same tokenizer.json',
  },
  'video-tasks': {
    run: () => benchVideoTasks(),
    quick: false,
    what: 'each video task: pretext accuracy, probe vs random init, held-out real clips',
  },
};

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; choose from: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
const names = asked.length > 0 ? asked : Object.keys(BENCHES).filter((name) => BENCHES[name]!.quick);
for (const name of names) {
  const bench = BENCHES[name]!;
  console.log(`\n## ${name}: ${bench.what}`);
  const rows = await bench.run();
  if (rows.length > 0) console.table(rows);
}
