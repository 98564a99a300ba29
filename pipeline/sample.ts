/**
 * A labelled training sample made of plain typed arrays, never tensors: samples cross async boundaries and sit
 * in queues, and arrays need no disposal. The trainer turns a batch of them into tensors and disposes those.
 */
export interface Sample {
  /** One array per model input, each of the shape the task's `inputShapes` gives (without the batch axis). */
  readonly inputs: readonly Float32Array[];
  /** The label, of the shape `labelShape` gives. */
  readonly label: Float32Array;
  /** Where the sample came from (video path, corpus line), for error messages and the run summary. */
  readonly source?: string;
}
