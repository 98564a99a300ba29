// `npm run bench [-- name ...] [--json] [--backend wasm]`: runs the named benches (default: the quick ones) and prints
// a table each. Most tables hold a ratio against a baseline measured in the same run, so a loaded machine skews both
// sides alike. With `--json`, stdout holds only JSON lines (one object per row) and everything else goes to stderr.
// `--backend` sets TEMPO_BACKEND for every bench.
import { parseArgs } from 'node:util';
import { benchBackendParity } from './backendParity.ts';
import { benchConvFlops } from './convFlops.ts';
import { benchCorpus } from './corpus.ts';
import { benchDecode } from './decode.ts';
import { benchShardFeed } from './shardFeed.ts';
import { benchStepOverhead } from './stepOverhead.ts';
import { benchTokenize } from './tokenize.ts';
import { benchTrainerFeed } from './trainerFeed.ts';
import { benchTrainStep, profileTrainStep } from './trainStep.ts';
import { benchVideoTasks } from './videoTasks.ts';
import { benchJetStreamFeed } from './jetstreamFeed.ts';
import { benchLearningTests } from './learningTests.ts';
import { benchWasmThreads } from './wasmThreads.ts';

const BENCHES: Record<string, { run: () => Promise<object[]>; quick: boolean; what: string }> = {
  'jetstream-feed': {
    run: () => benchJetStreamFeed(),
    quick: false,
    what: 'order samples/s through NATS JetStream (produce -> nats-server -> trainer consumer) vs in process, same machine',
  },
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
  'train-step': {
    run: async () => {
      const rows = await benchTrainStep();
      // The per-kernel table is a log: with --json it goes to stderr, beside the headers.
      console.log('tf.profile of one step, per kernel:');
      console.table(await profileTrainStep());
      return rows;
    },
    quick: true,
    what: 'samples/s of one Adam step of the default frame encoder + dense head, batch 32',
  },
  'wasm-threads': {
    run: () => benchWasmThreads(),
    quick: false,
    what: 'train-step samples/s on wasm with 1 and 2 XNNPACK threads (a Node shim for tfjs threaded wasm), child processes, alternating',
  },
  'backend-parity': {
    run: () => benchBackendParity(),
    quick: true,
    what: 'one training step of the default frame encoder on the chosen backend vs the cpu backend: largest output and gradient differences',
  },
  'step-overhead': {
    run: () => benchStepOverhead(),
    quick: true,
    what: 'steps/s of the smallest encoder (kernels cost nothing): tfjs per-step dispatch, and what the trainer adds',
  },
  tokenize: {
    run: () => benchTokenize(),
    quick: true,
    what: 'WordPiece MB/s vs tokenizers.js on the same tokenizer.json',
  },
  corpus: {
    run: () => benchCorpus(),
    quick: false,
    what: 'process-corpus MB/s per task vs read + split + tokenize of the same corpus, median of 3 rounds (BENCH_CORPUS_COPIES=5: five copies of it)',
  },
  'shard-feed': {
    run: () => benchShardFeed(),
    quick: false,
    what: 'trainer samples/s fed from process-corpus Arrow shards vs pre-built tensors and vs samples in memory',
  },
  learning: {
    run: () => benchLearningTests(),
    quick: false,
    what: 'the learning checks too long for npm test (test/_long.ts): each held-out result, baseline and broken control',
  },
  'video-tasks': {
    run: () => benchVideoTasks(),
    quick: false,
    what: 'each video task over 3 seeds: evaluation protocol on unseen clips (pretrained / random init / supervised), pretext accuracy on held-out real video',
  },
};

const { values, positionals: asked } = parseArgs({
  options: { json: { type: 'boolean', default: false }, backend: { type: 'string' } },
  allowPositionals: true,
});
if (values.backend !== undefined) process.env.TEMPO_BACKEND = values.backend;
const unknown = asked.filter((name) => !(name in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; choose from: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
// With --json, whatever any bench (or a library under it) writes to stdout goes to stderr; only the rows use stdout.
const writeStdout = process.stdout.write.bind(process.stdout);
if (values.json) process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
const names = asked.length > 0 ? asked : Object.keys(BENCHES).filter((name) => BENCHES[name]!.quick);
for (const name of names) {
  const bench = BENCHES[name]!;
  console.log(`\n## ${name}: ${bench.what}`);
  const rows = await bench.run();
  if (values.json) for (const row of rows) writeStdout(`${JSON.stringify({ bench: name, ...row })}\n`);
  else if (rows.length > 0) console.table(rows);
}
