import { DataFormatError } from '../../core/errors.ts';
import { unsupported } from './normalize.ts';
import type { PostProcessorJson, TemplatePieceJson } from './tokenizerJson.ts';

/** The TemplateProcessing that BERT uses: `[CLS] $A [SEP]` and `[CLS] $A [SEP] $B:1 [SEP]:1`. */
export function bertTemplate(cls: [string, number], sep: [string, number]): PostProcessorJson {
  const special = (id: string, typeId: number): TemplatePieceJson => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number): TemplatePieceJson => ({ Sequence: { id, type_id: typeId } });
  return {
    type: 'TemplateProcessing',
    single: [special(cls[0], 0), seq('A', 0), special(sep[0], 0)],
    pair: [special(cls[0], 0), seq('A', 0), special(sep[0], 0), seq('B', 1), special(sep[0], 1)],
    special_tokens: {
      [cls[0]]: { id: cls[0], ids: [cls[1]], tokens: [cls[0]] },
      [sep[0]]: { id: sep[0], ids: [sep[1]], tokens: [sep[0]] },
    },
  };
}

type Piece = { ids: number[] } | { seq: 'A' | 'B' };

/** Adds special tokens around encoded sequences as a tokenizer.json `post_processor` says. */
export class PostProcessor {
  readonly #single: Piece[];
  readonly #pair: Piece[];

  constructor(json: PostProcessorJson | null, idOf: (token: string) => number | undefined, source: string) {
    if (json === null) {
      this.#single = [{ seq: 'A' }];
      this.#pair = [{ seq: 'A' }, { seq: 'B' }];
    } else if (json.type === 'BertProcessing') {
      const [cls, sep] = [[json.cls[1]], [json.sep[1]]];
      this.#single = [{ ids: cls }, { seq: 'A' }, { ids: sep }];
      this.#pair = [{ ids: cls }, { seq: 'A' }, { ids: sep }, { seq: 'B' }, { ids: sep }];
    } else if (json.type === 'TemplateProcessing') {
      const resolve = (piece: TemplatePieceJson): Piece => {
        if ('Sequence' in piece) return { seq: piece.Sequence.id };
        const name = piece.SpecialToken.id;
        const ids = json.special_tokens[name]?.ids ?? [idOf(name)];
        if (ids.some((id) => id === undefined)) {
          throw new DataFormatError(
            source,
            `post_processor template names special token ${JSON.stringify(name)}, which is not in special_tokens or the vocabulary (add it)`,
          );
        }
        return { ids: ids as number[] };
      };
      this.#single = json.single.map(resolve);
      this.#pair = json.pair.map(resolve);
    } else {
      throw unsupported(source, 'post_processor', json);
    }
  }

  /** How many ids the template adds to a single sequence or a pair. */
  added(pair: boolean): number {
    return (pair ? this.#pair : this.#single).reduce((n, p) => n + ('ids' in p ? p.ids.length : 0), 0);
  }

  apply(a: number[], b?: number[]): number[] {
    const out: number[] = [];
    for (const piece of b ? this.#pair : this.#single) {
      if ('ids' in piece) out.push(...piece.ids);
      else out.push(...(piece.seq === 'A' ? a : (b ?? [])));
    }
    return out;
  }
}
