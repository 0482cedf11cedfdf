/**
 * `npm run bench`: the performance figures of issue 12, each beside its target, measured in one run.
 *
 *   merge    1,000,000 seeded random prefixes (/16–/32) as whole processes: `aggregate --json` against
 *            firehol `iprange --optimize` (C; Debian's `iprange` package, when installed) and
 *            `cidr-tools` (the best JS peer, installed from the npm registry into a temporary folder).
 *            Runs are interleaved so the tools share the machine's load alike. The output must be
 *            identical to Python 3's ipaddress.collapse_addresses (count and SHA-256; `--skip-python`
 *            leaves that minute-long check out, and says so).
 *   startup  `aggregate --help` and `aggregate --service-tags <full 2023-01-02 Public file> --region
 *            eastus` as whole processes.
 *   cover    100,000 seeded random prefixes (/20–/32) to 1,000 rules in a fresh child: ms and ns per
 *            DP cell (time ÷ (merged × K)); the global ACR tag to 100 rules; peak RSS per case.
 *   timer    a warm timer invocation for one registry with the full 2023-01-02 file: the real timer
 *            handler, runtime, SDK and ledger (Azurite) against the loopback emulators; time from the
 *            trigger to the PATCH leaving the process, minus the time a request was outstanding.
 *
 * The machine's load average is printed with the figures: on a shared machine wall times are the
 * load's as much as ours, so CPU times (user + sys) are printed beside them.
 * `--json` prints one JSON object; otherwise a table. Not a test: nothing here fails the build.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { subscribe } from "node:diagnostics_channel";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Timer } from "@azure/functions";
import { optimalCover } from "../src/prefixes/cover.js";
import { formatPrefix, type Prefix } from "../src/prefixes/ipv4.js";
import { parseServiceTags } from "../src/servicetags/parse.js";
import { selectTags } from "../src/servicetags/select.js";
import { fixturePath, projectRoot } from "../test/support/paths.js";
import { seededRandom } from "../test/support/random.js";
import { tlsPaths } from "../test/support/tls.js";

const MERGE_COUNT = 1_000_000;
const MERGE_LENGTHS = [16, 32] as const;
const MERGE_SEED = 20251020;
const RUNS = 5;
const CIDR_TOOLS_RUNS = 3;
const CIDR_TOOLS_VERSION = "~11.3.2";
const COVER_COUNT = 100_000;
const COVER_LENGTHS = [20, 32] as const;
const COVER_SEED = 42;
const COVER_BUDGETS = [100, 1_000];
const COVER_WARM_RUNS = 5;
const GLOBAL_FIXTURE = "ServiceTags_Public_20251020.acr.json";
const GLOBAL_BUDGET = 100;
const GLOBAL_WARM_RUNS = 50;
const FULL_FILE = "ServiceTags_Public_20230102.json";
const TIMER_RUNS = 10;

const TARGETS = {
  mergeVsIprange: 1.5, // ours ÷ iprange, at most
  mergeVsCidrTools: 4, // cidr-tools ÷ ours, at least
  mergePeakRssMiB: 120,
  startupMs: 300,
  coverNsPerCell: 1.5,
  globalCoverMs: 20,
  timerMs: 100,
};

const MAIN = join(projectRoot(), "dist", "src", "cli", "main.js");
const round = (value: number, digits = 1): number => Number(value.toFixed(digits));
const load = (): string =>
  loadavg()
    .map((value) => value.toFixed(1))
    .join(" ");

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function randomPrefixes(count: number, seed: number, [shortest, longest]: readonly [number, number]): Prefix[] {
  const random = seededRandom(seed);
  const out: Prefix[] = [];
  for (let index = 0; index < count; index += 1) {
    const length = shortest + Math.floor(random() * (longest - shortest + 1));
    const size = 2 ** (32 - length);
    out.push({ base: Math.floor((random() * 2 ** 32) / size) * size, length });
  }
  return out;
}

// ---- whole processes ---------------------------------------------------------------------------

interface ProcessRun {
  wallMs: number;
  /** user + sys of the child, when GNU time is there to say it. */
  cpuMs: number | null;
  peakRssMiB: number | null;
  stdout: string;
}

const GNU_TIME = "/usr/bin/time";
const HAVE_GNU_TIME = existsSync(GNU_TIME);

/** Runs a command to completion; GNU time (when installed) reports its CPU time and peak RSS on a side file. */
function measure(command: string, args: readonly string[], scratch: string): ProcessRun {
  const report = join(scratch, "time.txt");
  const [file, argv] = HAVE_GNU_TIME
    ? [GNU_TIME, ["-o", report, "-f", "%U %S %M", command, ...args]]
    : [command, [...args]];
  const start = performance.now();
  const result = spawnSync(file, argv, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  const wallMs = performance.now() - start;
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr.trim()}`);
  if (!HAVE_GNU_TIME) return { wallMs, cpuMs: null, peakRssMiB: null, stdout: result.stdout };
  const [user, sys, rssKiB] = readFileSync(report, "utf8").trim().split(/\s+/).map(Number);
  return {
    wallMs,
    cpuMs: ((user ?? 0) + (sys ?? 0)) * 1000,
    peakRssMiB: (rssKiB ?? 0) / 1024,
    stdout: result.stdout,
  };
}

interface ToolFigures {
  available: boolean;
  note: string;
  runs: number;
  wallMedianMs: number | null;
  cpuMedianMs: number | null;
  peakRssMiB: number | null;
  outputPrefixes: number | null;
  identicalToOurs: boolean | null;
}

function summarise(runs: readonly ProcessRun[], note: string, outputPrefixes: number, identical: boolean | null) {
  const cpu = runs.flatMap((run) => (run.cpuMs === null ? [] : [run.cpuMs]));
  const rss = runs.flatMap((run) => (run.peakRssMiB === null ? [] : [run.peakRssMiB]));
  return {
    available: true,
    note,
    runs: runs.length,
    wallMedianMs: round(median(runs.map((run) => run.wallMs))),
    cpuMedianMs: cpu.length === 0 ? null : round(median(cpu)),
    peakRssMiB: rss.length === 0 ? null : round(Math.max(...rss)),
    outputPrefixes,
    identicalToOurs: identical,
  } satisfies ToolFigures;
}

const missing = (note: string): ToolFigures => ({
  available: false,
  note,
  runs: 0,
  wallMedianMs: null,
  cpuMedianMs: null,
  peakRssMiB: null,
  outputPrefixes: null,
  identicalToOurs: null,
});

function which(command: string): string | undefined {
  const result = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** cidr-tools from the npm registry into `dir`; undefined (and why) when npm cannot get it. */
function installCidrTools(dir: string): { driver?: string; note: string } {
  const npm = spawnSync(
    "npm",
    [
      "install",
      "--no-save",
      "--no-audit",
      "--no-fund",
      "--silent",
      "--prefix",
      dir,
      `cidr-tools@${CIDR_TOOLS_VERSION}`,
    ],
    { encoding: "utf8" },
  );
  if (npm.status !== 0)
    return { note: `not installed: npm install cidr-tools failed (${npm.stderr.trim().slice(0, 200)})` };
  const version = (
    JSON.parse(readFileSync(join(dir, "node_modules", "cidr-tools", "package.json"), "utf8")) as { version: string }
  ).version;
  const driver = join(dir, "merge.mjs");
  // The whole job as a user of the library writes it: read the lines, mergeCidr, print JSON.
  writeFileSync(
    driver,
    `import { readFileSync } from "node:fs";
import { mergeCidr } from "cidr-tools";
const lines = readFileSync(process.argv[2], "utf8").split("\\n").filter((line) => line !== "");
process.stdout.write(JSON.stringify(mergeCidr(lines)) + "\\n");
`,
  );
  return { driver, note: `cidr-tools ${version} (mergeCidr), node ${process.version}` };
}

const PYTHON = `
import hashlib, ipaddress, json, sys
with open(sys.argv[1]) as handle:
    nets = [ipaddress.ip_network(line) for line in handle.read().split("\\n") if line]
out = list(ipaddress.collapse_addresses(nets))
print(json.dumps({"count": len(out), "sha256": hashlib.sha256("\\n".join(str(n) for n in out).encode()).hexdigest(), "version": sys.version.split()[0]}))
`;

interface MergeFigures {
  inputPrefixes: number;
  lengths: string;
  seed: number;
  mergedPrefixes: number;
  python: { checked: boolean; version: string | null; identical: boolean | null; note: string };
  ours: ToolFigures;
  iprange: ToolFigures;
  cidrTools: ToolFigures;
  oursOverIprange: number | null;
  cidrToolsOverOurs: number | null;
  loadBefore: string;
  loadAfter: string;
}

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

function benchMerge(scratch: string, skipPython: boolean): MergeFigures {
  const loadBefore = load();
  const file = join(scratch, "prefixes.txt");
  writeFileSync(file, randomPrefixes(MERGE_COUNT, MERGE_SEED, MERGE_LENGTHS).map(formatPrefix).join("\n") + "\n");
  const iprangePath = which("iprange");
  const cidrTools = installCidrTools(join(scratch, "cidr-tools"));

  const ours: ProcessRun[] = [];
  const iprange: ProcessRun[] = [];
  const peers: ProcessRun[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    ours.push(
      measure(
        process.execPath,
        // Floor 0: a lossless merge, as iprange, cidr-tools and collapse_addresses do (the /16 default
        // floor of the sync would split every shorter prefix).
        [MAIN, "aggregate", "--prefixes-file", file, "--max-rules", "16777216", "--min-prefix-length", "0", "--json"],
        scratch,
      ),
    );
    if (iprangePath !== undefined) iprange.push(measure(iprangePath, ["--optimize", file], scratch));
    if (cidrTools.driver !== undefined && run < CIDR_TOOLS_RUNS)
      peers.push(measure(process.execPath, [cidrTools.driver, file], scratch));
  }
  const ourList = (JSON.parse((ours[0] as ProcessRun).stdout) as { prefixes: string[] }).prefixes;
  const ourText = ourList.join("\n");
  // iprange prints a /32 as the bare address.
  const iprangeList = iprange[0]?.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => (line.includes("/") ? line : `${line}/32`));
  const peerList = peers[0] === undefined ? undefined : (JSON.parse(peers[0].stdout) as string[]);

  let python: MergeFigures["python"] = {
    checked: false,
    version: null,
    identical: null,
    note: "skipped (--skip-python): the output was not checked against collapse_addresses in this run",
  };
  if (!skipPython) {
    const result = spawnSync("python3", ["-c", PYTHON, file], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
    if (result.status === 0) {
      const py = JSON.parse(result.stdout) as { count: number; sha256: string; version: string };
      python = {
        checked: true,
        version: py.version,
        identical: py.count === ourList.length && py.sha256 === sha256(ourText),
        note: `count ${py.count}, sha256 ${py.sha256.slice(0, 16)}…`,
      };
    } else {
      python = { ...python, note: `python3 failed: ${result.error?.message ?? result.stderr.trim().slice(0, 200)}` };
    }
  }
  const oursFigures = summarise(ours, `aggregate --json, node ${process.version}`, ourList.length, true);
  const iprangeFigures =
    iprangePath === undefined
      ? missing("not installed (apt-get install iprange): no C baseline in this run")
      : summarise(iprange, `${iprangePath} --optimize`, iprangeList?.length ?? 0, iprangeList?.join("\n") === ourText);
  const peerFigures =
    cidrTools.driver === undefined
      ? missing(cidrTools.note)
      : summarise(peers, cidrTools.note, peerList?.length ?? 0, peerList?.join("\n") === ourText);
  return {
    inputPrefixes: MERGE_COUNT,
    lengths: `/${MERGE_LENGTHS[0]}-/${MERGE_LENGTHS[1]}`,
    seed: MERGE_SEED,
    mergedPrefixes: ourList.length,
    python,
    ours: oursFigures,
    iprange: iprangeFigures,
    cidrTools: peerFigures,
    oursOverIprange:
      iprangeFigures.wallMedianMs === null ? null : round(oursFigures.wallMedianMs / iprangeFigures.wallMedianMs, 2),
    cidrToolsOverOurs:
      peerFigures.wallMedianMs === null ? null : round(peerFigures.wallMedianMs / oursFigures.wallMedianMs, 2),
    loadBefore,
    loadAfter: load(),
  };
}

interface StartupFigures {
  helpMs: number;
  helpCpuMs: number | null;
  serviceTagsMs: number;
  serviceTagsCpuMs: number | null;
  serviceTagsFile: string;
  runs: number;
  load: string;
}

function benchStartup(scratch: string): StartupFigures {
  const full = fixturePath("servicetags", FULL_FILE);
  const help: ProcessRun[] = [];
  const tags: ProcessRun[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    help.push(measure(process.execPath, [MAIN, "aggregate", "--help"], scratch));
    tags.push(
      measure(
        process.execPath,
        [MAIN, "aggregate", "--service-tags", full, "--region", "eastus", "--max-rules", "100", "--json"],
        scratch,
      ),
    );
  }
  const cpu = (runs: ProcessRun[]): number | null =>
    runs[0]?.cpuMs === null ? null : round(median(runs.map((run) => run.cpuMs ?? 0)));
  return {
    helpMs: round(median(help.map((run) => run.wallMs))),
    helpCpuMs: cpu(help),
    serviceTagsMs: round(median(tags.map((run) => run.wallMs))),
    serviceTagsCpuMs: cpu(tags),
    serviceTagsFile: FULL_FILE,
    runs: RUNS,
    load: load(),
  };
}

// ---- cover (fresh child per case) ----------------------------------------------------------------

interface CoverFigures {
  inputPrefixes: number;
  budget: number;
  mergedPrefixes: number;
  ms: number;
  cpuMs: number;
  nsPerCell: number;
  cpuNsPerCell: number;
  /** Median of the calls after the first (the whole cover: merge, trie, DP, traceback). */
  warmMs: number;
  warmNsPerCell: number;
  warmCpuNsPerCell: number;
  peakRssMiB: number;
  extraAddresses: number;
}

const rssMiB = (): number => round(process.resourceUsage().maxRSS / 1024);

function childCover(count: number, budget: number): CoverFigures {
  const targets = randomPrefixes(count, COVER_SEED, COVER_LENGTHS);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const cover = optimalCover(targets, { maxPrefixes: budget });
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu0);
  const cpuMs = (used.user + used.system) / 1000;
  const cells = cover.mergedPrefixes * budget;
  const peakRssMiB = rssMiB();
  // The same call again, once the optimiser has compiled the DP: the loop's steady-state constant.
  const warm: number[] = [];
  const warmCpu: number[] = [];
  for (let run = 0; run < COVER_WARM_RUNS; run += 1) {
    const warmCpu0 = process.cpuUsage();
    const warmStart = performance.now();
    optimalCover(targets, { maxPrefixes: budget });
    warm.push(performance.now() - warmStart);
    const warmUsed = process.cpuUsage(warmCpu0);
    warmCpu.push((warmUsed.user + warmUsed.system) / 1000);
  }
  return {
    inputPrefixes: count,
    budget,
    mergedPrefixes: cover.mergedPrefixes,
    ms: round(ms),
    cpuMs: round(cpuMs),
    nsPerCell: round((ms * 1e6) / cells, 3),
    cpuNsPerCell: round((cpuMs * 1e6) / cells, 3),
    warmMs: round(median(warm)),
    warmNsPerCell: round((median(warm) * 1e6) / cells, 3),
    warmCpuNsPerCell: round((median(warmCpu) * 1e6) / cells, 3),
    peakRssMiB,
    extraAddresses: cover.extraAddresses,
  };
}

interface GlobalFigures {
  tag: string;
  inputPrefixes: number;
  mergedPrefixes: number;
  budget: number;
  coldMs: number;
  warmMedianMs: number;
}

function childGlobal(): GlobalFigures {
  const path = fixturePath("servicetags", GLOBAL_FIXTURE);
  const file = parseServiceTags(readFileSync(path, "utf8"), { location: path });
  const tag = selectTags(file, { tagNames: ["AzureContainerRegistry"] }).tags[0];
  if (tag === undefined) throw new Error("the global tag is missing from the fixture");
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
    tag: tag.name,
    inputPrefixes: tag.prefixes.length,
    mergedPrefixes: cover.mergedPrefixes,
    budget: GLOBAL_BUDGET,
    coldMs: round(coldMs, 2),
    warmMedianMs: round(median(warm), 3),
  };
}

function inChild(args: string[]): unknown {
  const result = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--child", ...args], {
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
    // Node reads NODE_EXTRA_CA_CERTS at start only: how the timer child trusts the loopback emulators.
    env: { ...process.env, NODE_EXTRA_CA_CERTS: tlsPaths.ca },
  });
  if (result.status !== 0) throw new Error(`bench child ${args.join(" ")} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as unknown;
}

// ---- timer invocation ------------------------------------------------------------------------------

interface TimerFigures {
  file: string;
  registryLocation: string;
  runs: number;
  coldTriggerToPatchMs: number;
  triggerToPatchMedianMs: number;
  networkMedianMs: number;
  excludingNetworkMedianMs: number;
  excludingNetworkRunsMs: number[];
  method: string;
  load: string;
}

/**
 * Outstanding-request intervals from Node's diagnostics channels: node:http(s) (the Azure SDK's
 * pipeline, the ledger's blob client, the token request) and undici (global fetch: the service-tags
 * download). The PATCH's start is the moment it leaves the process.
 */
function watchRequests() {
  const open = new Map<object, number>();
  const intervals: [number, number][] = [];
  let patchAt: number | undefined;
  const started = (key: object, method: string | undefined): void => {
    const now = performance.now();
    open.set(key, now);
    if (method === "PATCH" && patchAt === undefined) patchAt = now;
  };
  const finished = (key: object): void => {
    const from = open.get(key);
    if (from === undefined) return;
    open.delete(key);
    intervals.push([from, performance.now()]);
  };
  subscribe("http.client.request.start", (message) => {
    const { request } = message as { request: { method?: string } };
    started(request, request.method);
  });
  subscribe("http.client.response.finish", (message) => {
    finished((message as { request: object }).request);
  });
  subscribe("undici:request:create", (message) => {
    const { request } = message as { request: { method?: string } };
    started(request, request.method);
  });
  subscribe("undici:request:trailers", (message) => {
    finished((message as { request: object }).request);
  });
  subscribe("undici:request:error", (message) => {
    finished((message as { request: object }).request);
  });
  return {
    reset(): void {
      open.clear();
      intervals.length = 0;
      patchAt = undefined;
    },
    /** Trigger → PATCH, and the part of it with at least one request outstanding (intervals merged). */
    measure(trigger: number): { total: number; network: number } {
      if (patchAt === undefined) throw new Error("no PATCH was sent");
      const end = patchAt;
      const clipped = intervals
        .map(([from, to]): [number, number] => [Math.max(from, trigger), Math.min(to, end)])
        .filter(([from, to]) => to > from)
        .sort((a, b) => a[0] - b[0]);
      let network = 0;
      let cursor = trigger;
      for (const [from, to] of clipped) {
        const start = Math.max(from, cursor);
        if (to > start) network += to - start;
        cursor = Math.max(cursor, to);
      }
      return { total: end - trigger, network };
    },
  };
}

function timerInfo(): Timer {
  const now = new Date();
  return {
    isPastDue: false,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: now.toISOString(), next: now.toISOString(), lastUpdated: now.toISOString() },
  };
}

async function benchTimer(): Promise<TimerFigures> {
  // Loaded here: the cover children measure their peak RSS without the SDKs in memory.
  const [functions, { createTimerHandler }, { startAzurite }, { startHarness }] = await Promise.all([
    import("@azure/functions"),
    import("../src/app/timer-handler.js"),
    import("../test/support/azurite.js"),
    import("../test/support/harness.js"),
  ]);
  const { InvocationContext } = functions.default;
  const requests = watchRequests();
  const full = readFileSync(fixturePath("servicetags", FULL_FILE));
  const azurite = await startAzurite();
  const harness = await startHarness({ tags: { files: { [FULL_FILE]: full }, latest: FULL_FILE } });
  try {
    const id = harness.addRegistry({ name: `bench${randomBytes(3).toString("hex")}`, location: "eastus", ipRules: [] });
    const runtime = harness.runtime({
      TARGET_REGISTRIES: id,
      SERVICE_TAGS_URL: harness.tags.fileUrl(FULL_FILE),
      AzureWebJobsStorage: azurite.connectionString,
      LEDGER_CONTAINER: `bench-${randomBytes(4).toString("hex")}`,
    });
    const handler = createTimerHandler(runtime);
    const context = new InvocationContext({
      functionName: "allowlistSync",
      invocationId: "bench",
      logHandler: () => undefined,
    });
    const once = async (): Promise<{ total: number; network: number }> => {
      // Someone emptied the rules: every run has a PATCH to send (the owned rules are re-added).
      harness.arm.setIpRules(id, []);
      requests.reset();
      const trigger = performance.now();
      await handler(timerInfo(), context);
      return requests.measure(trigger);
    };
    const cold = await once();
    const warm: { total: number; network: number }[] = [];
    for (let run = 0; run < TIMER_RUNS; run += 1) warm.push(await once());
    const excluding = warm.map((run) => run.total - run.network);
    return {
      file: FULL_FILE,
      registryLocation: "eastus",
      runs: TIMER_RUNS,
      coldTriggerToPatchMs: round(cold.total),
      triggerToPatchMedianMs: round(median(warm.map((run) => run.total))),
      networkMedianMs: round(median(warm.map((run) => run.network))),
      excludingNetworkMedianMs: round(median(excluding)),
      excludingNetworkRunsMs: excluding.map((value) => round(value)),
      method:
        "trigger → first PATCH request start, minus every interval with an HTTP request outstanding (diagnostics channels of node:http and undici, merged). The emulators run in this process: their work happens inside those intervals and is subtracted with the network; ours done while a request is outstanding would be too (the sync's requests are sequential).",
      load: load(),
    };
  } finally {
    await harness.close();
    await azurite.stop();
  }
}

// ---- main ----------------------------------------------------------------------------------------

interface Report {
  node: string;
  cpu: string;
  cpus: number;
  loadAtStart: string;
  targets: typeof TARGETS;
  merge: MergeFigures;
  startup: StartupFigures;
  cover: CoverFigures[];
  globalTagCover: GlobalFigures;
  timer: TimerFigures;
  met: Record<string, boolean | null>;
  totalSeconds: number;
}

function verdicts(report: Omit<Report, "met" | "totalSeconds">): Record<string, boolean | null> {
  const { merge, startup, cover, globalTagCover, timer } = report;
  const k1000 = cover.find((figures) => figures.budget === 1_000);
  return {
    mergeIdenticalToPython: merge.python.identical,
    mergeVsIprange: merge.oursOverIprange === null ? null : merge.oursOverIprange <= TARGETS.mergeVsIprange,
    mergeVsCidrTools: merge.cidrToolsOverOurs === null ? null : merge.cidrToolsOverOurs >= TARGETS.mergeVsCidrTools,
    mergePeakRss: merge.ours.peakRssMiB === null ? null : merge.ours.peakRssMiB <= TARGETS.mergePeakRssMiB,
    helpStartup: startup.helpMs <= TARGETS.startupMs,
    serviceTagsStartup: startup.serviceTagsMs <= TARGETS.startupMs,
    coverNsPerCellFirstCall: k1000 === undefined ? null : k1000.nsPerCell <= TARGETS.coverNsPerCell,
    coverNsPerCellWarm: k1000 === undefined ? null : k1000.warmNsPerCell <= TARGETS.coverNsPerCell,
    globalCover: globalTagCover.coldMs < TARGETS.globalCoverMs,
    timer: timer.excludingNetworkMedianMs < TARGETS.timerMs,
  };
}

const show = (value: number | null, unit: string): string => (value === null ? "n/a" : `${value} ${unit}`);
const yes = (value: boolean | null): string => (value === null ? "not measured" : value ? "met" : "NOT met");

function table(report: Report): string {
  const { merge, startup, cover, globalTagCover: global, timer, met } = report;
  const tool = (figures: ToolFigures): string =>
    figures.available
      ? `${show(figures.wallMedianMs, "ms")} wall, ${show(figures.cpuMedianMs, "ms")} cpu, ${show(figures.peakRssMiB, "MiB")} peak (median of ${figures.runs})`
      : figures.note;
  const rows: [string, string, string, string][] = [
    ["case", "figure", "target", ""],
    [`merge ${merge.inputPrefixes.toLocaleString("en-US")} prefixes ${merge.lengths}: ours`, tool(merge.ours), "", ""],
    ["  firehol iprange", tool(merge.iprange), "", merge.iprange.available ? merge.iprange.note : ""],
    ["  cidr-tools", tool(merge.cidrTools), "", merge.cidrTools.available ? merge.cidrTools.note : ""],
    [
      "  ours ÷ iprange (wall)",
      show(merge.oursOverIprange, "x"),
      `<= ${TARGETS.mergeVsIprange}x`,
      yes(met.mergeVsIprange ?? null),
    ],
    [
      "  cidr-tools ÷ ours (wall)",
      show(merge.cidrToolsOverOurs, "x"),
      `>= ${TARGETS.mergeVsCidrTools}x`,
      yes(met.mergeVsCidrTools ?? null),
    ],
    [
      "  peak RSS, ours",
      show(merge.ours.peakRssMiB, "MiB"),
      `<= ${TARGETS.mergePeakRssMiB} MiB`,
      yes(met.mergePeakRss ?? null),
    ],
    [
      "  identical to Python collapse_addresses",
      merge.python.checked ? `${String(merge.python.identical)} (${merge.python.note})` : merge.python.note,
      "true",
      yes(met.mergeIdenticalToPython ?? null),
    ],
    [
      "  same output as iprange / cidr-tools",
      `${String(merge.iprange.identicalToOurs)} / ${String(merge.cidrTools.identicalToOurs)}`,
      "",
      "",
    ],
    [
      "aggregate --help, whole process",
      `${startup.helpMs} ms wall, ${show(startup.helpCpuMs, "ms")} cpu`,
      `<= ${TARGETS.startupMs} ms`,
      yes(met.helpStartup ?? null),
    ],
    [
      `aggregate --service-tags ${startup.serviceTagsFile} --region eastus`,
      `${startup.serviceTagsMs} ms wall, ${show(startup.serviceTagsCpuMs, "ms")} cpu`,
      `<= ${TARGETS.startupMs} ms`,
      yes(met.serviceTagsStartup ?? null),
    ],
  ];
  for (const figures of cover) {
    const target = figures.budget === 1_000 ? `<= ${TARGETS.coverNsPerCell} ns/cell` : "";
    rows.push([
      `cover ${figures.inputPrefixes.toLocaleString("en-US")} prefixes (${figures.mergedPrefixes.toLocaleString("en-US")} merged) to ${figures.budget}, first call`,
      `${figures.ms} ms, ${figures.nsPerCell} ns/cell wall; ${figures.cpuMs} ms, ${figures.cpuNsPerCell} ns/cell cpu; ${figures.peakRssMiB} MiB`,
      target,
      figures.budget === 1_000 ? yes(met.coverNsPerCellFirstCall ?? null) : "",
    ]);
    rows.push([
      `  warm (median of ${COVER_WARM_RUNS} more calls)`,
      `${figures.warmMs} ms, ${figures.warmNsPerCell} ns/cell wall; ${figures.warmCpuNsPerCell} ns/cell cpu`,
      target,
      figures.budget === 1_000 ? yes(met.coverNsPerCellWarm ?? null) : "",
    ]);
  }
  rows.push([
    `global tag (${global.inputPrefixes} prefixes) to ${global.budget}, cold`,
    `${global.coldMs} ms (warm median ${global.warmMedianMs} ms)`,
    `< ${TARGETS.globalCoverMs} ms`,
    yes(met.globalCover ?? null),
  ]);
  rows.push([
    `timer, one registry, ${timer.file}, warm`,
    `${timer.excludingNetworkMedianMs} ms excluding network (${timer.triggerToPatchMedianMs} ms trigger→PATCH, ${timer.networkMedianMs} ms requests outstanding; median of ${timer.runs}; cold ${timer.coldTriggerToPatchMs} ms)`,
    `< ${TARGETS.timerMs} ms`,
    yes(met.timer ?? null),
  ]);
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  const lines = rows.map((row) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] as number))
      .join("  ")
      .trimEnd(),
  );
  return [
    `node ${report.node} on ${report.cpus} x ${report.cpu}; load average (1, 5, 15 min) at start ${report.loadAtStart}, merge ${merge.loadBefore} → ${merge.loadAfter}, timer ${timer.load}`,
    "",
    ...lines,
    "",
    `timer method: ${timer.method}`,
    `targets met: ${Object.entries(met)
      .map(([name, value]) => `${name} ${yes(value)}`)
      .join(", ")}`,
    `(${report.totalSeconds} s)`,
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    const result =
      args[1] === "timer"
        ? await benchTimer()
        : args[1] === "global"
          ? childGlobal()
          : childCover(Number(args[2]), Number(args[3]));
    process.stdout.write(JSON.stringify(result));
    return;
  }
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run 'npm run build' first.`);
  const started = performance.now();
  const loadAtStart = load();
  const scratch = mkdtempSync(join(tmpdir(), "acr-bench-"));
  try {
    const cover = COVER_BUDGETS.map(
      (budget) => inChild(["cover", String(COVER_COUNT), String(budget)]) as CoverFigures,
    );
    const globalTagCover = inChild(["global"]) as GlobalFigures;
    const startup = benchStartup(scratch);
    const merge = benchMerge(scratch, args.includes("--skip-python"));
    const timer = inChild(["timer"]) as TimerFigures;
    const partial = {
      node: process.version,
      cpu: cpus()[0]?.model ?? "unknown",
      cpus: cpus().length,
      loadAtStart,
      targets: TARGETS,
      merge,
      startup,
      cover,
      globalTagCover,
      timer,
    };
    const report: Report = {
      ...partial,
      met: verdicts(partial),
      totalSeconds: round((performance.now() - started) / 1000),
    };
    const fanout = benchFanout();
    process.stdout.write(
      args.includes("--json")
        ? JSON.stringify({ ...report, fanout }, null, 2) + "\n"
        : table(report) + fanoutTable(fanout),
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
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

await main();
