import type { ReplayFigures } from "./replayer.js";

/** The replay's figures as a plain-text table (one row per replay, then the totals) and breakdowns. */
export function formatFigures(rows: readonly ReplayFigures[]): string {
  const columns: readonly [string, (f: ReplayFigures) => string | number][] = [
    ["configuration", (f) => f.configuration],
    ["mode", (f) => f.mode],
    ["weeks", (f) => f.weeks],
    ["runs", (f) => f.runs],
    ["writes", (f) => f.writes],
    ["unchanged wk", (f) => f.unchangedWeeks],
    ["aggregated wk", (f) => f.aggregatedWeeks],
    ["guard trips", (f) => sum(f.guardTrips)],
    ["forced", (f) => f.forcedReruns],
    ["faults", (f) => sum(f.faultsInjected)],
    ["struck", (f) => f.faultsStruck],
    ["failed runs", (f) => sum(f.failedRuns)],
    ["failed after write", (f) => f.failedAfterWrite],
    ["alias", (f) => f.aliasFallbacks],
    ["last-good", (f) => f.lastGoodFallbacks],
    ["recovered wk", (f) => f.recoveredWeeks],
    ["audit", (f) => f.auditEntries],
    ["max rules", (f) => f.maxRules],
    ["violations", (f) => f.violations.length],
    ["s", (f) => (f.durationMs / 1000).toFixed(1)],
  ];
  const total = totals(rows);
  const cells = [...rows, total].map((row) => columns.map(([, value]) => String(value(row))));
  const widths = columns.map(([header], i) => Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: readonly string[]): string =>
    values.map((value, i) => (i < 2 ? value.padEnd(widths[i] ?? 0) : value.padStart(widths[i] ?? 0))).join(" | ");
  const rule = widths.map((width) => "-".repeat(width)).join("-+-");
  const table = [
    line(columns.map(([header]) => header)),
    rule,
    ...cells.slice(0, -1).map(line),
    rule,
    line(cells.at(-1) ?? []),
  ];
  return [
    ...table,
    `guard trips by guard: ${breakdown(total.guardTrips)}`,
    `faults injected by kind: ${breakdown(total.faultsInjected)}`,
    `failed faulty runs by error: ${breakdown(total.failedRuns)}`,
  ].join("\n");
}

/** Figures with every count at zero, for one configuration's replay or for the totals row. */
export function emptyFigures(configuration: string, mode: ReplayFigures["mode"]): ReplayFigures {
  return {
    configuration,
    mode,
    weeks: 0,
    runs: 0,
    writes: 0,
    unchangedWeeks: 0,
    convergedWeeks: 0,
    guardTrips: {},
    forcedReruns: 0,
    faultsInjected: {},
    faultsStruck: 0,
    failedRuns: {},
    failedAfterWrite: 0,
    recoveredWeeks: 0,
    aggregatedWeeks: 0,
    maxRules: 0,
    aliasFallbacks: 0,
    lastGoodFallbacks: 0,
    auditEntries: 0,
    appliedRuns: 0,
    violations: [],
    events: [],
    durationMs: 0,
  };
}

export function totals(rows: readonly ReplayFigures[]): ReplayFigures {
  const total = emptyFigures("total", rows.every((row) => row.mode === "clean") ? "clean" : "faulty");
  for (const row of rows) {
    total.weeks += row.weeks;
    total.runs += row.runs;
    total.writes += row.writes;
    total.unchangedWeeks += row.unchangedWeeks;
    total.convergedWeeks += row.convergedWeeks;
    total.forcedReruns += row.forcedReruns;
    total.faultsStruck += row.faultsStruck;
    total.failedAfterWrite += row.failedAfterWrite;
    total.recoveredWeeks += row.recoveredWeeks;
    total.aggregatedWeeks += row.aggregatedWeeks;
    total.maxRules = Math.max(total.maxRules, row.maxRules);
    total.aliasFallbacks += row.aliasFallbacks;
    total.lastGoodFallbacks += row.lastGoodFallbacks;
    total.auditEntries += row.auditEntries;
    total.appliedRuns += row.appliedRuns;
    total.violations.push(...row.violations);
    total.durationMs += row.durationMs;
    add(total.guardTrips, row.guardTrips);
    add(total.faultsInjected, row.faultsInjected);
    add(total.failedRuns, row.failedRuns);
  }
  return total;
}

function add(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

function sum(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function breakdown(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1));
  return entries.length === 0 ? "none" : entries.map(([key, value]) => `${key} ${value}`).join(", ");
}
