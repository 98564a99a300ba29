import type { Command } from 'commander';
import { selectBackend, type BackendChoice, type BackendInfo } from '../models/backend.ts';

/** Selects the backend the user asked for with the global `--backend` (or TEMPO_BACKEND, or the ladder). */
export function useBackend(command: Command): Promise<BackendInfo> {
  const backend = command.optsWithGlobals().backend as BackendChoice | undefined;
  return selectBackend({ backend });
}

/** An AbortSignal that fires on SIGINT or SIGTERM, so a run can write its checkpoint and exit cleanly. */
export function stopSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (name: string) => () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${name}: finishing the step and writing a checkpoint (press again to quit at once)\n`);
    controller.abort();
  };
  process.once('SIGINT', stop('SIGINT'));
  process.once('SIGTERM', stop('SIGTERM'));
  return controller.signal;
}
