import { Command, Option } from 'commander';
import { onInvalidOption } from './options.ts';
import { once } from 'node:events';
import { lastValueFrom, mergeMap, reduce } from 'rxjs';
import { scoreDialogues, type ScoredDialogue } from '../recipes/scoreDialogues.ts';
import { loadDialogueScorer } from '../recipes/scoreDialogues.ts';
import type { TextSkip } from '../text/sources.ts';
import { readDialogueItems } from '../text/sources.ts';
import { useBackend } from './backend.ts';

interface ScoreDialogueFlags {
  model: string;
  input: string[];
  format: 'auto' | 'dailydialog' | 'jsonl' | 'text';
  onInvalid: 'skip' | 'fail';
  json?: boolean;
}

/**
 * `tempo-ssl score-dialogue`: how coherent each dialogue's turn order is, by a trained dialogue-order model, in the
 * variant the run trained (`dialogueVariant` in its run.json; `utterances` for runs from before it was recorded).
 */
export function scoreDialogueCommand(): Command {
  return new Command('score-dialogue')
    .description(
      'score the coherence of dialogues with a model from pretrain --dialogues --tasks dialogue-order, in the variant it trained (run.json): one line per dialogue; null and the reason for a dialogue shorter than a window (3 turns, or 6 for --dialogue-variant pairs)',
    )
    .requiredOption('--model <DIR>', 'a pretrain --out folder that trained dialogue-order')
    .requiredOption(
      '--input <inputs...>',
      'dialogue files (DailyDialog, JSONL {"id", "turns"}, or text: one turn a line, blank line between dialogues), or -',
    )
    .addOption(
      new Option('--format <name>', 'dialogue file format')
        .choices(['auto', 'dailydialog', 'jsonl', 'text'])
        .default('auto'),
    )
    .addOption(onInvalidOption('bad records'))
    .option('--json', 'one JSON line per dialogue: {"id", "source", "score", "turns": [per-turn scores]}')
    .action(async (flags: ScoreDialogueFlags, command: Command) => {
      await useBackend(command);
      const model = await loadDialogueScorer(flags.model);
      let skipped = 0;
      const onSkip = (_: TextSkip): void => void skipped++;
      const out = process.stdout;
      // A reader that stops early (`| head`) is not an error: stop scoring quietly.
      out.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EPIPE') process.exit(0);
        throw error;
      });
      const count = await lastValueFrom(
        readDialogueItems(flags.input, { dialogueFormat: flags.format, onInvalid: flags.onInvalid, onSkip }).pipe(
          scoreDialogues(model),
          mergeMap(async (s) => {
            const line = formatScore(s, flags.json === true);
            if (!out.write(line + '\n')) await once(out, 'drain');
          }, 1),
          reduce((n) => n + 1, 0),
        ),
        { defaultValue: 0 },
      );
      console.error(`scored ${count} dialogue(s)${skipped > 0 ? `; skipped ${skipped} bad record(s)` : ''}`);
      model.encoder.dispose();
      model.head.dispose();
    });
}

/** One output line: JSON, or `id<TAB>score<TAB>per-turn scores`; a dialogue without a window shows null and why. */
function formatScore(s: ScoredDialogue, json: boolean): string {
  if (s.score === null) {
    return json
      ? JSON.stringify({ id: s.id, source: s.source, score: null, turns: s.turns, reason: s.reason })
      : `${s.id}\tnull\t(${s.reason})`;
  }
  return json
    ? JSON.stringify({ id: s.id, source: s.source, score: round(s.score), turns: s.turns.map(round) })
    : `${s.id}\t${s.score.toFixed(4)}\t${s.turns.map((t) => t.toFixed(3)).join(' ')}`;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
