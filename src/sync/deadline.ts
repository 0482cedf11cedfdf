import { DeadlineExceededError } from "../errors.js";

/**
 * One time budget for a whole invocation: the download, the lock wait and every registry share
 * it. It ends before the host would kill the invocation (the timer's functionTimeout, the 230 s
 * an HTTP response may take on Flex Consumption), so the run can stop on its own terms, report
 * `DeadlineExceeded` and flush telemetry while the host still lets it.
 */
export interface Deadline {
  /** Aborted when the budget is spent; pass it to every call that can wait. */
  readonly signal: AbortSignal;
  readonly budgetMs: number;
  /** The setting the budget comes from (`SYNC_DEADLINE_MS`, `SYNC_HTTP_DEADLINE_MS`). */
  readonly setting: string;
  remainingMs(): number;
  expired(): boolean;
  /** Throws `DeadlineExceededError` naming `stage` when the budget is spent. */
  check(stage: DeadlineStage, registry?: string): void;
  /** The typed error for `stage`, e.g. to replace the abort error of a call the signal stopped. */
  error(stage: DeadlineStage, registry?: string): DeadlineExceededError;
  /** Stops the timer (the invocation is over). */
  dispose(): void;
}

export type DeadlineStage = "download" | "lock" | "registry" | "not-started";

export function createDeadline(budgetMs: number, setting: string, now: () => number = Date.now): Deadline {
  const started = now();
  const controller = new AbortController();
  const timer = setTimeout(
    () => {
      controller.abort();
    },
    Math.max(0, budgetMs),
  );
  // A pending deadline must not keep a CLI process alive after the work is done.
  timer.unref();
  const remainingMs = (): number => Math.max(0, started + budgetMs - now());
  const expired = (): boolean => controller.signal.aborted || remainingMs() <= 0;
  const error = (stage: DeadlineStage, registry?: string): DeadlineExceededError =>
    new DeadlineExceededError(
      stage === "not-started"
        ? `Registry ${registry ?? "?"} was not synced: the invocation's ${budgetMs} ms budget (${setting}) was spent on the registries before it.`
        : `The invocation's ${budgetMs} ms budget (${setting}) ran out during the ${stage === "download" ? "service-tags download" : stage === "lock" ? "wait for the registry's lock" : "registry's sync"}${registry === undefined ? "" : ` of ${registry}`}; the run stopped before the host would end it.`,
      {
        details: { stage, budgetMs, setting, registry },
        remedy: `The next run continues where this one stopped; a write that was under way may still complete in Azure, and the ledger recorded its additions as pending before it started. If it keeps happening, sync fewer registries per invocation or raise ${setting} (it must stay below the host's limit).`,
      },
    );
  return {
    signal: controller.signal,
    budgetMs,
    setting,
    remainingMs,
    expired,
    check(stage, registry) {
      if (expired()) throw error(stage, registry);
    },
    error,
    dispose() {
      clearTimeout(timer);
    },
  };
}
