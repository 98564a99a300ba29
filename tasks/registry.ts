import type { Frame } from '../pipeline/frame.ts';
import type { Dialogue } from '../text/dialogue.ts';
import type { TokenizedSentence } from '../text/tokenizedSentence.ts';
import type { ItemKind, PretextTask } from './task.ts';
import { OptionError } from '../core/errors.ts';
import { orderVerification } from './temporal/orderVerification.ts';
import { frameSimilarity } from './temporal/frameSimilarity.ts';
import { timeContrastive } from './temporal/timeContrastive.ts';
import { clipOrder } from './temporal/clipOrder.ts';
import { cpc } from './temporal/cpc.ts';
import { trackPatches } from './temporal/trackPatches.ts';
import { skipgram } from './text/skipgram.ts';
import { cbow } from './text/cbow.ts';
import { mlm } from './text/maskedLm.ts';
import { nsp } from './text/nextSentence.ts';
import { textCpc } from './text/textCpc.ts';
import { dialogueOrder } from './dialogue/utteranceOrder.ts';
import { rotation } from './image/rotation.ts';
import { autoencoder } from './image/autoencoder.ts';
import { inpainting } from './image/inpainting.ts';
import { relativePosition } from './image/relativePosition.ts';
import { jigsaw } from './image/jigsaw.ts';
import { simclr } from './contrastive/simclr.ts';
import { moco } from './contrastive/moco.ts';
import { simclrVideo } from './contrastive/simclr.ts';
import { mocoVideo } from './contrastive/moco.ts';
import { instanceDisc } from './contrastive/instanceDisc.ts';
import { cmc, cmcViews } from './contrastive/cmc.ts';
import { barlowTwins } from './contrastive/barlowTwins.ts';
import { dim, dimInfonce } from './contrastive/dim.ts';
import { byol } from './contrastive/byol.ts';
import { colorization } from './image/colorization.ts';
import { splitBrain } from './image/splitBrain.ts';
import { supervised } from './taskRelated/supervised.ts';

/**
 * Every pretext task by its command-line name. A plain map, no registration by import side effect:
 * adding a task is adding a line here.
 */
export const TASKS = {
  order: orderVerification,
  'frame-sim': frameSimilarity,
  tcn: timeContrastive,
  vcop: clipOrder,
  cpc,
  tracking: trackPatches,
  skipgram,
  cbow,
  mlm,
  nsp,
  'text-cpc': textCpc,
  'dialogue-order': dialogueOrder,
  rotation,
  autoencoder,
  inpainting,
  'relative-position': relativePosition,
  jigsaw,
  simclr,
  moco,
  'simclr-video': simclrVideo,
  'moco-video': mocoVideo,
  'instance-disc': instanceDisc,
  cmc,
  'cmc-views': cmcViews,
  'barlow-twins': barlowTwins,
  dim,
  'dim-infonce': dimInfonce,
  byol,
  colorization,
  'split-brain': splitBrain,
  supervised,
} satisfies Record<string, PretextTask<never>>;

export type TaskName = keyof typeof TASKS;

/** A task picked on the command line with its loss weight. */
export interface TaskChoice {
  name: TaskName;
  weight: number;
}

/** What each kind of item is, as samplers receive it. */
export interface ItemOf {
  frames: Frame;
  clips: readonly Frame[];
  views: readonly Frame[];
  images: Frame;
  sentences: TokenizedSentence;
  dialogues: Dialogue;
}

/** The registry names of the tasks whose samplers read one of `kinds`, in registry order. */
export function tasksReading(...kinds: ItemKind[]): TaskName[] {
  return (Object.keys(TASKS) as TaskName[]).filter((name) => kinds.includes(TASKS[name].reads));
}

/**
 * The registry task `name`, typed for what it reads: the one place a run turns a name into a task it can feed.
 *
 * @throws OptionError naming the task and those that read `kind` when it reads something else.
 */
export function taskReading<K extends ItemKind>(name: TaskName, kind: K): PretextTask<ItemOf[K]> {
  const task: PretextTask<never> = TASKS[name];
  if (task.reads !== kind) {
    throw new OptionError('--tasks', name, `a task that reads ${kind}: ${tasksReading(kind).join(', ')}`);
  }
  // Checked just above: the task's sampler reads this kind of item.
  return task as PretextTask<ItemOf[K]>;
}

/**
 * Parses a `--tasks` list such as `order` or `order,cpc:0.5` (name, optional `:weight`, default 1), keeping to
 * `allowed` (default: every task) so that, say, a text task given to a video run is refused up front.
 *
 * @throws OptionError naming the unknown task and the known ones, or a bad weight.
 */
export function parseTaskList(
  value: string,
  allowed: readonly TaskName[] = Object.keys(TASKS) as TaskName[],
): TaskChoice[] {
  return value.split(',').map((part) => {
    const [name = '', weightText] = part.trim().split(':');
    if (!allowed.includes(name as TaskName)) {
      throw new OptionError('--tasks', name, `one of ${allowed.join(', ')} (comma-separated, each optionally :weight)`);
    }
    const weight = weightText === undefined ? 1 : Number(weightText);
    if (!(weight > 0)) throw new OptionError('--tasks', part, 'a positive weight after the colon, e.g. order:0.5');
    return { name: name as TaskName, weight };
  });
}
