import { Command, Option } from 'commander';
import { TempoError } from '../core/errors.ts';
import { BACKEND_CHOICES } from '../models/backendChoices.ts';

/**
 * Each command's module, loaded only when that command runs: a command's module imports what it runs (tfjs, vega,
 * the NATS client, Arrow...), and loading all of them took about 1.5 s of every invocation, `--help` included.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  frames: async () => (await import('./frames.ts')).framesCommand(),
  pretrain: async () => (await import('./pretrain.ts')).pretrainCommand(),
  probe: async () => (await import('./probe.ts')).probeCommand(),
  evaluate: async () => (await import('./evaluate.ts')).evaluateCommand(),
  demo: async () => (await import('./demo.ts')).demoCommand(),
  embed: async () => (await import('./embed.ts')).embedCommand(),
  'score-dialogue': async () => (await import('./scoreDialogue.ts')).scoreDialogueCommand(),
  serve: async () => (await import('./serve.ts')).serveCommand(),
  'process-corpus': async () => (await import('./processCorpus.ts')).processCorpusCommand(),
  classify: async () => (await import('./classify.ts')).classifyCommand(),
  'few-shot': async () => (await import('./fewShot.ts')).fewShotCommand(),
  report: async () => (await import('./report.ts')).reportCommand(),
  export: async () => (await import('./export.ts')).exportCommand(),
  worker: async () => (await import('./worker.ts')).workerCommand(),
  produce: async () => (await import('./produce.ts')).produceCommand(),
};

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

// The command asked for is loaded alone; with none (or an unknown one) all are, for the help and the suggestions.
const asked = commandAsked(process.argv.slice(2));
for (const name of asked ? [asked] : Object.keys(COMMANDS)) program.addCommand(await COMMANDS[name]!());

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

/** The command named on the command line, skipping the global options (and `--backend`'s value) before it. */
function commandAsked(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--backend') i++;
    else if (!arg.startsWith('-')) return arg in COMMANDS ? arg : undefined;
  }
  return undefined;
}
