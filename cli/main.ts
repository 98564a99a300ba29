import { Command, Option } from 'commander';
import { TempoError } from '../core/errors.ts';
import { BACKEND_CHOICES } from '../models/backend.ts';
import { demoCommand } from './demo.ts';
import { embedCommand } from './embed.ts';
import { evaluateCommand } from './evaluate.ts';
import { framesCommand } from './frames.ts';
import { pretrainCommand } from './pretrain.ts';
import { probeCommand } from './probe.ts';
import { processCorpusCommand } from './processCorpus.ts';
import { scoreDialogueCommand } from './scoreDialogue.ts';
import { serveCommand } from './serve.ts';
import { classifyCommand } from './classify.ts';
import { fewShotCommand } from './fewShot.ts';
import { reportCommand } from './report.ts';
import { exportCommand } from './export.ts';
import { workerCommand } from './worker.ts';
import { produceCommand } from './produce.ts';

const program = new Command('tempo-ssl')
  .description('Self-supervised training signal from video and text: decode, sample pretext tasks, pretrain, evaluate.')
  .version('0.1.0')
  .option('--verbose', 'print stack traces of errors')
  .addOption(
    new Option(
      '--backend <name>',
      'TensorFlow.js backend (default: env TEMPO_BACKEND, else the fastest that loads)',
    ).choices(BACKEND_CHOICES),
  )
  .showHelpAfterError('(run with --help for usage)');

program.addCommand(framesCommand());
program.addCommand(pretrainCommand());
program.addCommand(probeCommand());
program.addCommand(evaluateCommand());
program.addCommand(demoCommand());
program.addCommand(embedCommand());
program.addCommand(scoreDialogueCommand());
program.addCommand(serveCommand());
program.addCommand(processCorpusCommand());
program.addCommand(classifyCommand());
program.addCommand(fewShotCommand());
program.addCommand(reportCommand());
program.addCommand(exportCommand());
program.addCommand(workerCommand());
program.addCommand(produceCommand());

// An error thrown outside the command's promise (a stream's 'error' event, a timer) is reported the same way,
// as one line: Node's own report prints the throwing line of source, which for tfjs is 39 KB of minified code.
const fatal = (error: unknown): void => {
  report(error);
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

try {
  await program.parseAsync();
} catch (error) {
  report(error);
  process.exitCode = 1;
}

/** One line naming the input and the fix; the stack only with --verbose. */
function report(error: unknown): void {
  const verbose = program.opts().verbose === true;
  if (verbose) {
    console.error(error);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  const known = error instanceof TempoError;
  // One line: ffmpeg's own words (on the following lines of a VideoError) are folded in, not dropped.
  const oneLine = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' | ');
  console.error(`tempo-ssl: ${oneLine}${known ? '' : ' (run with --verbose for details)'}`);
}
