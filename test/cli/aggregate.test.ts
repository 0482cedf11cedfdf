import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { parsePrefix, type Prefix } from "../../src/prefixes/ipv4.js";
import { mergePrefixes } from "../../src/prefixes/merge.js";
import { fixturePath, projectRoot } from "../support/paths.js";
import { referenceOptimum, shapeProblems, uncoveredAddresses } from "../prefixes/oracles.js";

const run = promisify(execFile);
const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const KEYS = ["prefixes", "inputPrefixes", "mergedPrefixes", "targetAddresses", "extraAddresses", "skippedIPv6"];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...argv: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

interface AggregateJson {
  prefixes: string[];
  inputPrefixes: number;
  mergedPrefixes: number;
  targetAddresses: number;
  extraAddresses: number;
  skippedIPv6: number;
}

function parseJson(stdout: string): AggregateJson {
  expect(stdout.trim().split("\n")).toHaveLength(1);
  return JSON.parse(stdout) as AggregateJson;
}

const prefix = (text: string): Prefix => parsePrefix(text, { mode: "strict" }).prefix;

let scratch = "";
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "aggregate-test-"));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function scratchFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe("aggregate (in process)", () => {
  it("prints the exact JSON contract for one region", async () => {
    const outcome = await cli(
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--region",
      "eastus",
      "--max-rules",
      "100",
      "--json",
    );
    expect(outcome).toMatchObject({ code: 0, stderr: "" });
    const json = parseJson(outcome.stdout);
    expect(Object.keys(json)).toEqual(KEYS);
    expect(json.inputPrefixes).toBe(13);
    expect(json.skippedIPv6).toBe(9);
    expect(json.extraAddresses).toBe(0);
    expect(json.prefixes).toHaveLength(json.mergedPrefixes);
    expect(json.prefixes.every((text) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(text))).toBe(true);
  });

  it("prints an optimal cover within the budget for several regions", async () => {
    const regions = "eastus,eastus2,westus2,westeurope,northeurope";
    const outcome = await cli(
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--region",
      regions,
      "--max-rules",
      "12",
      "--min-prefix-length",
      "0",
      "--json",
    );
    expect(outcome.code).toBe(0);
    const json = parseJson(outcome.stdout);
    const read = await cli(
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--region",
      regions,
      "--max-rules",
      "1000",
      "--json",
    );
    const targets = parseJson(read.stdout).prefixes.map(prefix);
    const cover = json.prefixes.map(prefix);
    expect(cover.length).toBeLessThanOrEqual(12);
    expect(shapeProblems(cover, 0)).toEqual([]);
    expect(uncoveredAddresses(targets, cover)).toBe(0);
    expect(json.extraAddresses).toBe(referenceOptimum(mergePrefixes(targets), 12, 0));
    expect(json.mergedPrefixes).toBe(targets.length);
  });

  it("selects tags by name with --tag and respects the floor", async () => {
    const outcome = await cli(
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--tag",
      "AzureContainerRegistry",
      "--max-rules",
      "100",
      "--min-prefix-length",
      "12",
      "--json",
    );
    expect(outcome.code).toBe(0);
    const json = parseJson(outcome.stdout);
    expect(json.inputPrefixes).toBe(590);
    expect(json.prefixes.length).toBeLessThanOrEqual(100);
    expect(json.prefixes.every((text) => Number(text.split("/")[1]) >= 12)).toBe(true);
    expect(json.extraAddresses).toBe(referenceOptimum(mergePrefixes(await targetsOfGlobal()), 100, 12));
  });

  it("reads a prefixes file, skipping IPv6 lines and comments", async () => {
    const file = scratchFile("prefixes.txt", "# office\n10.0.0.0\n10.0.0.2/32\r\n10.0.1.0\n2603:1030::/48\n\n");
    const json = parseJson((await cli("aggregate", "--prefixes-file", file, "--max-rules", "2", "--json")).stdout);
    expect(json).toEqual({
      prefixes: ["10.0.0.0/30", "10.0.1.0/32"],
      inputPrefixes: 3,
      mergedPrefixes: 3,
      targetAddresses: 3,
      extraAddresses: 2,
      skippedIPv6: 1,
    });
  });

  it("prints a short human summary without --json", async () => {
    const file = scratchFile("summary.txt", "10.0.0.0\n10.0.0.2\n10.0.1.0\n");
    const outcome = await cli("aggregate", "--prefixes-file", file, "--max-rules", "2");
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("Read 3 IPv4 prefixes");
    expect(outcome.stdout).toContain("Optimal cover: 2 prefixes (budget 2, none shorter than /16), 2 extra addresses");
    expect(outcome.stdout).toMatch(/10\.0\.0\.0\/30\s+\+2 extra/);
  });

  it("prints the help of the command with exit code 0", async () => {
    const outcome = await cli("aggregate", "--help");
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("--max-rules K");
  });

  const failures: [string, string[], number, RegExp][] = [
    ["a missing --max-rules", ["--prefixes-file", "/dev/null"], 2, /--max-rules is required/],
    [
      "a budget that is not a positive integer",
      ["--prefixes-file", "/dev/null", "--max-rules", "1e3"],
      2,
      /--max-rules must be an integer/,
    ],
    [
      "a floor above 32",
      ["--prefixes-file", "/dev/null", "--max-rules", "5", "--min-prefix-length", "33"],
      2,
      /--min-prefix-length/,
    ],
    [
      "an unknown flag",
      ["--prefixes-file", "/dev/null", "--max-rules", "5", "--colour"],
      2,
      /Unknown option '--colour'/,
    ],
    ["a stray argument", ["eastus", "--max-rules", "5"], 2, /Unexpected argument 'eastus'/],
    [
      "both sources",
      ["--prefixes-file", "/dev/null", "--service-tags", SERVICE_TAGS, "--region", "eastus", "--max-rules", "5"],
      2,
      /either --service-tags or --prefixes-file/,
    ],
    [
      "service tags without a selection",
      ["--service-tags", SERVICE_TAGS, "--max-rules", "5"],
      2,
      /needs --region or --tag/,
    ],
    [
      "an empty region in the list",
      ["--service-tags", SERVICE_TAGS, "--region", "eastus,,westus", "--max-rules", "5"],
      2,
      /empty item/,
    ],
    [
      "an unreadable file",
      ["--prefixes-file", "/nonexistent/prefixes.txt", "--max-rules", "5"],
      2,
      /Cannot read --prefixes-file .*ENOENT/,
    ],
    [
      "a missing tag",
      ["--service-tags", SERVICE_TAGS, "--region", "eastus,atlantis", "--max-rules", "5"],
      2,
      /AzureContainerRegistry\.atlantis not found/,
    ],
    [
      "an infeasible budget under the floor",
      [
        "--service-tags",
        SERVICE_TAGS,
        "--region",
        "eastus,westeurope",
        "--max-rules",
        "10",
        "--min-prefix-length",
        "24",
      ],
      1,
      /at least 27 rules/,
    ],
    [
      "a cover over the extra-address cap",
      [
        "--service-tags",
        SERVICE_TAGS,
        "--region",
        "eastus,westeurope",
        "--max-rules",
        "10",
        "--max-extra-addresses",
        "1000",
        "--min-prefix-length",
        "0",
      ],
      1,
      /over the cap of 1000 addresses/,
    ],
  ];
  for (const [what, args, code, message] of failures) {
    it(`exits ${code} with one line on stderr for ${what}`, async () => {
      const outcome = await cli("aggregate", ...args);
      expect(outcome.code).toBe(code);
      expect(outcome.stdout).toBe("");
      expect(outcome.stderr).toMatch(message);
      expect(outcome.stderr.endsWith("\n")).toBe(true);
      expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
    });
  }

  it("exits 2 for an invalid prefix in a prefixes file, naming the line", async () => {
    const file = scratchFile("bad.txt", "10.0.0.0/8\n10.0.0.1/24\n");
    const outcome = await cli("aggregate", "--prefixes-file", file, "--max-rules", "5");
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(/line 2: '10\.0\.0\.1\/24' has host bits set/);
  });

  it("exits 1 for a service-tags file that is not JSON", async () => {
    const file = scratchFile("page.json", "<html>blocked</html>");
    const outcome = await cli("aggregate", "--service-tags", file, "--region", "eastus", "--max-rules", "5");
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/returned HTML/);
  });
});

describe("the dispatcher", () => {
  it("exits 2 for an unknown command, naming the known ones", async () => {
    const outcome = await cli("frobnicate");
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(
      /^acr-allowlist-sync: Unknown command 'frobnicate'\. Commands: plan, apply, history, rollback, status, freeze, unfreeze, release, regions, aggregate, canary;/,
    );
  });

  it("exits 2 when no command is given", async () => {
    expect((await cli()).code).toBe(2);
  });

  it("lists the commands for --help with exit code 0", async () => {
    const outcome = await cli("--help");
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toMatch(/aggregate\s+Merge IPv4 prefixes/);
  });
});

async function targetsOfGlobal(): Promise<Prefix[]> {
  const json = parseJson(
    (
      await cli(
        "aggregate",
        "--service-tags",
        SERVICE_TAGS,
        "--tag",
        "AzureContainerRegistry",
        "--max-rules",
        "1000",
        "--json",
      )
    ).stdout,
  );
  return json.prefixes.map(prefix);
}

describe("the built binary", () => {
  const root = projectRoot();
  const main = join(root, "dist", "src", "cli", "main.js");

  // dist/ is built from the sources under test by the global setup (test/support/global-setup.ts).

  async function binary(entry: string, ...args: string[]): Promise<Outcome> {
    try {
      const { stdout, stderr } = await run(process.execPath, [entry, ...args], { cwd: root });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
    }
  }

  it("prints the JSON contract and exits 0", async () => {
    const outcome = await binary(
      main,
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--region",
      "eastus,westus3",
      "--max-rules",
      "20",
      "--json",
    );
    expect(outcome.code).toBe(0);
    const json = parseJson(outcome.stdout);
    expect(Object.keys(json)).toEqual(KEYS);
    expect(json.prefixes.length).toBeLessThanOrEqual(20);
  });

  it("exits 2 with one line on stderr for bad usage", async () => {
    const outcome = await binary(main, "aggregate", "--max-rules", "ten");
    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe("");
    expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("exits 1 with one line on stderr when the budget is infeasible", async () => {
    const outcome = await binary(
      main,
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--region",
      "eastus",
      "--max-rules",
      "1",
      "--min-prefix-length",
      "24",
    );
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toMatch(/^acr-allowlist-sync: No cover .* at least \d+ rules are needed\./);
    expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("runs through a symlink, as npm links package bins", async () => {
    const link = join(scratch, "acr-allowlist-sync");
    symlinkSync(main, link);
    const outcome = await binary(link, "--help");
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("aggregate");
  });
});
