import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatAddress } from "../../src/prefixes/ipv4.js";
import { fixturePath, projectRoot } from "../support/paths.js";

/**
 * The limits of `aggregate`, checked on the built CLI as a separate process: the work bound is
 * refused at once with the figure, a million-prefix tag does not overflow the stack, and the
 * commands that do not talk to Azure do not load the Azure SDKs (counted with a module hook).
 * dist/ is built by the global setup.
 */

const run = promisify(execFile);
const MAIN = join(projectRoot(), "dist", "src", "cli", "main.js");
const FULL_FILE = fixturePath("servicetags", "ServiceTags_Public_20230102.json");

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let scratch = "";
let register = "";

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "aggregate-limits-"));
  // A resolve hook (it runs on Node's loader thread) that appends every module URL to MODULE_LOG.
  const hooks = join(scratch, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.MODULE_LOG, resolved.url + "\\n");
  return resolved;
}
`,
  );
  register = join(scratch, "register.mjs");
  writeFileSync(
    register,
    `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

async function cli(args: readonly string[], nodeOptions: readonly string[] = [], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [...nodeOptions, MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr } satisfies Outcome;
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" } satisfies Outcome;
  }
}

/** Runs the CLI and returns the URLs of every module it imported (ours, Node's and packages'). */
async function loadedModules(args: readonly string[]): Promise<{ outcome: Outcome; modules: string[] }> {
  const log = join(scratch, `modules-${Math.random().toString(36).slice(2)}.log`);
  writeFileSync(log, "");
  const outcome = await cli(args, ["--import", pathToFileURL(register).href], { MODULE_LOG: log });
  const modules = [
    ...new Set(
      readFileSync(log, "utf8")
        .split("\n")
        .filter((line) => line !== ""),
    ),
  ];
  return { outcome, modules };
}

const packagesOf = (modules: readonly string[]): string[] => [
  ...new Set(modules.flatMap((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1] ?? [])),
];
const SDK = /^@azure\/|^@opentelemetry\//;

describe("aggregate at the limits (built CLI)", () => {
  it("refuses at once, exit 2, a cover whose work is over the bound, saying the figure and the largest budget", async () => {
    // 60,000 separate /32s to 40,000 rules: 2.4·10^9 units of work.
    const lines = Array.from({ length: 60_000 }, (_, index) => formatAddress(0x0a000000 + index * 4));
    const file = join(scratch, "separate.txt");
    writeFileSync(file, lines.join("\n") + "\n");
    const outcome = await cli(["aggregate", "--prefixes-file", file, "--max-rules", "40000", "--json"]);
    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe("");
    expect(outcome.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(outcome.stderr).toMatch(
      /^acr-allowlist-sync: A cover of 60,000 prefixes in 40,000 rules is 2,400,000,000 units of work \(prefixes × rules\), over the bound of 2,000,000,000\. Allow at most 33,333 rules/,
    );
  });

  it("merges a service tag of 1,000,000 prefixes without overflowing the stack", async () => {
    const prefixes = Array.from({ length: 1_000_000 }, (_, index) => `${formatAddress(0x0a000000 + index)}/32`);
    const file = join(scratch, "million.json");
    writeFileSync(
      file,
      JSON.stringify({
        changeNumber: 1,
        cloud: "Public",
        values: [
          {
            name: "Million",
            id: "Million",
            properties: {
              changeNumber: 1,
              region: "",
              platform: "Azure",
              systemService: "",
              addressPrefixes: prefixes,
            },
          },
        ],
      }),
    );
    // Floor 0: the expected /13 is wider than the default /16 floor (contract point 4).
    const outcome = await cli([
      "aggregate",
      "--service-tags",
      file,
      "--tag",
      "Million",
      "--max-rules",
      "5",
      "--min-prefix-length",
      "0",
      "--json",
    ]);
    expect(outcome.stderr).toBe("");
    expect(outcome.code).toBe(0);
    const json = JSON.parse(outcome.stdout) as { inputPrefixes: number; mergedPrefixes: number; prefixes: string[] };
    expect(json).toMatchObject({ inputPrefixes: 1_000_000, mergedPrefixes: 7 });
    expect(json.prefixes).toHaveLength(5);
    expect(json.prefixes[0]).toBe("10.0.0.0/13");
  });

  it("loads no Azure SDK module for --help or aggregate --help", async () => {
    for (const args of [["--help"], ["aggregate", "--help"]]) {
      const { outcome, modules } = await loadedModules(args);
      expect(outcome.code).toBe(0);
      expect(modules.some((url) => url.endsWith("/dist/src/cli/main.js"))).toBe(true);
      expect(packagesOf(modules).filter((name) => SDK.test(name) || name === "zod")).toEqual([]);
      // Our entry, the dispatcher, aggregate and the prefix engine, and node: built-ins: not the ~500 of the SDKs.
      expect(modules.length).toBeLessThan(40);
    }
  });

  it("loads no Azure SDK module for the full service-tags file, and not even zod for a prefixes file", async () => {
    const tags = await loadedModules([
      "aggregate",
      "--service-tags",
      FULL_FILE,
      "--region",
      "eastus",
      "--max-rules",
      "50",
    ]);
    expect(tags.outcome.code).toBe(0);
    expect(tags.outcome.stdout).toMatch(/AzureContainerRegistry\.EastUS/);
    expect(packagesOf(tags.modules).filter((name) => SDK.test(name))).toEqual([]);
    expect(packagesOf(tags.modules)).toContain("zod");

    const file = join(scratch, "few.txt");
    writeFileSync(file, "10.0.0.0/24\n10.0.1.0/24\n");
    const list = await loadedModules(["aggregate", "--prefixes-file", file, "--max-rules", "1", "--json"]);
    expect(list.outcome.code).toBe(0);
    expect(JSON.parse(list.outcome.stdout)).toMatchObject({ prefixes: ["10.0.0.0/23"] });
    expect(packagesOf(list.modules).filter((name) => SDK.test(name) || name === "zod")).toEqual([]);
  });

  it("still loads the sync commands when one of them runs", async () => {
    const { outcome, modules } = await loadedModules(["plan", "--help"]);
    expect(outcome.code).toBe(0);
    expect(modules.length).toBeGreaterThan(100);
    expect(outcome.stdout).toMatch(/^Usage: acr-allowlist-sync plan /);
    expect(packagesOf(modules).filter((name) => SDK.test(name))).toContain("@azure/identity");
  });
});
