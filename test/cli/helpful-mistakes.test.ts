import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeSchema } from "../../src/cli/envelope.js";
import { projectRoot, fixturePath } from "../support/paths.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";

/**
 * Contract points 4 (no silent broadening) and 5 (helpful mistakes) on the built CLI, as a separate
 * process. None of these reach Azure: they stop at the settings, the flags or a local file.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/mistakes";

let scratch = "";
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "cli-mistakes-"));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  // No ARM endpoint or identity: a run that got past the checks would fail differently (exit 1).
  return runBuiltCli(args, { HOME: scratch, SERVICE_TAGS_URL: SERVICE_TAGS, ...env });
}

function oneLine(stderr: string): string {
  expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(stderr).toMatch(/^acr-allowlist-sync: /);
  return stderr;
}

function file(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe("no silent broadening (point 4)", () => {
  it.each([
    [
      "a pinned rule wider than the floor",
      ["--pinned-rules", "0.0.0.0/0"],
      /SYNC_PINNED_RULES \(--pinned-rules\).*\/0, wider than SYNC_MIN_PREFIX_LENGTH \/16/,
    ],
    [
      "a pinned /8 under a /12 floor",
      ["--pinned-rules", "10.0.0.0/8", "--min-prefix-length", "12"],
      /SYNC_PINNED_RULES.*10\.0\.0\.0\/8/,
    ],
    ["an invalid address", ["--pinned-rules", "300.1.1.1"], /SYNC_PINNED_RULES.*300\.1\.1\.1/],
    [
      "host bits set",
      ["--pinned-rules", "203.0.113.10/24"],
      /SYNC_PINNED_RULES.*203\.0\.113\.10\/24.*not a valid IPv4 rule/,
    ],
  ])("exits 2 at start naming SYNC_PINNED_RULES for %s", async (_what, flags, message) => {
    const outcome = await cli(["plan", "--registry", REGISTRY, ...flags]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toMatch(message);
  });

  it("names TARGET_REGISTRIES for a wide pinned rule in a registry's own entry", async () => {
    const outcome = await cli(["plan"], {
      TARGET_REGISTRIES: JSON.stringify([{ id: REGISTRY, pinnedRules: ["0.0.0.0/1"] }]),
    });
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toMatch(/TARGET_REGISTRIES.*pinnedRules of mistakes.*0\.0\.0\.0\/1/);
  });

  it("names SYNC_PINNED_RULES when only discovered registries would get it (no TARGET_REGISTRIES)", async () => {
    const outcome = await cli([
      "plan",
      "--discover",
      "--discovery-tag",
      "team=platform",
      "--pinned-rules",
      "0.0.0.0/0",
    ]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toMatch(/SYNC_PINNED_RULES.*0\.0\.0\.0\/0.*wider than SYNC_MIN_PREFIX_LENGTH/);
  });

  it("exits 2 naming --state for an empty --state, with the envelope under --json", async () => {
    const outcome = await cli(["apply", "--registry", REGISTRY, "--state", "", "--json"]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toContain("--state");
    expect(envelopeSchema.parse(JSON.parse(outcome.stdout))).toMatchObject({
      results: [],
      error: { code: "InvalidConfiguration" },
    });
  });

  it("uses the sync's /16 floor by default in aggregate, and warns when extra addresses exceed the target", async () => {
    const prefixes = file("spread.txt", "10.0.0.1\n10.0.255.1\n10.1.0.1\n");
    const outcome = await cli(["aggregate", "--prefixes-file", prefixes, "--max-rules", "2", "--json"]);
    expect(outcome.code).toBe(0);
    const json = JSON.parse(outcome.stdout) as { prefixes: string[]; extraAddresses: number; targetAddresses: number };
    // Three addresses, two of them 65,280 apart: any 2-rule cover admits thousands of extra addresses.
    expect(json.prefixes.every((prefix) => Number(prefix.split("/")[1]) >= 16)).toBe(true);
    expect(oneLine(outcome.stderr)).toMatch(
      /warning: the cover admits [\d,]+ extra addresses, more than the 3 target addresses/,
    );
  });

  it("stays silent on stderr when the cover admits no more extra addresses than target addresses", async () => {
    const prefixes = file("tight.txt", "10.0.0.0/24\n10.0.1.0/25\n");
    const outcome = await cli(["aggregate", "--prefixes-file", prefixes, "--max-rules", "1"]);
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toBe("");
  });
});

describe("helpful mistakes (point 5)", () => {
  it("exits 2 with 'did you mean' for a mistyped region", async () => {
    const outcome = await cli(["aggregate", "--service-tags", SERVICE_TAGS, "--region", "eastuss", "--max-rules", "5"]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toMatch(/did you mean eastus(, |\?)/);
  });

  it("exits 2 with 'did you mean' for a mistyped tag name", async () => {
    const outcome = await cli([
      "aggregate",
      "--service-tags",
      SERVICE_TAGS,
      "--tag",
      "AzureContainerRegistry.WestEurop",
      "--max-rules",
      "5",
    ]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toMatch(/did you mean AzureContainerRegistry\.WestEurope/);
  });

  it("lists the file's ACR regions with their prefix counts", async () => {
    const text = await cli(["regions", "--service-tags", SERVICE_TAGS]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\s+eastus\s+13\s+9\s+AzureContainerRegistry\.EastUS /m);
    const json = await cli(["regions", "--service-tags", SERVICE_TAGS, "--json"]);
    const parsed = JSON.parse(json.stdout) as {
      regions: { region: string; ipv4Prefixes: number; ipv6Prefixes: number }[];
    };
    expect(parsed.regions.find((row) => row.region === "eastus")).toMatchObject({ ipv4Prefixes: 13, ipv6Prefixes: 9 });
    expect(parsed.regions.length).toBeGreaterThan(40);
  });

  it.each([
    ["plan", ["plan", "--registry", REGISTRY, "--headroom", "-5"], "--headroom"],
    ["plan with =", ["plan", "--registry", REGISTRY, "--headroom=-5"], "--headroom"],
    ["aggregate", ["aggregate", "--prefixes-file", "/dev/null", "--max-rules", "-3"], "--max-rules"],
  ])("gives its own message naming the flag for a negative number (%s)", async (_what, args, flag) => {
    const outcome = await cli(args);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toContain(`${flag} must not be negative, not '-`);
    expect(outcome.stderr).not.toMatch(/ambiguous|--headroom=-XYZ/);
  });

  it("prints the package version for --version", async () => {
    const { version } = JSON.parse(readFileSync(join(projectRoot(), "package.json"), "utf8")) as { version: string };
    const outcome = await cli(["--version"]);
    expect(outcome).toMatchObject({ code: 0, stdout: `acr-allowlist-sync ${version}\n`, stderr: "" });
  });

  it.each(["plan", "apply", "history", "rollback", "status", "freeze", "unfreeze", "release", "regions", "aggregate"])(
    "gives every flag of '%s' a line of help",
    async (command) => {
      const outcome = await cli([command, "--help"]);
      expect(outcome.code).toBe(0);
      const flagLines = outcome.stdout.split("\n").filter((line) => /^\s+(-\w, )?--[a-z]/.test(line));
      expect(flagLines.length).toBeGreaterThan(0);
      // Each flag named anywhere in the help has its own line that starts with it.
      const named = new Set([...outcome.stdout.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1]));
      const documented = new Set(flagLines.map((line) => /--([a-z][a-z-]*)/.exec(line)?.[1]));
      for (const flag of named) expect(documented, `--${flag ?? ""} of ${command}`).toContain(flag);
    },
  );

  it("refuses a sync flag given to history, which only takes its own", async () => {
    const outcome = await cli(["history", "--registry", REGISTRY, "--headroom", "5"]);
    expect(outcome.code).toBe(2);
    expect(oneLine(outcome.stderr)).toContain("Unknown option '--headroom'");
  });

  it.each([
    ["empty", ""],
    ["comment-only", "# nothing here\n\n# still nothing\n"],
    ["IPv6-only", "2603:1030::/48\n2603:1040::/48\n"],
  ])("exits 1 with 'no IPv4 prefixes' for an %s --prefixes-file", async (_what, text) => {
    const outcome = await cli(["aggregate", "--prefixes-file", file(`${_what}.txt`, text), "--max-rules", "5"]);
    expect(outcome.code).toBe(1);
    expect(oneLine(outcome.stderr)).toContain("no IPv4 prefixes");
  });
});
