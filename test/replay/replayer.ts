import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Runtime, RuntimeOptions } from "../../src/app/runtime.js";
import { AllowlistSyncError } from "../../src/errors.js";
import { formatPrefix, parsePrefix } from "../../src/prefixes/ipv4.js";
import { mergePrefixes } from "../../src/prefixes/merge.js";
import { guardNameOf, runInvocation, type TargetOutcome } from "../../src/sync/invocation.js";
import { FAST_TUNING, type Harness } from "../support/harness.js";
import { LATEST_ALIAS_PATH, renderDetailsPage } from "../support/servicetags-server.js";
import type { ReplayConfiguration } from "./configurations.js";
import { planWeekFaults, type FaultPolicy, type PlannedFault } from "./faults.js";
import { publicationText, regionalIpv4, type Publication } from "./history.js";
import { emptyFigures } from "./figures.js";
import { checkFailedAttempt, checkWeek } from "./invariants.js";
import { seededRandom } from "../support/random.js";

/**
 * Replays the weekly publications against one emulated registry, week after week, through the
 * production composition root: each file is published on the loopback Download Center (the real
 * details page → download path), then `runInvocation` runs with the real SDK over HTTPS to the ARM
 * emulator and the real ledger store. After every week the invariants are checked from the outside.
 */

export type LedgerKind = "blob" | "file";

export interface FaultOptions {
  readonly seed: number;
  readonly policy: FaultPolicy;
}

export interface ReplayOptions {
  /**
   * Shared by the replays of a test file: @azure/identity caches managed-identity tokens per
   * process, so a second identity endpoint's emulator would refuse the first one's cached token.
   */
  readonly harness: Harness;
  readonly configuration: ReplayConfiguration;
  readonly publications: readonly Publication[];
  readonly ledger: LedgerKind;
  /** Inject seeded faults into ARM and source calls (the faulty replay). */
  readonly faults?: FaultOptions;
  /** The row's name in the figures (default: the configuration's). */
  readonly label?: string;
  /** Per week, the registry's rules at the end of a reference replay: the end states must match. */
  readonly reference?: readonly (readonly string[])[];
}

export interface ReplayFigures {
  readonly configuration: string;
  readonly mode: "clean" | "faulty";
  weeks: number;
  runs: number;
  /** PATCHes the emulator applied. */
  writes: number;
  /** Weeks whose selection equalled the last converged one: they must not write. */
  unchangedWeeks: number;
  /** Weeks that ended in sync (the last run applied or found nothing to change). */
  convergedWeeks: number;
  guardTrips: Record<string, number>;
  forcedReruns: number;
  faultsInjected: Record<string, number>;
  /** Faults that met at least one request (a PATCH fault in a week without a write never does). */
  faultsStruck: number;
  /** Faulty runs that failed, by error code. */
  failedRuns: Record<string, number>;
  /** Faulty runs that failed after the registry had been changed (converged state, ledger behind). */
  failedAfterWrite: number;
  /** Weeks with a fault whose clean re-run converged. */
  recoveredWeeks: number;
  /** Weeks that needed aggregation: fewer service rules than merged published prefixes. */
  aggregatedWeeks: number;
  maxRules: number;
  /** Successful runs that got the file from the _Latest alias after the details page path failed. */
  aliasFallbacks: number;
  /** Faulty runs served by the last-good copy (an earlier week's file) because every live source failed. */
  lastGoodFallbacks: number;
  auditEntries: number;
  appliedRuns: number;
  violations: string[];
  /** One line per week with a fault, a guard or a forced run: the trail to read when a violation shows up. */
  events: string[];
  durationMs: number;
}

export interface ReplayResult {
  readonly figures: ReplayFigures;
  /** The registry's rules at the end of each week. */
  readonly states: readonly (readonly string[])[];
}

/**
 * Short timeouts for the runs that meet a fault, so hangs and stuck operations end quickly (a
 * loopback request takes a few ms; a spurious timeout only fails that faulty run, which the clean
 * run after it must repair like any other failure). The clean runs keep FAST_TUNING's 2 s.
 */
const FAULTY_TUNING: NonNullable<RuntimeOptions["tuning"]> = {
  registry: { ...FAST_TUNING.registry, requestTimeoutMs: 300 },
  serviceTags: FAST_TUNING.serviceTags,
};

const ALIAS_FILE_NAME = LATEST_ALIAS_PATH.slice(LATEST_ALIAS_PATH.lastIndexOf("/") + 1);

type RunClass =
  | { readonly kind: "applied" | "unchanged"; readonly fileName: string; readonly sourceKind: string }
  | { readonly kind: "guard"; readonly guard: string }
  | { readonly kind: "failed"; readonly code: string; readonly message: string };

export async function replayHistory(options: ReplayOptions): Promise<ReplayResult> {
  const started = Date.now();
  const { configuration, publications } = options;
  const mode = options.faults === undefined ? "clean" : "faulty";
  const figures = emptyFigures(options.label ?? configuration.name, mode);
  const states: string[][] = [];
  const { harness } = options;
  const ledgerDir = options.ledger === "file" ? mkdtempSync(join(tmpdir(), "acr-replay-")) : undefined;
  try {
    const registryId = harness.addRegistry({
      name: `replay${configuration.name}${mode}${randomBytes(3).toString("hex")}`,
      location: configuration.location,
      ipRules: [...configuration.peopleRules],
      ruleLimit: configuration.ruleLimit,
    });
    const appSettings = {
      TARGET_REGISTRIES: registryId,
      ...(configuration.regions === undefined ? {} : { SYNC_REGIONS: configuration.regions.join(",") }),
      ...configuration.settings,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: `replay-${configuration.name}-${mode}-${randomBytes(4).toString("hex")}`,
    };
    const ledger =
      ledgerDir === undefined ? undefined : ({ kind: "file", path: join(ledgerDir, "ledger.json") } as const);
    const clean = harness.runtime(appSettings, { ledger, tuning: FAST_TUNING });
    const faulty = harness.runtime(
      { ...appSettings, SYNC_OPERATION_TIMEOUT_MS: "1000" },
      { ledger, tuning: FAULTY_TUNING },
    );
    const random = seededRandom(options.faults?.seed ?? 0);
    const regions = configuration.regions ?? [configuration.location];

    const rules = (): string[] => [...harness.arm.registry(registryId).ipRules];
    const patchCount = (): number =>
      harness.arm.requests.filter(
        (r) => r.method === "PATCH" && r.registryId?.toLowerCase() === registryId.toLowerCase(),
      ).length;

    const runOnce = async (runtime: Runtime, force: boolean): Promise<RunClass> => {
      figures.runs += 1;
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "replay",
        actor: "replay",
        force,
      });
      return classify(outcome);
    };

    /** A clean run as an operator would handle it: a mass-removal trip is checked and forced. */
    const settle = async (): Promise<RunClass> => {
      const first = await runOnce(clean, false);
      if (first.kind === "guard") figures.guardTrips[first.guard] = (figures.guardTrips[first.guard] ?? 0) + 1;
      if (first.kind === "applied") figures.appliedRuns += 1;
      // Checked and forced as an operator would: a mass removal, or a tag Microsoft re-created (its changeNumber restarts).
      if (first.kind !== "guard" || (first.guard !== "mass-removal" && first.guard !== "stale-source")) return first;
      figures.forcedReruns += 1;
      const forced = await runOnce(clean, true);
      if (forced.kind === "applied") figures.appliedRuns += 1;
      return forced;
    };

    let lastConverged: string | undefined;
    for (const publication of publications) {
      const label = `${configuration.name} ${publication.label}#${publication.index}`;
      harness.tags.publish(publication.fileName, publicationText(publication));
      harness.tags.setLatest(publication.fileName);
      // Like Microsoft's page, the details page links only the current file. The emulator's default
      // page links every published file: half of it, truncated, holds a valid link to an older file,
      // and the service applies an older publication as readily as the current one (nothing compares
      // a file with the one applied last; per-tag changeNumbers restart when a tag is re-created).
      const form = publication.label < "20230101" ? "js-variable" : "href";
      harness.tags.setDetailsPage({
        html: renderDetailsPage("Public", form, [harness.tags.fileUrl(publication.fileName)]),
      });
      const selected = selectedPrefixes(publication, regions);
      const selectionKey = selected === undefined ? undefined : canonicalKey(selected);
      const selectionUnchanged = selectionKey !== undefined && selectionKey === lastConverged;
      const before = rules();
      const patchesBefore = patchCount();
      const writesBefore = harness.arm.writes;

      const planned =
        options.faults === undefined
          ? []
          : planWeekFaults(random, options.faults.policy, {
              fileName: publication.fileName,
              writeExpected: selected !== undefined && !selectionUnchanged,
            });
      const attempts: {
        readonly fault: PlannedFault;
        readonly result: RunClass;
        readonly before: string[];
        readonly after: string[];
      }[] = [];
      for (const fault of planned) {
        // Once a run has converged, further faulty runs would only meet an unchanged week.
        const last = attempts.at(-1)?.result;
        if (last?.kind === "applied" || last?.kind === "unchanged") break;
        figures.faultsInjected[fault.kind] = (figures.faultsInjected[fault.kind] ?? 0) + 1;
        const attemptBefore = rules();
        const struck = inject(harness, registryId, fault);
        const result = await runOnce(faulty, false);
        harness.arm.clearFaults();
        harness.tags.clearFaults();
        if (struck()) figures.faultsStruck += 1;
        const attemptAfter = rules();
        attempts.push({ fault, result, before: attemptBefore, after: attemptAfter });
        if (result.kind === "failed") {
          figures.failedRuns[result.code] = (figures.failedRuns[result.code] ?? 0) + 1;
          if (!sameRuleSet(attemptAfter, attemptBefore)) figures.failedAfterWrite += 1;
        }
        if (result.kind === "guard") figures.guardTrips[result.guard] = (figures.guardTrips[result.guard] ?? 0) + 1;
        if (result.kind === "applied") figures.appliedRuns += 1;
      }

      const result = await settle();
      const after = rules();
      const converged = result.kind === "applied" || result.kind === "unchanged";
      if (attempts.length > 0 || result.kind !== "unchanged") {
        const faults = attempts.map(
          (a) =>
            `${a.fault.kind}${a.fault.target === "arm" ? ` on ${a.fault.op}` : ` on ${a.fault.where}`} x${a.fault.times} -> ${describe(a.result)} (rules ${a.before.length} -> ${a.after.length}); `,
        );
        figures.events.push(
          `${label}: ${faults.join("")}clean run: ${describe(result)}; rules ${before.length} -> ${after.length}`,
        );
      }
      for (const attempt of attempts) {
        figures.violations.push(
          ...checkFailedAttempt({
            label,
            before: attempt.before,
            afterAttempt: attempt.after,
            afterCleanRun: after,
            peopleRules: configuration.peopleRules,
            ruleLimit: configuration.ruleLimit,
          }),
        );
        if (attempt.result.kind === "guard" && attempt.result.guard !== "tag-missing") {
          figures.violations.push(`${label}: a faulty run tripped an unexpected guard: ${describe(attempt.result)}`);
        }
      }
      if (attempts.length > 0 && converged) figures.recoveredWeeks += 1;
      // What the week must end with: in sync, or (only when a selected tag is missing) the tag-missing guard.
      if (selected === undefined && !(result.kind === "guard" && result.guard === "tag-missing")) {
        figures.violations.push(`${label}: a selected tag is missing, yet the week ended with ${describe(result)}`);
      }
      if (selected !== undefined && !converged)
        figures.violations.push(`${label}: the week did not converge: ${describe(result)}`);
      for (const run of [...attempts.map((a) => a.result), result]) {
        if (run.kind !== "applied" && run.kind !== "unchanged") continue;
        // The _Latest alias serves the week's file too (it tracks the newest publication).
        if (run.fileName === ALIAS_FILE_NAME) figures.aliasFallbacks += 1;
        // A faulted run may fall back to last week's copy (stale-copy); the clean run must not.
        else if (run.sourceKind === "last-good" && run !== result) figures.lastGoodFallbacks += 1;
        else if (run.fileName !== publication.fileName) {
          figures.violations.push(
            `${label}: a run synced to ${run.fileName} instead of the week's ${publication.fileName}`,
          );
        }
      }

      const ledgerState = await clean.ports.ledger.read(registryId);
      figures.violations.push(
        ...checkWeek({
          label,
          selected,
          converged,
          rulesBefore: before,
          rulesAfter: after,
          ruleLimit: configuration.ruleLimit,
          peopleRules: configuration.peopleRules,
          patches: patchCount() - patchesBefore,
          writes: harness.arm.writes - writesBefore,
          selectionUnchanged,
          ledger: ledgerState,
        }),
      );
      const reference = options.reference?.[publication.index];
      if (reference !== undefined && !sameRuleSet(after, reference)) {
        figures.violations.push(`${label}: the registry ends the week differently from the clean replay`);
      }

      figures.weeks += 1;
      figures.writes += harness.arm.writes - writesBefore;
      if (selectionUnchanged) figures.unchangedWeeks += 1;
      if (converged) {
        figures.convergedWeeks += 1;
        lastConverged = selectionKey;
        const serviceRules = after.length - configuration.peopleRules.length;
        if (selected !== undefined && serviceRules < mergedCount(selected)) figures.aggregatedWeeks += 1;
      }
      figures.maxRules = Math.max(figures.maxRules, after.length);
      states.push(after);
    }
    figures.auditEntries = (await clean.ports.ledger.listAudit(registryId)).length;
  } finally {
    harness.arm.clearFaults();
    harness.tags.clearFaults();
    if (ledgerDir !== undefined) rmSync(ledgerDir, { recursive: true, force: true });
  }
  figures.durationMs = Date.now() - started;
  return { figures, states };
}

function classify(outcome: TargetOutcome | undefined): RunClass {
  if (outcome === undefined) return { kind: "failed", code: "NoOutcome", message: "runInvocation returned no outcome" };
  if (outcome.ok) {
    const source = outcome.result.plan.source;
    return {
      kind: outcome.result.outcome === "applied" ? "applied" : "unchanged",
      fileName:
        source.kind === "service-tags"
          ? source.origin.fileName
          : source.kind === "rollback"
            ? `rollback ${source.auditId}`
            : "release",
      sourceKind: source.kind === "service-tags" ? source.origin.kind : source.kind,
    };
  }
  const guard = guardNameOf(outcome.error);
  if (guard !== undefined) return { kind: "guard", guard };
  const error = outcome.error;
  return {
    kind: "failed",
    code: error instanceof AllowlistSyncError ? error.code : "UnexpectedError",
    message: error instanceof Error ? error.message : String(error),
  };
}

function describe(result: RunClass): string {
  switch (result.kind) {
    case "guard":
      return `the ${result.guard} guard`;
    case "failed":
      return `${result.code}: ${result.message}`;
    default:
      return result.kind;
  }
}

/** Arms one planned fault; the returned function says whether it met a request. */
function inject(harness: Harness, registryId: string, planned: PlannedFault): () => boolean {
  if (planned.target === "arm") {
    const seen = harness.arm.requests.length;
    harness.arm.injectFault({ op: planned.op, registryId, times: planned.times, fault: planned.fault });
    return () => harness.arm.requests.slice(seen).some((request) => request.fault !== undefined);
  }
  const seen = harness.tags.requests.length;
  for (const path of planned.paths) harness.tags.setFault(path, planned.fault, { times: planned.times });
  return () =>
    harness.tags.requests
      .slice(seen)
      .some((request) => planned.paths.some((path) => request.path === path || request.path.startsWith(`${path}?`)));
}

/** The IPv4 prefixes of the selected regional tags, or undefined when one of the tags is missing. */
function selectedPrefixes(publication: Publication, regions: readonly string[]): string[] | undefined {
  const prefixes: string[] = [];
  for (const region of regions) {
    const tag = regionalIpv4(publication.file, region);
    if (tag === undefined) return undefined;
    prefixes.push(...tag);
  }
  return prefixes;
}

function canonicalKey(rules: readonly string[]): string {
  return [...new Set(rules.map((rule) => formatPrefix(parsePrefix(rule, { mode: "lenient" }).prefix)))]
    .sort()
    .join(" ");
}

function sameRuleSet(a: readonly string[], b: readonly string[]): boolean {
  return canonicalKey(a) === canonicalKey(b);
}

/** How many prefixes the lossless merge of the selection leaves. */
function mergedCount(selected: readonly string[]): number {
  return mergePrefixes(selected.map((text) => parsePrefix(text, { mode: "strict" }).prefix)).length;
}
