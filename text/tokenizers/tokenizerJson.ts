/**
 * The Hugging Face `tokenizer.json` format (tokenizers >= 0.10, `"version": "1.0"`), as far as this project reads
 * and writes it: the schema of `Tokenizer.save()` in the Rust crate and `tokenizer.save(path)` in Python. Fields
 * follow the crate's serde names exactly, so a file written here loads in Python and vice versa.
 */
export interface TokenizerJson {
  version: '1.0';
  truncation: TruncationJson | null;
  padding: PaddingJson | null;
  added_tokens: AddedTokenJson[];
  normalizer: NormalizerJson | null;
  pre_tokenizer: PreTokenizerJson | null;
  post_processor: PostProcessorJson | null;
  decoder: DecoderJson | null;
  model: WordPieceModelJson | WordLevelModelJson;
}

export interface TruncationJson {
  direction?: 'Left' | 'Right';
  max_length: number;
  strategy: 'LongestFirst' | 'OnlyFirst' | 'OnlySecond';
  stride: number;
}

export interface PaddingJson {
  /** `"BatchLongest"` or `{ "Fixed": n }`. */
  strategy: 'BatchLongest' | { Fixed: number };
  direction: 'Left' | 'Right';
  pad_to_multiple_of: number | null;
  pad_id: number;
  pad_type_id: number;
  pad_token: string;
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export type NormalizerJson =
  | {
      type: 'BertNormalizer';
      clean_text: boolean;
      handle_chinese_chars: boolean;
      strip_accents: boolean | null;
      lowercase: boolean;
    }
  | { type: 'Lowercase' | 'NFC' | 'NFD' | 'NFKC' | 'NFKD' | 'StripAccents' }
  | { type: 'Strip'; strip_left: boolean; strip_right: boolean }
  | { type: 'Sequence'; normalizers: NormalizerJson[] };

export type PreTokenizerJson =
  | { type: 'BertPreTokenizer' | 'Whitespace' | 'WhitespaceSplit' }
  | { type: 'Sequence'; pretokenizers: PreTokenizerJson[] };

/** One piece of a TemplateProcessing template: a special token or the sequence A / B. */
export type TemplatePieceJson =
  { SpecialToken: { id: string; type_id: number } } | { Sequence: { id: 'A' | 'B'; type_id: number } };

export type PostProcessorJson =
  | {
      type: 'TemplateProcessing';
      single: TemplatePieceJson[];
      pair: TemplatePieceJson[];
      special_tokens: Record<string, { id: string; ids: number[]; tokens: string[] }>;
    }
  | { type: 'BertProcessing'; sep: [string, number]; cls: [string, number] };

export type DecoderJson = { type: 'WordPiece'; prefix: string; cleanup: boolean };

export interface WordPieceModelJson {
  type: 'WordPiece';
  unk_token: string;
  continuing_subword_prefix: string;
  max_input_chars_per_word: number;
  vocab: Record<string, number>;
}

export interface WordLevelModelJson {
  type: 'WordLevel';
  vocab: Record<string, number>;
  unk_token: string;
}
