// The library's public API. This file only re-exports; see README.md for the map of the code.
export * from './core/errors.ts';
export { Rng } from './core/rng.ts';
export { Valve } from './core/valve.ts';
export type { Frame } from './pipeline/frame.ts';
export { frameToFloat } from './pipeline/frame.ts';
export { decodeFrames } from './pipeline/decodeFrames.ts';
export { probeVideo } from './pipeline/probeVideo.ts';
export { expandInputs, parseShard } from './pipeline/inputs.ts';
export { liveFrames } from './pipeline/liveSource.ts';
export { interleave } from './pipeline/interleave.ts';
export { windowFrames } from './pipeline/windowFrames.ts';
export { motionScore, scoreMotion } from './pipeline/motionScore.ts';
export { preferMotion } from './pipeline/preferMotion.ts';
export { detectSceneCuts } from './pipeline/detectSceneCuts.ts';
export { alignViews, syntheticViews } from './pipeline/multiView.ts';
export { checkViewGroups, decodeViewGroup, viewGroupMix, type ViewGroup } from './pipeline/viewGroups.ts';
export {
  augment,
  randomResizedCrop,
  horizontalFlip,
  colorJitter,
  randomGrayscale,
  gaussianBlur,
  simclrRecipe,
} from './pipeline/augment.ts';
export { embedFrames } from './models/embedFrames.ts';
export { selectBackend } from './models/backend.ts';
export { saveModel, loadModel, fileSaveHandler, fileLoadHandler } from './models/modelIO.ts';
export { buildFrameEncoder, type FrameEncoderOptions } from './models/frameEncoder.ts';
export { batchSamples, collate, disposeBatch } from './pipeline/batchSamples.ts';
export { PullQueue } from './pipeline/pullQueue.ts';
export { train, type TrainHook, type TrainOptions, type TrainTask, type TrainResult } from './training/trainer.ts';
export type { StepMetrics } from './training/stepMetrics.ts';
export { saveCheckpoint, loadCheckpoint } from './training/checkpoint.ts';
export { linearProbe, embed, type LabelledItems } from './evaluation/linearProbe.ts';
export { splitLabelled, takePerClass } from './evaluation/splitLabelled.ts';
export { knnClassify } from './evaluation/knnClassify.ts';
export { fitLinearClassifier } from './evaluation/linearClassifier.ts';
export { rocAuc } from './evaluation/rocAuc.ts';
export { crossViewRetrieval, type CrossViewRetrieval } from './evaluation/crossViewRetrieval.ts';
export { evaluateEncoder, type EvaluateEncoderOptions, type EncoderEvaluation } from './evaluation/evaluateEncoder.ts';
export { trainClassifier, predictClasses } from './evaluation/trainClassifier.ts';
export { readLabelledSet } from './evaluation/readLabelledSet.ts';
export {
  chooseLayer,
  featureModel,
  layerCandidates,
  parseLayerSpec,
  type LayerSpec,
} from './evaluation/featureLayer.ts';
export { fewShotEpisodes, type FewShotOptions, type FewShotResult } from './evaluation/fewShot.ts';
export { probeAgainstRandomInit, loadEncoder, randomInitLike, idxImages } from './evaluation/evaluate.ts';
export { pretrainVideo, type VideoPretrainOptions } from './recipes/pretrainVideo.ts';
export { videoEpoch, videoMix, samplePerSource } from './pipeline/videoMix.ts';
export { windowClips } from './pipeline/windowClips.ts';
export { videoSamples } from './recipes/videoSamples.ts';
export { viewSamples, singleCameraTask } from './recipes/viewSamples.ts';
export { evaluateTask } from './evaluation/pretextMetrics.ts';
export { readVideoLabels, labelledFrames } from './evaluation/videoLabels.ts';
export { pretrainText } from './recipes/pretrainText.ts';
export { scoreDialogues, loadDialogueScorer } from './recipes/scoreDialogues.ts';
export { writeReport, reportHook, type ReportOptions } from './recipes/report/writeReport.ts';
export { exportSite, type ExportOptions } from './recipes/export/exportSite.ts';
export { processCorpus } from './recipes/processCorpus.ts';
export { countCorpusTokens } from './recipes/textTasks.ts';
export { shardSamples, readShardManifest, readShard, type ShardManifest } from './recipes/shards.ts';
export * from './text/index.ts';
export { buildTextEncoder } from './models/textEncoder.ts';
export { readIdx } from './pipeline/idx.ts';
export {
  listImages,
  decodeImage,
  imageEpoch,
  IMAGE_EXTENSIONS,
  type ImageRef,
  type ImageList,
} from './pipeline/readImages.ts';
export { pretrainImages, imageSamples, type ImagePretrainOptions } from './recipes/pretrainImages.ts';
export { rotation, sampleRotations, rotationSample } from './tasks/image/rotation.ts';
export { autoencoder, autoencoderTask, type AutoencoderOptions } from './tasks/image/autoencoder.ts';
export { inpainting, inpaintingTask, type InpaintingOptions } from './tasks/image/inpainting.ts';
export {
  relativePosition,
  relativePositionTask,
  type RelativePositionOptions,
} from './tasks/image/relativePosition.ts';
export { jigsaw, jigsawTask, type JigsawOptions } from './tasks/image/jigsaw.ts';
export { maximalHammingPermutations, jigsawPermutations } from './tasks/image/jigsawPermutations.ts';
export {
  simclr,
  createSimclrTask,
  ntXentLogits,
  sampleViewPairs,
  type SimclrOptions,
  type ViewPairOptions,
} from './tasks/contrastive/simclr.ts';
export { moco, createMocoTask, type MocoOptions } from './tasks/contrastive/moco.ts';
export {
  simclrVideo,
  sampleClipPairs,
  pairMoments,
  augmentInGroups,
  type ClipPairOptions,
} from './tasks/contrastive/simclr.ts';
export { mocoVideo } from './tasks/contrastive/moco.ts';
export { MemoryBank, slotOf, type MemoryBankOptions } from './tasks/contrastive/memoryBank.ts';
export {
  instanceDisc,
  createInstanceDiscTask,
  sampleInstances,
  type InstanceDiscOptions,
} from './tasks/contrastive/instanceDisc.ts';
export {
  cmc,
  cmcViews,
  createCmcTask,
  createCmcViewsTask,
  sampleCmc,
  sampleCmcViews,
  type CmcOptions,
} from './tasks/contrastive/cmc.ts';
export {
  barlowTwins,
  createBarlowTwinsTask,
  barlowLambda,
  barlowTwinsLoss,
  type BarlowTwinsOptions,
} from './tasks/contrastive/barlowTwins.ts';
export {
  dim,
  dimInfonce,
  createDimTask,
  dimLoss,
  dimScores,
  dimAccuracy,
  type DimEstimator,
  type DimOptions,
} from './tasks/contrastive/dim.ts';
export { byol, createByolTask, type ByolOptions } from './tasks/contrastive/byol.ts';
export { colorization, colorizationSample, colorize } from './tasks/image/colorization.ts';
export { splitBrain, splitBrainSample } from './tasks/image/splitBrain.ts';
export { rgbToLab, labToRgb, imageToLab } from './pipeline/labColour.ts';
export { LabChannels } from './models/labChannels.ts';
export { supervised, sampleLabelled } from './tasks/taskRelated/supervised.ts';
export { labelImages, parseClassList, type ImageLabelOptions } from './recipes/imageLabels.ts';
export {
  featureSizeOf,
  type ItemKind,
  type PretextTask,
  type SamplerContext,
  type TaskFamily,
  type TaskParts,
  type TaskSetup,
  type TaskState,
} from './tasks/task.ts';
export type { Sample } from './pipeline/sample.ts';
export { TASKS, parseTaskList, taskReading, tasksReading, type TaskName } from './tasks/registry.ts';
export { orderVerification, sampleFrameOrder } from './tasks/temporal/orderVerification.ts';
export { timeContrastive, sampleTimeContrastive } from './tasks/temporal/timeContrastive.ts';
export { frameSimilarity, sampleFrameTriplets } from './tasks/temporal/frameSimilarity.ts';
export { createClipOrderTask, sampleClipOrder } from './tasks/temporal/clipOrder.ts';
export { createCpcTask, sampleSequences } from './tasks/temporal/cpc.ts';
export { trackingTask, sampleTrackedPatches } from './tasks/temporal/trackPatches.ts';
export { createMlmTask, mlmFrequencyBaseline } from './tasks/text/maskedLm.ts';
export { createNspTask } from './tasks/text/nextSentence.ts';
export { createTextCpcTask, textCpcFrequencyBaseline } from './tasks/text/textCpc.ts';
export { countTokens, nearestWords } from './tasks/text/word2vec.ts';
export { tokenizeSentences } from './text/tokenizedSentence.ts';
export { tokenizedSentences, type TokenizedSentencesOptions } from './text/tokenizedSentences.ts';
export {
  createDialogueOrderTask,
  DEFAULT_DIALOGUE_VARIANT,
  scoreDialogue,
  type DialogueVariant,
} from './tasks/dialogue/utteranceOrder.ts';
