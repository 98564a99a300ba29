/** Metrics of one step. */
export interface StepMetrics {
  step: number;
  /** Weighted total loss. */
  loss: number;
  /** Per task: its loss and pretext metric (accuracy). */
  tasks: Record<string, { loss: number; accuracy: number }>;
  samplesPerSecond: number;
  elapsedSeconds: number;
}
