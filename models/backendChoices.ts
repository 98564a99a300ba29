// The backend choices alone, without TensorFlow.js: the CLI lists them in its options before it knows whether the
// command it runs needs tfjs at all.

/** A backend choice: `auto` walks the ladder from fastest to slowest; the others force one rung. */
export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/** The choices `selectBackend` accepts, in ladder order after `auto`. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
