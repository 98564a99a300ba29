export {
  readLines,
  emptyCorpusStats,
  type Line,
  type CorpusStats,
  type ReadLinesOptions,
  type SkippedInput,
} from './readCorpus.ts';
export { resolveCorpusInputs, isTextLike, TEXT_EXTENSIONS } from './resolveCorpusInputs.ts';
export { LineSplitter, utf8Boundary, type LongLinePolicy } from './splitLines.ts';
export {
  segmentSentences,
  segmentWords,
  splitSentences,
  splitDocuments,
  splitParagraphs,
  ENGLISH_ABBREVIATIONS,
  type SegmentOptions,
  type TextBlock,
  type Paragraph,
} from './segment.ts';
export {
  readDialogues,
  parseDialogues,
  detectFormat,
  parseDailyDialogLine,
  parseJsonlDialogue,
  type Dialogue,
  type DialogueFormat,
  type DialogueStats,
  type ParseDialoguesOptions,
  type ReadDialoguesOptions,
} from './dialogue.ts';
export * from './tokenizers/index.ts';
