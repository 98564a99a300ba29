import type { PretextTask } from './task.ts';
import { orderVerification } from './temporal/orderVerification.ts';

/**
 * Every pretext task by its command-line name. A plain map, no registration by import side effect:
 * adding a task is adding a line here.
 */
export const TASKS = {
  order: orderVerification,
} satisfies Record<string, PretextTask<never>>;

export type TaskName = keyof typeof TASKS;
