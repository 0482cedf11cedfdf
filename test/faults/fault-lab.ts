import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { afterAll, beforeAll, expect } from "vitest";
import type { Runtime } from "../../src/app/runtime.js";
import { AllowlistSyncError, GuardError } from "../../src/errors.js";
import { parsePrefix } from "../../src/prefixes/ipv4.js";
import { mergePrefixes } from "../../src/prefixes/merge.js";
import { ServiceTagsUnavailableError } from "../../src/servicetags/source-errors.js";
import { guardNameOf, runInvocation, type InvocationPorts, type TargetOutcome } from "../../src/sync/invocation.js";
import { isInside } from "../../src/sync/plan.js";
import { sameRules } from "../../src/sync/run.js";
import type {
  DriftDetectedEvent,
  FanoutScheduledEvent,
  RegistryUntaggedEvent,
  GuardTrippedEvent,
  SyncCompletedEvent,
  SyncFailedEvent,
  SyncSkippedEvent,
  TelemetrySink,
} from "../../src/telemetry/types.js";
import type { ArmRequestRecord, RegistrySpec, RegistryState } from "../support/arm-emulator.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * The fault matrix's bench: every row builds a fresh registry holding people's rules, injects one
 * fault, runs one real invocation (the production runtime against the local emulators and
 * Azurite), classifies what happened, then runs once more without the fault. The verdicts are
 * recorded in a `FaultMatrix` that each test file prints as a table.
 */

/** People's rules: hand-made, outside every ACR range, present on every registry of the matrix. */
export const PEOPLE: readonly string[] = ["203.0.113.10", "198.51.100.0/24"];

/** The IPv4 prefixes of `AzureContainerRegistry.JapanEast` in the served file (the registries' location). */
export const JAPAN_EAST: readonly string[] = [
  "4.216.205.64/26",
  "13.78.106.200/29",
  "13.78.111.0/25",
  "20.89.0.192/26",
  "20.191.160.128/26",
  "20.194.128.0/25",
  "40.79.186.8/29",
  "40.79.189.128/25",
  "40.79.190.0/25",
  "40.79.194.96/29",
  "40.79.197.128/25",
];

/** The owned rule "someone" removes after a prior sync, so the run under test has a write to make. */
export const DRIFTED_RULE = "40.79.197.128/25";

export type Verdict = "converged" | "unchanged and reported" | "written and reported";

// ---- telemetry ------------------------------------------------------------------------------------

/** A recording TelemetrySink: a test double for the telemetry edge (our own modules stay real). */
export interface TelemetryCapture extends TelemetrySink {
  readonly completed: SyncCompletedEvent[];
  readonly failed: SyncFailedEvent[];
  readonly guards: GuardTrippedEvent[];
  readonly drift: DriftDetectedEvent[];
  readonly skipped: SyncSkippedEvent[];
  readonly untagged: RegistryUntaggedEvent[];
  readonly scheduled: FanoutScheduledEvent[];
  readonly flushes: number;
}

export function captureTelemetry(): TelemetryCapture {
  const completed: SyncCompletedEvent[] = [];
  const failed: SyncFailedEvent[] = [];
  const guards: GuardTrippedEvent[] = [];
  const drift: DriftDetectedEvent[] = [];
  const skipped: SyncSkippedEvent[] = [];
  const untagged: RegistryUntaggedEvent[] = [];
  const scheduled: FanoutScheduledEvent[] = [];
  let flushes = 0;
  return {
    completed,
    failed,
    guards,
    drift,
    skipped,
    untagged,
    scheduled,
    get flushes() {
      return flushes;
    },
    syncCompleted: (event) => void completed.push(event),
    syncFailed: (event) => void failed.push(event),
    guardTripped: (event) => void guards.push(event),
    driftDetected: (event) => void drift.push(event),
    syncSkipped: (event) => void skipped.push(event),
    registryUntagged: (event) => void untagged.push(event),
    fanoutScheduled: (event) => void scheduled.push(event),
    canaryCompleted: () => undefined,
    flush: () => {
      flushes += 1;
      return Promise.resolve();
    },
  };
}

// ---- one run, observed ----------------------------------------------------------------------------

export interface RunObservation {
  /** The outcome of the target under test (the first one). */
  readonly outcome: TargetOutcome;
  readonly telemetry: TelemetryCapture;
  /** The watched registry's rules before and after the run, exactly as the emulator holds them. */
  readonly before: readonly string[];
  readonly after: readonly string[];
  /** The watched registry's whole state right after the run. */
  readonly state: RegistryState;
  /** ARM requests received during the run. */
  readonly requests: readonly ArmRequestRecord[];
  readonly patchesSent: number;
  /** PATCH changes the emulator applied during the run. */
  readonly writesApplied: number;
}

export interface RunSpec {
  readonly runtime: Runtime;
  /** The emulated registry whose rules are watched. */
  readonly watch: string;
  readonly ports?: Partial<InvocationPorts>;
  readonly force?: boolean;
}

export async function observeRun(harness: Harness, spec: RunSpec): Promise<RunObservation> {
  const telemetry = captureTelemetry();
  const before = harness.arm.registry(spec.watch).ipRules;
  const firstRequest = harness.arm.requests.length;
  const writesBefore = harness.arm.writes;
  const outcomes = await runInvocation(
    spec.runtime.settings,
    { ...spec.runtime.ports, ...spec.ports, telemetry },
    {
      mode: "apply",
      trigger: "fault-matrix",
      actor: "test:fault-matrix",
      force: spec.force,
    },
  );
  const [outcome] = outcomes;
  if (outcome === undefined) throw new Error("the invocation returned no outcome");
  const requests = harness.arm.requests.slice(firstRequest);
  const state = harness.arm.registry(spec.watch);
  return {
    outcome,
    telemetry,
    before,
    after: state.ipRules,
    state,
    requests,
    patchesSent: requests.filter((request) => request.method === "PATCH").length,
    writesApplied: harness.arm.writes - writesBefore,
  };
}

/** What happened, in the matrix's words. */
export function verdictOf(observation: RunObservation): string {
  const { outcome, telemetry, before, after } = observation;
  const registry = outcome.target.ref.id;
  if (outcome.ok) {
    const { result } = outcome;
    const reportedOk = telemetry.completed.filter((event) => event.registry === registry).length === 1;
    if (result.outcome !== "dry-run" && reportedOk && sameRules(after, result.plan.ipRulesAfter)) return "converged";
    return `ok but not converged (${result.outcome}, ${after.length} rules)`;
  }
  const reports = [...telemetry.failed, ...telemetry.guards].filter((event) => event.registry === registry).length;
  const unchanged = after.length === before.length && after.every((rule, i) => rule === before[i]);
  if (reports === 1) return unchanged ? "unchanged and reported" : "written and reported";
  return `${unchanged ? "unchanged" : "changed"}, ${reports} report(s)`;
}

/** The error's `code`, with what tells rows apart: guard names, source failure reasons, ARM status or reason. */
export function errorLabel(outcome: TargetOutcome): string {
  if (outcome.ok) return "-";
  const { error } = outcome;
  if (error instanceof GuardError) {
    const guards = error.details.guards;
    return `${error.code}(${Array.isArray(guards) ? guards.join("+") : error.guard})`;
  }
  if (error instanceof ServiceTagsUnavailableError)
    return `${error.code}(${[...new Set(error.attempts.map((a) => a.reason))].join(",")})`;
  if (error instanceof AllowlistSyncError) {
    const { reason, statusCode } = error.details;
    if (typeof reason === "string") return `${error.code}(${reason})`;
    if (typeof statusCode === "number") return `${error.code}(${statusCode})`;
    return error.code;
  }
  return `unexpected ${error instanceof Error ? error.name : typeof error}`;
}

/** The telemetry a failed run must leave: one event, of the kind its error's category calls for. */
export function expectReported(observation: RunObservation): void {
  const { outcome, telemetry } = observation;
  if (outcome.ok) throw new Error("expectReported needs a failed outcome");
  const registry = outcome.target.ref.id;
  const error = outcome.error;
  expect(error).toBeInstanceOf(AllowlistSyncError);
  if (!(error instanceof AllowlistSyncError)) return;
  // A clear message: what went wrong and what to do, without tokens or keys.
  expect(error.message.length).toBeGreaterThan(30);
  expect(error.describe()).not.toMatch(/Bearer|AccountKey=|sig=|access_token/i);
  const guard = guardNameOf(error);
  if (guard !== undefined) {
    expect(telemetry.guards).toEqual([expect.objectContaining({ registry, guard, dryRun: false })]);
    expect(telemetry.failed).toEqual([]);
  } else {
    expect(telemetry.failed).toEqual([expect.objectContaining({ registry, errorType: error.code, dryRun: false })]);
    expect(telemetry.guards).toEqual([]);
  }
  expect(telemetry.completed).toEqual([]);
  expect(telemetry.flushes).toBe(1);
}

/** True when every prefix lies inside the union of `rules`. */
export function covers(rules: readonly string[], prefixes: readonly string[]): boolean {
  const merged = mergePrefixes(rules.map((rule) => parsePrefix(rule, { mode: "lenient" }).prefix));
  return prefixes.every((prefix) => isInside(parsePrefix(prefix, { mode: "strict" }).prefix, merged));
}

// ---- the matrix -----------------------------------------------------------------------------------

export interface MatrixEntry {
  readonly row: string;
  readonly fault: string;
  readonly expected: string;
  readonly observed: string;
  readonly code: string;
  readonly writes: string;
  readonly people: string;
  readonly next: string;
  readonly matched: boolean;
}

const COLUMNS: readonly { readonly key: keyof Omit<MatrixEntry, "matched">; readonly title: string }[] = [
  { key: "row", title: "row" },
  { key: "fault", title: "fault" },
  { key: "expected", title: "expected" },
  { key: "observed", title: "observed outcome" },
  { key: "code", title: "error code" },
  { key: "writes", title: "PATCH sent/applied" },
  { key: "people", title: "people's rules intact" },
  { key: "next", title: "next clean run" },
];

export class FaultMatrix {
  readonly entries: MatrixEntry[] = [];

  constructor(readonly title: string) {}

  record(entry: MatrixEntry): void {
    this.entries.push(entry);
  }

  /** A plain-text table, one line per row. */
  render(): string {
    const header: Record<string, string> = Object.fromEntries(COLUMNS.map((c) => [c.key, c.title]));
    const lines: Record<string, string>[] = [
      header,
      ...this.entries.map(({ matched, ...e }) => ({ ...e, row: `${matched ? " " : "✗"} ${e.row}` })),
    ];
    const widths = COLUMNS.map((c) => Math.max(...lines.map((line) => (line[c.key] ?? "").length)));
    const format = (line: Record<string, string>): string =>
      COLUMNS.map((c, i) => (line[c.key] ?? "").padEnd(widths[i] ?? 0))
        .join(" | ")
        .trimEnd();
    const rule = widths.map((w) => "-".repeat(w)).join("-|-");
    const matched = this.entries.filter((e) => e.matched).length;
    return [
      `Fault matrix: ${this.title} (${matched}/${this.entries.length} rows as expected)`,
      format(header),
      rule,
      ...lines.slice(1).map(format),
    ].join("\n");
  }
}

// ---- rows -----------------------------------------------------------------------------------------

/** A row's mutable state: what the fault and its healing change between the two runs. */
export interface RowContext {
  readonly lab: FaultLab;
  /** The emulated registry whose rules are watched. */
  id: string;
  runtime: Runtime;
  ports: Partial<InvocationPorts>;
  force: boolean;
  /** Run after the row, pass or fail (release held locks, restore published files). */
  readonly cleanups: (() => void | Promise<void>)[];
}

export interface FaultRow {
  /** Short name for the table. */
  readonly row: string;
  /** What is injected, for the table. */
  readonly fault: string;
  /** The test's name: a sentence. */
  readonly test: string;
  readonly expected: Verdict;
  /** The expected `errorLabel` for rows that fail. */
  readonly code?: string;
  /**
   * What reached the registry during the faulted run: no PATCH at all, PATCHes ARM did not apply,
   * or at least one applied change.
   */
  readonly patches: "none" | "refused" | "applied";
  /** The people's rules the registry starts with (default PEOPLE). */
  readonly people?: readonly string[];
  /** Rules people add by hand while the row runs (a concurrent writer): they must survive too. */
  readonly addedByPeople?: () => readonly string[];
  readonly spec?: Partial<RegistrySpec>;
  /** App settings of the row (on top of the lab's). */
  readonly settings?: Readonly<Record<string, string>>;
  /** A clean sync first, then someone removes one owned rule, so the run under test has a write to make. */
  readonly prior?: boolean;
  /** The prefixes a converged registry must cover (default JAPAN_EAST). */
  readonly covers?: readonly string[];
  /** Replaces the default set-up of the context (fresh registry, blob ledger in a new container). */
  readonly setup?: (lab: FaultLab) => RowContext | Promise<RowContext>;
  readonly inject: (context: RowContext) => void | Promise<void>;
  /** After the faulted run, once the emulators' faults are cleared: undo what else the fault changed. */
  readonly heal?: (context: RowContext) => void | Promise<void>;
  /** The next clean run's expected verdict (default converged). */
  readonly next?: "converged" | "converged when forced";
  /** Row-specific assertions on the faulted run, before anything is healed. */
  readonly verify?: (observation: RunObservation, context: RowContext) => void | Promise<void>;
  /** Row-specific assertions on the next clean run. */
  readonly verifyNext?: (observation: RunObservation, context: RowContext) => void | Promise<void>;
}

export class FaultLab {
  private counter = 0;

  constructor(readonly harness: Harness) {}

  unique(prefix: string): string {
    this.counter += 1;
    return `${prefix}${this.counter}${randomBytes(3).toString("hex")}`;
  }

  /** A fresh Premium, firewalled registry in japaneast holding the people's rules. */
  addRegistry(spec: Partial<RegistrySpec> = {}, people: readonly string[] = PEOPLE): string {
    return this.harness.addRegistry({ name: this.unique("fault"), ipRules: [...people], ...spec });
  }

  /** The production runtime over a new Azurite container (a blob ledger of its own). */
  blobRuntime(
    targets: string,
    settings: Readonly<Record<string, string | undefined>> = {},
    container = this.unique("ledger-"),
  ): Runtime {
    return this.harness.runtime({
      TARGET_REGISTRIES: targets,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: container,
      // The rows fault the Download Center links; the Discovery API has its own tests (test/servicetags/).
      SERVICE_TAGS_API_ENABLED: "false",
      ...settings,
    });
  }

  /** Replaces the row's runtime: same targets and ledger container, other settings (an operator's fix). */
  rebuild(context: RowContext, settings: Readonly<Record<string, string | undefined>> = {}, targets?: string): void {
    const ids = targets ?? context.runtime.settings.targets.map((target) => target.ref.id).join(",");
    context.runtime = this.blobRuntime(ids, settings, context.runtime.settings.ledgerContainer);
  }

  context(id: string, runtime: Runtime): RowContext {
    return { lab: this, id, runtime, ports: {}, force: false, cleanups: [] };
  }

  run(context: RowContext): Promise<RunObservation> {
    return observeRun(this.harness, {
      runtime: context.runtime,
      watch: context.id,
      ports: context.ports,
      force: context.force,
    });
  }

  /** Runs one row of the matrix end to end, records it, and asserts it matched. */
  async runRow(matrix: FaultMatrix, row: FaultRow): Promise<void> {
    const people = row.people ?? PEOPLE;
    const context = row.setup === undefined ? this.defaultContext(row, people) : await row.setup(this);
    try {
      if (row.prior === true) await this.priorSync(context);

      await row.inject(context);
      const faulted = await this.run(context);
      const verifyError = await failureOf(() => row.verify?.(faulted, context));
      this.harness.arm.clearFaults();
      this.harness.tags.clearFaults();
      await row.heal?.(context);
      const next = await this.run(context);
      const verifyNextError = await failureOf(() => row.verifyNext?.(next, context));

      const observed = verdictOf(faulted);
      const code = errorLabel(faulted.outcome);
      const everyones = [...people, ...(row.addedByPeople?.() ?? [])];
      const intact = (o: RunObservation): boolean => everyones.every((rule) => o.after.includes(rule));
      const nextVerdict = verdictOf(next);
      const nextLabel =
        nextVerdict === "converged" && next.outcome.ok
          ? `converged (${next.outcome.result.outcome}${next.patchesSent === 0 ? ", no PATCH" : ""})${context.force ? ", forced" : ""}`
          : `${nextVerdict} ${errorLabel(next.outcome)}`;
      const patchesAsExpected =
        row.patches === "none"
          ? faulted.patchesSent === 0 && faulted.writesApplied === 0
          : row.patches === "refused"
            ? faulted.patchesSent > 0 && faulted.writesApplied === 0
            : faulted.writesApplied > 0;
      const matched =
        observed === row.expected &&
        (row.code === undefined ? code === "-" : code === row.code) &&
        patchesAsExpected &&
        intact(faulted) &&
        intact(next) &&
        nextVerdict === "converged" &&
        verifyError === undefined &&
        verifyNextError === undefined;
      matrix.record({
        row: row.row,
        fault: row.fault,
        expected: row.code === undefined ? row.expected : `${row.expected}: ${row.code}`,
        observed,
        code,
        writes: `${faulted.patchesSent}/${faulted.writesApplied}`,
        people: everyones.length === 0 ? "n/a (none)" : intact(faulted) && intact(next) ? "yes" : "NO",
        next: nextLabel,
        matched,
      });

      // The row's verdict, then the details behind it.
      expect({ observed, code }).toEqual({ observed: row.expected, code: row.code ?? "-" });
      expect(faulted.after, "people's rules after the faulted run").toEqual(expect.arrayContaining(everyones));
      expect(next.after, "people's rules after the next run").toEqual(expect.arrayContaining(everyones));
      if (row.patches === "none")
        expect({ sent: faulted.patchesSent, applied: faulted.writesApplied }).toEqual({ sent: 0, applied: 0 });
      if (row.patches === "refused") {
        expect(faulted.patchesSent).toBeGreaterThan(0);
        expect(faulted.writesApplied).toBe(0);
      }
      if (row.patches === "applied") expect(faulted.writesApplied).toBeGreaterThan(0);
      if (faulted.outcome.ok) {
        expect(faulted.telemetry.failed).toEqual([]);
        expect(faulted.telemetry.guards).toEqual([]);
      } else {
        expectReported(faulted);
      }
      const wanted = row.covers ?? JAPAN_EAST;
      if (observed === "converged")
        expect(covers(faulted.after, wanted), "the converged registry covers the tag").toBe(true);
      if (verifyError !== undefined) throw verifyError;

      expect(nextVerdict, `next clean run: ${nextLabel}`).toBe("converged");
      expect(covers(next.after, wanted), "the next run's registry covers the tag").toBe(true);
      expect(context.force).toBe(row.next === "converged when forced");
      if (verifyNextError !== undefined) throw verifyNextError;
      expect(matched).toBe(true);
    } finally {
      this.harness.arm.clearFaults();
      this.harness.tags.clearFaults();
      for (const cleanup of context.cleanups.reverse()) await cleanup();
    }
  }

  private defaultContext(row: FaultRow, people: readonly string[]): RowContext {
    const id = this.addRegistry(row.spec, people);
    return this.context(id, this.blobRuntime(id, row.settings));
  }

  /** A clean run that converges, then someone removes one of the rules it applied. */
  private async priorSync(context: RowContext): Promise<void> {
    const prior = await this.run(context);
    expect(verdictOf(prior), `prior sync: ${errorLabel(prior.outcome)}`).toBe("converged");
    const rules = this.harness.arm.registry(context.id).ipRules;
    expect(rules).toContain(DRIFTED_RULE);
    this.harness.arm.setIpRules(
      context.id,
      rules.filter((rule) => rule !== DRIFTED_RULE),
    );
  }
}

async function failureOf(check: () => void | Promise<void>): Promise<Error | undefined> {
  try {
    await check();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(`a check failed: ${String(error)}`);
  }
}

/** A loopback port nothing listens on (bound, then closed). */
export async function closedLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  return port;
}

export interface FaultSuite {
  readonly matrix: FaultMatrix;
  readonly harness: Harness;
  readonly lab: FaultLab;
}

/** One harness and fault lab for a test file's rows; the file's matrix is printed when it is done. */
export function faultSuite(title: string): FaultSuite {
  const matrix = new FaultMatrix(title);
  let harness: Harness | undefined;
  let lab: FaultLab | undefined;
  beforeAll(async () => {
    harness = await startHarness();
    lab = new FaultLab(harness);
  });
  afterAll(async () => {
    console.log(`\n${matrix.render()}\n`);
    await harness?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the fault suite starts its harness in beforeAll");
    return value;
  };
  return {
    matrix,
    get harness() {
      return started(harness);
    },
    get lab() {
      return started(lab);
    },
  };
}
