// The sample worker's entry: tsx's module hooks are per thread, so the worker registers them before loading the
// TypeScript that runs it (see sampleWorker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./sampleWorkerThread.ts');
