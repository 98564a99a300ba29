// The layer rules `npm run lint` checks (see CONTRIBUTING.md). Each layer imports only the layers below it:
//
//   cli                       commands: parse, call a run, print
//   recipes                   recipes wiring sources -> tasks -> trainer (pretrain, shards, process-corpus, scoring)
//   evaluation                probes, kNN, ROC AUC, pretext metrics, label readers
//   training                  the trainer, its hooks, checkpoints
//   tasks                     the task interface, the registry, losses/, the families
//   models                    backend ladder, encoders, heads, model IO
//   pipeline | text           video streams and batching | corpora, segmentation, dialogues, tokenizers (siblings)
//   core                      errors, seeded rng, atomic files, generic stream helpers
//
// fixtures/ (test-data generators) stands beside the ground: it may use core and pipeline, and is used by cli,
// tests and benches only.
const LAYERS = ['core', 'pipeline|text', 'models', 'tasks', 'training', 'evaluation', 'recipes', 'cli'];
const folder = (alternatives) => `^(${alternatives})/`;

const upward = LAYERS.slice(0, -1).map((layer, k) => ({
  name: `no-upward-from-${layer.replace('|', '-')}`,
  comment: `${layer} sits below ${LAYERS.slice(k + 1).join(', ')} and may not import them`,
  severity: 'error',
  from: { path: folder(layer) },
  to: { path: folder([...LAYERS.slice(k + 1), 'fixtures'].join('|')) },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'pipeline-and-text-are-siblings',
      comment: 'video streams know nothing of text, and text nothing of video streams',
      severity: 'error',
      from: { path: '^pipeline/' },
      to: { path: '^text/' },
    },
    {
      name: 'text-and-pipeline-are-siblings',
      severity: 'error',
      from: { path: '^text/' },
      to: { path: '^pipeline/' },
    },
    {
      name: 'fixtures-stay-low',
      comment: 'fixtures generate test data from the ground and the video pipeline only',
      severity: 'error',
      from: { path: '^fixtures/' },
      to: { path: folder('text|models|tasks|training|evaluation|recipes|cli') },
    },
    {
      name: 'cli-only-from-the-top',
      comment: 'cli/ is imported only by bin/, tests and benches',
      severity: 'error',
      from: { pathNot: '^(cli|bin|test|bench)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'index-only-re-exports',
      comment: 'nothing imports the entry file: import the module itself',
      severity: 'error',
      from: { pathNot: '^(test|bench)/' },
      to: { path: '^index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.cache|runs|\\.scratch)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
