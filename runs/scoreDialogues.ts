import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelIOError } from '../core/errors.ts';
import { loadModel } from '../models/modelIO.ts';
import { scoreDialogue, type DialogueScore, type DialogueScorer } from '../tasks/dialogue/utteranceOrder.ts';
import type { Dialogue } from '../text/dialogue.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import { readTextRunInfo } from './pretrainText.ts';
import { type OperatorFunction, filter, map } from 'rxjs';

/**
 * The dialogue scorer of a text run folder: its encoder, `heads/dialogue-order/`, tokenizer and the window it was
 * trained with. The caller disposes `encoder` and `head`.
 *
 * @throws ModelIOError when the run did not train dialogue-order or a file is missing.
 */
export async function loadDialogueScorer(dir: string): Promise<Required<DialogueScorer>> {
  if (!existsSync(join(dir, 'run.json')))
    throw new ModelIOError(dir, 'no run.json (give the --out folder of pretrain --dialogues)');
  const info = await readTextRunInfo(dir);
  const headDir = join(dir, 'heads', 'dialogue-order');
  if (!existsSync(join(headDir, 'model.json'))) {
    throw new ModelIOError(
      dir,
      `no heads/dialogue-order/: the run trained ${info.tasks.map((t) => t.name).join(', ')} (pretrain with --dialogues FILE --tasks dialogue-order)`,
    );
  }
  const head = await loadModel(headDir);
  // A head from before the pairwise comparison (a GRU over [turns, hidden]) would fail deep inside tfjs.
  const expected = [info.taskConfig.turns - 1, 8 * (info.encoder.hiddenSize ?? 64)];
  const shape = head.inputs[0]!.shape.slice(1);
  if (shape.join() !== expected.join()) {
    head.dispose();
    throw new ModelIOError(
      headDir,
      `head takes [${shape.join(', ')}], this version scores with [${expected.join(', ')}] (adjacent utterance pairs): retrain it with pretrain --dialogues`,
    );
  }
  const tokenizer = await loadTokenizer(join(dir, info.tokenizer));
  const encoder = await loadModel(join(dir, 'encoder'));
  return { encoder, head, tokenizer, maxLength: info.taskConfig.maxLength, turns: info.taskConfig.turns };
}

/** A dialogue's coherence score with where it came from. */
export interface ScoredDialogue extends DialogueScore {
  id: string;
  source: string;
}

/**
 * Scores each dialogue's coherence with a trained dialogue-order model (see `scoreDialogue`): an RxJS operator,
 * so a file of any length streams through. Dialogues without turns are dropped.
 *
 * @example
 * readDialogues('dialogues_validation.txt').pipe(scoreDialogues(await loadDialogueScorer('runs/d')));
 */
export function scoreDialogues(model: DialogueScorer): OperatorFunction<Dialogue, ScoredDialogue> {
  return (dialogues) =>
    dialogues.pipe(
      filter((d) => d.turns.length > 0),
      map((d) => ({ id: d.id, source: d.source, ...scoreDialogue(model, d) })),
    );
}
