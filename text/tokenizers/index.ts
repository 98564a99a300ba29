export { SPECIAL_TOKENS, Tokenizer, type DecodeOptions, type EncodeOptions, type TokenizerParts } from './Tokenizer.ts';
export { WordPiece, type WordPieceOptions, type WordPieceModel } from './WordPiece.ts';
export { WordVocab, type WordVocabOptions } from './WordVocab.ts';
export { loadTokenizer, tokenizerFromJson } from './loadTokenizer.ts';
export { countWords, type TextSource } from './countWords.ts';
export type { TokenizerJson } from './tokenizerJson.ts';
