/**
 * `npm run bench`: the prefix engine's figures, measured in one run on the same data.
 *
 *   merge   1,000,000 seeded random prefixes: our parse + lossless merge against Python 3's
 *           ipaddress.ip_network + collapse_addresses on the same lines (python3 is driven here).
 *   cover   the real global AzureContainerRegistry tag to 100 rules (fixture 20251020), and
 *           100,000 seeded random prefixes to 100 and 1,000 rules, each in a fresh child process
 *           so that its peak RSS (getrusage maxrss) belongs to that case alone.
 *
 * `--json` prints one JSON object; otherwise a table. Not a test: nothing here fails the build.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { optimalCover } from "../src/prefixes/cover.js";
import { formatPrefix, parsePrefix, type Prefix } from "../src/prefixes/ipv4.js";
import { mergePrefixes } from "../src/prefixes/merge.js";
import { seededRandom } from "../test/support/random.js";
import { parseServiceTags } from "../src/servicetags/parse.js";
import { selectTags } from "../src/servicetags/select.js";
import { fixturePath } from "../test/support/paths.js";
import { tlsPaths } from "../test/support/tls.js";

const MERGE_COUNT = 1_000_000;
const MERGE_RUNS = 3;
// collapse_addresses needs about a minute for a million prefixes on a 2-core machine: run it once.
const PYTHON_RUNS = 1;
const COVER_COUNT = 100_000;
const COVER_BUDGETS = [100, 1_000];
const GLOBAL_BUDGET = 100;
const GLOBAL_WARM_RUNS = 50;
const MIN_LENGTH = 20;
const MAX_LENGTH = 32;
const MERGE_SEED = 20251020;
const COVER_SEED = 42;
const GLOBAL_FIXTURE = "ServiceTags_Public_20251020.acr.json";

const TARGETS = { mergeRatio: 10, globalCoverMs: 20, coverMs: 3_000, coverRssMiB: 512 };

/** Canonical prefixes, base uniform over the IPv4 space, length uniform in /20 … /32. */
function randomPrefixes(count: number, seed: number): Prefix[] {
  const random = seededRandom(seed);
  const out: Prefix[] = [];
  for (let index = 0; index < count; index += 1) {
    const length = MIN_LENGTH + Math.floor(random() * (MAX_LENGTH - MIN_LENGTH + 1));
    const size = 2 ** (32 - length);
    out.push({ base: Math.floor((random() * 2 ** 32) / size) * size, length });
  }
  return out;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));
const rssMiB = (): number => round(process.resourceUsage().maxRSS / 1024);

// ---- child cases (one fresh process each) ------------------------------------------------------

function childCover(count: number, budget: number): object {
  const targets = randomPrefixes(count, COVER_SEED);
  if (budget === 0) return { peakRssMiB: rssMiB() }; // baseline: the data alone
  const start = performance.now();
  const cover = optimalCover(targets, { maxPrefixes: budget });
  const ms = performance.now() - start;
  return {
    ms: round(ms),
    peakRssMiB: rssMiB(),
    prefixes: cover.prefixes.length,
    mergedPrefixes: cover.mergedPrefixes,
    extraAddresses: cover.extraAddresses,
  };
}

interface GlobalFigures {
  fixture: string;
  tag: string;
  tagChangeNumber: number;
  inputPrefixes: number;
  mergedPrefixes: number;
  budget: number;
  prefixes: number;
  extraAddresses: number;
  coldMs: number;
  warmMedianMs: number;
  warmRuns: number;
  peakRssMiB: number;
}

function childGlobal(): GlobalFigures {
  const path = fixturePath("servicetags", GLOBAL_FIXTURE);
  const file = parseServiceTags(readFileSync(path, "utf8"), { location: path });
  const tag = selectTags(file, { tagNames: ["AzureContainerRegistry"] }).tags[0];
  if (tag === undefined) throw new Error("the global tag is missing from the fixture");
  // Start the cold call on a clean heap, so it does not pay for collecting the file parse's garbage.
  (globalThis as { gc?: () => void }).gc?.();
  const coldStart = performance.now();
  const cover = optimalCover(tag.prefixes, { maxPrefixes: GLOBAL_BUDGET });
  const coldMs = performance.now() - coldStart;
  const warm: number[] = [];
  for (let run = 0; run < GLOBAL_WARM_RUNS; run += 1) {
    const start = performance.now();
    optimalCover(tag.prefixes, { maxPrefixes: GLOBAL_BUDGET });
    warm.push(performance.now() - start);
  }
  return {
    fixture: GLOBAL_FIXTURE,
    tag: tag.name,
    tagChangeNumber: tag.changeNumber,
    inputPrefixes: tag.prefixes.length,
    mergedPrefixes: cover.mergedPrefixes,
    budget: GLOBAL_BUDGET,
    prefixes: cover.prefixes.length,
    extraAddresses: cover.extraAddresses,
    coldMs: round(coldMs, 2),
    warmMedianMs: round(median(warm), 3),
    warmRuns: GLOBAL_WARM_RUNS,
    peakRssMiB: rssMiB(),
  };
}

interface CoverFigures {
  ms: number;
  peakRssMiB: number;
  prefixes: number;
  mergedPrefixes: number;
  extraAddresses: number;
}

function inChild(args: string[]): unknown {
  const result = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--child", ...args], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`bench child ${args.join(" ")} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as unknown;
}

// ---- merge against Python ----------------------------------------------------------------------

const PYTHON = `
import hashlib, ipaddress, json, sys, time
path, runs = sys.argv[1], int(sys.argv[2])
with open(path) as handle:
    lines = handle.read().split("\\n")
parse, collapse, out = [], [], []
for _ in range(runs):
    t0 = time.perf_counter()
    nets = [ipaddress.ip_network(line) for line in lines]
    t1 = time.perf_counter()
    out = list(ipaddress.collapse_addresses(nets))
    t2 = time.perf_counter()
    parse.append(t1 - t0)
    collapse.append(t2 - t1)
digest = hashlib.sha256("\\n".join(str(net) for net in out).encode()).hexdigest()
print(json.dumps({"parseSeconds": parse, "collapseSeconds": collapse, "count": len(out), "sha256": digest, "version": sys.version.split()[0]}))
`;

interface PythonResult {
  parseSeconds: number[];
  collapseSeconds: number[];
  count: number;
  sha256: string;
  version: string;
}

interface MergeFigures {
  inputPrefixes: number;
  lengths: string;
  seed: number;
  statistic: string;
  mergedPrefixes: number;
  identicalOutput: boolean;
  ours: {
    runs: number;
    parseAndMergeMs: number;
    mergeOnlyMs: number;
    firstRun: { parseAndMergeMs: number; mergeOnlyMs: number };
  };
  python: { version: string; runs: number; parseAndCollapseMs: number; collapseOnlyMs: number };
  ratioCollapseOnly: number;
  ratioParseInclusive: number;
  meetsTarget: boolean;
}

function benchMerge(): MergeFigures {
  const lines = randomPrefixes(MERGE_COUNT, MERGE_SEED).map(formatPrefix);
  const dir = mkdtempSync(join(tmpdir(), "acr-bench-"));
  try {
    const file = join(dir, "prefixes.txt");
    writeFileSync(file, lines.join("\n"));

    // Ours, timed the same way as Python's: lines in memory, then parse, then merge.
    const parseAndMerge: number[] = [];
    const mergeOnly: number[] = [];
    let merged: Prefix[] = [];
    for (let run = 0; run < MERGE_RUNS; run += 1) {
      const t0 = performance.now();
      const parsed: Prefix[] = new Array<Prefix>(lines.length);
      for (let index = 0; index < lines.length; index += 1)
        parsed[index] = parsePrefix(lines[index] as string, { mode: "strict" }).prefix;
      const t1 = performance.now();
      merged = mergePrefixes(parsed);
      const t2 = performance.now();
      parseAndMerge.push(t2 - t0);
      mergeOnly.push(t2 - t1);
    }
    const ourDigest = createHash("sha256").update(merged.map(formatPrefix).join("\n")).digest("hex");

    const python = spawnSync("python3", ["-c", PYTHON, file, String(PYTHON_RUNS)], {
      encoding: "utf8",
      maxBuffer: 16 * 1024 * 1024,
    });
    if (python.status !== 0) throw new Error(`python3 failed: ${python.error?.message ?? python.stderr.trim()}`);
    const py = JSON.parse(python.stdout) as PythonResult;

    const ours = {
      runs: MERGE_RUNS,
      parseAndMergeMs: round(median(parseAndMerge)),
      mergeOnlyMs: round(median(mergeOnly)),
      firstRun: { parseAndMergeMs: round(parseAndMerge[0] as number), mergeOnlyMs: round(mergeOnly[0] as number) },
    };
    const theirs = {
      runs: PYTHON_RUNS,
      parseAndCollapseMs: round(median(py.parseSeconds.map((s, i) => (s + (py.collapseSeconds[i] as number)) * 1000))),
      collapseOnlyMs: round(median(py.collapseSeconds.map((s) => s * 1000))),
    };
    const ratioCollapseOnly = round(theirs.collapseOnlyMs / ours.mergeOnlyMs);
    const ratioParseInclusive = round(theirs.parseAndCollapseMs / ours.parseAndMergeMs);
    return {
      inputPrefixes: MERGE_COUNT,
      lengths: `/${MIN_LENGTH}-/${MAX_LENGTH}`,
      seed: MERGE_SEED,
      statistic: "median of the runs; ratios are Python's median over ours",
      mergedPrefixes: merged.length,
      identicalOutput: py.count === merged.length && py.sha256 === ourDigest,
      ours,
      python: { version: py.version, ...theirs },
      ratioCollapseOnly,
      ratioParseInclusive,
      meetsTarget: ratioCollapseOnly >= TARGETS.mergeRatio && ratioParseInclusive >= TARGETS.mergeRatio,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- main ----------------------------------------------------------------------------------------

interface Report {
  node: string;
  cpu: string;
  cpus: number;
  targets: typeof TARGETS;
  merge: MergeFigures;
  globalTagCover: GlobalFigures & { meetsTarget: boolean };
  randomCover: (CoverFigures & {
    inputPrefixes: number;
    budget: number;
    seed: number;
    lengths: string;
    meetsTarget: boolean;
  })[];
  baselineRssMiB: number;
  allTargetsMet: boolean;
  totalSeconds: number;
}

function table(report: Report): string {
  const { merge, globalTagCover: global, randomCover: covers } = report;
  const rows: [string, string, string][] = [
    ["case", "figure", "target"],
    [
      `merge ${MERGE_COUNT.toLocaleString("en-US")} prefixes: ours, merge only`,
      `${merge.ours.mergeOnlyMs} ms (median of ${merge.ours.runs}; first ${merge.ours.firstRun.mergeOnlyMs} ms)`,
      "",
    ],
    [
      `  Python ${merge.python.version} collapse_addresses only`,
      `${merge.python.collapseOnlyMs} ms (${merge.python.runs} run)`,
      "",
    ],
    ["  ratio (collapse only)", `${merge.ratioCollapseOnly}x`, `>= ${TARGETS.mergeRatio}x`],
    ["  ours, parse + merge", `${merge.ours.parseAndMergeMs} ms`, ""],
    ["  Python ip_network + collapse_addresses", `${merge.python.parseAndCollapseMs} ms`, ""],
    ["  ratio (parse included)", `${merge.ratioParseInclusive}x`, `>= ${TARGETS.mergeRatio}x`],
    ["  identical output", String(merge.identicalOutput), "true"],
    [
      `global tag (${global.inputPrefixes} prefixes) to ${global.budget} rules, cold`,
      `${global.coldMs} ms`,
      `< ${TARGETS.globalCoverMs} ms`,
    ],
    [`  warm median of ${global.warmRuns}`, `${global.warmMedianMs} ms`, ""],
  ];
  for (const cover of covers) {
    rows.push([
      `${cover.inputPrefixes.toLocaleString("en-US")} random prefixes to ${cover.budget} rules`,
      `${cover.ms} ms, ${cover.peakRssMiB} MiB peak RSS`,
      `< ${TARGETS.coverMs} ms, < ${TARGETS.coverRssMiB} MiB`,
    ]);
  }
  rows.push(["  (data alone, no cover)", `${report.baselineRssMiB} MiB peak RSS`, ""]);
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, column) => cell.padEnd(widths[column] as number))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + `\n\nAll targets met: ${String(report.allTargetsMet)}\n`
  );
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    const result = args[1] === "global" ? childGlobal() : childCover(Number(args[2]), Number(args[3]));
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const started = performance.now();
  const globalTagCover = inChild(["global"]) as GlobalFigures;
  const randomCover = COVER_BUDGETS.map((budget) => ({
    inputPrefixes: COVER_COUNT,
    budget,
    seed: COVER_SEED,
    ...(inChild(["cover", String(COVER_COUNT), String(budget)]) as CoverFigures),
  }));
  const baselineRssMiB = (inChild(["cover", String(COVER_COUNT), "0"]) as { peakRssMiB: number }).peakRssMiB;
  const merge = benchMerge();
  const globalMeets = globalTagCover.coldMs < TARGETS.globalCoverMs;
  const coverMeets = (cover: CoverFigures): boolean =>
    cover.ms < TARGETS.coverMs && cover.peakRssMiB < TARGETS.coverRssMiB;
  const report: Report = {
    node: process.version,
    cpu: cpus()[0]?.model ?? "unknown",
    cpus: cpus().length,
    targets: TARGETS,
    merge,
    globalTagCover: { ...globalTagCover, meetsTarget: globalMeets },
    randomCover: randomCover.map((cover) => ({
      ...cover,
      lengths: `/${MIN_LENGTH}-/${MAX_LENGTH}`,
      meetsTarget: coverMeets(cover),
    })),
    baselineRssMiB,
    allTargetsMet: merge.meetsTarget && globalMeets && randomCover.every(coverMeets),
    totalSeconds: round((performance.now() - started) / 1000),
  };
  const fanout = benchFanout();
  process.stdout.write(
    args.includes("--json")
      ? JSON.stringify({ ...report, fanout }, null, 2) + "\n"
      : table(report) + fanoutTable(fanout),
  );
}

// ---- fan-out (issue 10): registries per minute at an emulated ARM latency, memory per run ----------

interface FanoutFigures {
  registries: number;
  concurrency: number;
  armLatencyMs: number;
  seconds: number;
  registriesPerMinute: number;
  armCallsPerRegistry: number;
  poisoned: number;
  peakRssMiB: number;
}

/** In a child (its own peak RSS), concurrency 1 then 16, 200 registries, 50 ms per ARM call. */
function benchFanout(): FanoutFigures[] {
  const script = fileURLToPath(new URL("./bench-fanout.js", import.meta.url));
  const ca = tlsPaths.ca;
  return [
    ["40", "1"],
    ["200", "16"],
  ].map(([registries = "", concurrency = ""]) => {
    const child = spawnSync(process.execPath, [script, registries, concurrency, "50"], {
      encoding: "utf8",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`bench-fanout failed: ${child.stderr.slice(-2000)}`);
    return JSON.parse(child.stdout) as FanoutFigures;
  });
}

function fanoutTable(figures: readonly FanoutFigures[]): string {
  const lines = figures.map(
    (f) =>
      `  ${f.registries} registries, concurrency ${f.concurrency}, ${f.armLatencyMs} ms/ARM call: ${f.registriesPerMinute} registries/min (${f.seconds} s), ${f.armCallsPerRegistry} ARM calls/registry, ${f.peakRssMiB} MiB peak RSS, ${f.poisoned} poisoned`,
  );
  return `\nFan-out (queue on Azurite, real queue handler, emulated ARM latency):\n${lines.join("\n")}\n`;
}

main();
