import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelIOError } from '../core/errors.ts';
import { loadModel } from '../models/modelIO.ts';
import {
  createDialogueOrderTask,
  combineWindowScores,
  dialogueWindows,
  scoreDialogue,
  scoreWindows,
  type DialogueScore,
  type DialogueScorer,
  type UnscoredDialogue,
} from '../tasks/dialogue/utteranceOrder.ts';
import type { Dialogue } from '../text/dialogue.ts';
import type { PretextTask } from '../tasks/task.ts';
import { loadTokenizer } from '../text/tokenizers/loadTokenizer.ts';
import { readTextRunInfo } from './pretrainText.ts';
import { type OperatorFunction, filter, map } from 'rxjs';

/**
 * The dialogue scorer of a text run folder: its encoder, `heads/dialogue-order/`, tokenizer, and the variant and
 * window it was trained with (`run.json`; a run from before the variants were recorded trained `utterances`).
 * The caller disposes `encoder` and `head`.
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
  const variant = info.dialogueVariant ?? 'utterances';
  const head = await loadModel(headDir);
  // A head of another shape (the GRU head of an old version, or a run.json edited by hand) would fail deep in tfjs.
  const hidden = 8 * (info.encoder.hiddenSize ?? 64);
  const expected = variant === 'pairs' ? [[3, 3, hidden]] : [[info.taskConfig.turns - 1, hidden]];
  const shapes = head.inputs.map((input) => input.shape.slice(1));
  if (JSON.stringify(shapes) !== JSON.stringify(expected)) {
    head.dispose();
    throw new ModelIOError(
      headDir,
      `head takes ${JSON.stringify(shapes)}, the ${variant} variant scores with ${JSON.stringify(expected)}: retrain it with pretrain --dialogues`,
    );
  }
  const tokenizer = await loadTokenizer(join(dir, info.tokenizer));
  const encoder = await loadModel(join(dir, 'encoder'));
  return { encoder, head, tokenizer, variant, maxLength: info.taskConfig.maxLength, turns: info.taskConfig.turns };
}

/** The dialogue-order task as a scorer's model was trained with it (to sample held-out windows, say). */
export function dialogueOrderTaskOf(scorer: Required<DialogueScorer>): PretextTask<Dialogue> {
  const { variant, tokenizer, maxLength, turns } = scorer;
  return createDialogueOrderTask({ variant, tokenizer, maxLength, turns });
}

/** A dialogue's coherence score (or `null` and the reason, for a dialogue without a window) with where it came from. */
export type ScoredDialogue = (DialogueScore | UnscoredDialogue) & { id: string; source: string };

/**
 * Scores each dialogue's coherence with a trained dialogue-order model (see `scoreDialogue`): an RxJS operator,
 * so a file of any length streams through. Dialogues without turns are dropped; those with too few turns for a
 * window are scored `null` with the reason.
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

/** Options of {@link scoreDialogueInSlices}. */
export interface SliceOptions {
  /**
   * Windows scored in one encoder pass before the event loop gets a turn. Default 1 (each is scored in all 3! = 6
   * orders of its turns, about 60 ms on wasm).
   */
  windowsPerSlice?: number;
  /** Called after each slice with the windows scored so far and in all (tests and progress). */
  onSlice?: (done: number, total: number) => void;
  /** Stops scoring between slices (a client that went away, a server shutting down). */
  signal?: AbortSignal;
}

/**
 * Scores a dialogue like `scoreDialogue`, in slices of `windowsPerSlice` windows with a `setImmediate` between
 * them, so that a server scoring a long dialogue keeps answering other requests, and memory holds one slice's
 * tensors at a time instead of every window's.
 *
 * @throws the signal's reason when it is aborted between slices.
 */
export async function scoreDialogueInSlices(
  model: DialogueScorer,
  dialogue: Dialogue,
  options: SliceOptions = {},
): Promise<DialogueScore | UnscoredDialogue> {
  const prepared = dialogueWindows(model, dialogue);
  if ('reason' in prepared) return prepared;
  const size = options.windowsPerSlice ?? 1;
  const total = prepared.windows.length;
  const probabilities = new Float32Array(total);
  for (let from = 0; from < total; from += size) {
    options.signal?.throwIfAborted();
    probabilities.set(scoreWindows(model, prepared, from, Math.min(from + size, total)), from);
    options.onSlice?.(Math.min(from + size, total), total);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return combineWindowScores(prepared, probabilities);
}
