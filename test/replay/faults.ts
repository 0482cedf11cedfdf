import type { ArmOp, Fault } from "../support/arm-emulator.js";
import { LATEST_ALIAS_PATH, type ServiceTagsFault } from "../support/servicetags-server.js";

/**
 * Seeded, reproducible fault choices for the faulty replay. Every week draws the same number of
 * random values whatever happens, so a seed always gives the same faults in the same weeks.
 */

export type ArmFaultKind =
  | "arm-429"
  | "arm-500"
  | "arm-503"
  | "arm-reset"
  | "arm-lro-failed"
  | "arm-lro-stuck"
  | "arm-hang"
  | "arm-500-after-write";
export type SourceFaultKind = "source-500" | "source-403" | "source-truncated" | "source-html" | "source-reset";
export type FaultKind = ArmFaultKind | SourceFaultKind;

export type PlannedFault =
  | {
      readonly kind: ArmFaultKind;
      readonly target: "arm";
      readonly op: ArmOp;
      readonly times: number;
      readonly fault: Fault;
    }
  | {
      readonly kind: SourceFaultKind;
      readonly target: "source";
      readonly paths: readonly string[];
      readonly where: string;
      readonly times: number;
      readonly fault: ServiceTagsFault;
    };

export interface FaultPolicy {
  /** Chance that a week without an expected write gets one faulty run. */
  readonly quietShare: number;
  /**
   * A week with an expected write (the history has few: 3 to 14 per configuration) gets up to
   * `writeAttempts` faulty runs, each with this chance, so the write path meets many faults.
   */
  readonly writeShare: number;
  readonly writeAttempts: number;
}

const ARM_KINDS: readonly ArmFaultKind[] = [
  "arm-429",
  "arm-500",
  "arm-503",
  "arm-reset",
  "arm-hang",
  "arm-lro-failed",
  "arm-lro-stuck",
  "arm-500-after-write",
];
/** Kinds that only make sense for a run that writes. */
const WRITE_KINDS: ReadonlySet<ArmFaultKind> = new Set(["arm-lro-failed", "arm-lro-stuck", "arm-500-after-write"]);
const SOURCE_KINDS: readonly SourceFaultKind[] = [
  "source-500",
  "source-403",
  "source-truncated",
  "source-html",
  "source-reset",
];
const DETAILS_PAGE_PATH = "/en-us/download/details.aspx";

function pick<T>(items: readonly T[], r: number): T {
  const item = items[Math.min(items.length - 1, Math.floor(r * items.length))];
  if (item === undefined) throw new Error("pick from an empty list");
  return item;
}

export interface WeekToFault {
  readonly fileName: string;
  /** The selection differs from the last converged one: the run will PATCH (only then can write-path faults strike). */
  readonly writeExpected: boolean;
}

/**
 * The faulty runs of one week, in order (often none). A week that writes gets a write-path fault
 * first (PATCH, polling, the operation's outcome, the reads after the write), then any faults; the
 * replay skips the rest once a run has converged. The number of random draws depends only on
 * `writeExpected`, which the history alone decides, so a seed always gives the same faults.
 */
export function planWeekFaults(random: () => number, policy: FaultPolicy, week: WeekToFault): PlannedFault[] {
  const stages: readonly Stage[] = week.writeExpected
    ? ["write-path", ...new Array<Stage>(Math.max(0, policy.writeAttempts - 1)).fill("any")]
    : ["quiet"];
  const faults: PlannedFault[] = [];
  for (const stage of stages) {
    const fault = planFault(
      [random(), random(), random(), random(), random()],
      stage === "quiet" ? policy.quietShare : policy.writeShare,
      stage,
      week,
    );
    if (fault !== undefined) faults.push(fault);
  }
  return faults;
}

type Stage = "quiet" | "write-path" | "any";

function planFault(draws: readonly number[], share: number, stage: Stage, week: WeekToFault): PlannedFault | undefined {
  const [inject = 1, family = 0, kind = 0, where = 0, times = 0] = draws;
  if (inject >= share) return undefined;
  // Times 1..3: the SDK (2 retries in the test tuning) and the source chain (1 retry) absorb the
  // smaller counts, the larger ones outlast the retries and fail the run.
  const count = 1 + Math.floor(times * 3);
  if (stage === "write-path" || family < 0.5) {
    const armKind = pick(stage === "quiet" ? ARM_KINDS.filter((k) => !WRITE_KINDS.has(k)) : ARM_KINDS, kind);
    if (armKind === "arm-500-after-write") {
      // ARM applies the update, then every read fails (3 = all tries): the run ends without its
      // verification, its ledger update and its audit entry; the next run must pick up from there.
      const fault: Fault = {
        kind: "concurrent-writer",
        when: "after",
        write: (emulator, registryId) => {
          emulator.injectFault({ op: "get", registryId, times: 3, fault: { kind: "status", status: 500 } });
        },
      };
      return { kind: armKind, target: "arm", op: "patch", times: 1, fault };
    }
    if (armKind === "arm-lro-failed" || armKind === "arm-lro-stuck") {
      const fault: Fault =
        armKind === "arm-lro-failed"
          ? { kind: "lro-failed", code: "InternalServerError", message: "Injected: the update failed." }
          : { kind: "lro-stuck" };
      return { kind: armKind, target: "arm", op: "patch", times: 1, fault };
    }
    const ops: readonly ArmOp[] =
      stage === "quiet"
        ? ["get", "usages"]
        : stage === "write-path"
          ? ["patch", "poll"]
          : ["get", "usages", "patch", "poll"];
    const op = pick(ops, where);
    switch (armKind) {
      case "arm-429":
        return {
          kind: armKind,
          target: "arm",
          op,
          times: count,
          fault: { kind: "status", status: 429, retryAfterSeconds: 0 },
        };
      case "arm-500":
        return { kind: armKind, target: "arm", op, times: count, fault: { kind: "status", status: 500 } };
      case "arm-503":
        return {
          kind: armKind,
          target: "arm",
          op,
          times: count,
          fault: { kind: "status", status: 503, retryAfterSeconds: 0 },
        };
      case "arm-reset":
        return { kind: armKind, target: "arm", op, times: count, fault: { kind: "reset" } };
      default:
        // A hang is timed out by the request timeout and not retried: once is enough.
        return { kind: armKind, target: "arm", op, times: 1, fault: { kind: "hang" } };
    }
  }
  const sourceKind = pick(SOURCE_KINDS, kind);
  const fault: ServiceTagsFault =
    sourceKind === "source-500"
      ? { kind: "status", status: 500 }
      : sourceKind === "source-403"
        ? { kind: "status", status: 403 }
        : sourceKind === "source-truncated"
          ? { kind: "truncated" }
          : sourceKind === "source-html"
            ? { kind: "html" }
            : { kind: "reset" };
  const file = `/download/${week.fileName}`;
  // The details page or the file alone: the chain falls back to the _Latest alias. With the alias
  // too, the whole chain fails and the run must leave the registry alone.
  const targets: readonly { where: string; paths: string[] }[] = [
    { where: "details page", paths: [DETAILS_PAGE_PATH] },
    { where: "file", paths: [file] },
    { where: "details page + alias", paths: [DETAILS_PAGE_PATH, LATEST_ALIAS_PATH] },
    { where: "file + alias", paths: [file, LATEST_ALIAS_PATH] },
  ];
  const target = pick(targets, where);
  return { kind: sourceKind, target: "source", paths: target.paths, where: target.where, times: count, fault };
}
