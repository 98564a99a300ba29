/** One task's figures of one step. */
export interface TaskStepMetrics {
  loss: number;
  accuracy: number;
  [monitor: string]: number;
}

/** Metrics of one step. */
export interface StepMetrics {
  step: number;
  /** Weighted total loss. */
  loss: number;
  /** Per task: its loss, pretext metric (accuracy) and monitors (`PretextTask.monitors`, e.g. `embeddingStd`). */
  tasks: Record<string, TaskStepMetrics>;
  samplesPerSecond: number;
  elapsedSeconds: number;
  /** The learning rate this step took (the schedule's value). */
  lr: number;
  /** Weighted kNN accuracy on the monitor's held-out set, on the steps the monitor ran (`--monitor`). */
  knnAccuracy?: number;
}
