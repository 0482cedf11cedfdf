import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturePath, projectRoot } from "../support/paths.js";
import { startHarness, type Harness } from "../support/harness.js";
import { LATEST_ALIAS_PATH } from "../support/servicetags-server.js";
import { tlsPaths } from "../support/tls.js";

/**
 * The operator's contract, point 3 (issue 9), checked on the built CLI as a separate process:
 * a source given by --service-tags / SERVICE_TAGS_URL is the only source. A value that is not an
 * https URL or an existing readable file exits 2 at start naming the setting; one that fails at
 * run time fails the run with the reason; the page and the alias are never asked in either case
 * (the loopback Download Center's request log is the witness).
 */

const run = promisify(execFile);
const MAIN = join(projectRoot(), "dist", "src", "cli", "main.js");
const PAGE_PATH = "/en-us/download/details.aspx";

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-explicit-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<Outcome> {
  const env = { PATH: process.env.PATH ?? "", ...harness.settings(), NODE_EXTRA_CA_CERTS: tlsPaths.ca, ...extraEnv };
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { env: env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

function target(): { id: string; state: string } {
  const id = harness.addRegistry({ name: `exp${randomBytes(4).toString("hex")}` });
  return { id, state: join(scratch, `${randomBytes(4).toString("hex")}.json`) };
}

/** Requests the Download Center stand-in received for the page or the alias while `action` ran. */
async function fallbackRequestsDuring(action: () => Promise<Outcome>): Promise<{ outcome: Outcome; asked: number }> {
  const before = harness.tags.requests.length;
  const outcome = await action();
  const asked = harness.tags.requests
    .slice(before)
    .filter((r) => r.path.startsWith(PAGE_PATH) || r.path === LATEST_ALIAS_PATH).length;
  return { outcome, asked };
}

describe("an explicit service-tags source is the only source", () => {
  it.each([
    ["a file that does not exist", ["--service-tags", "/nonexistent/ServiceTags_Public.json"], {}, /does not exist/],
    ["a plain http URL", [], { SERVICE_TAGS_URL: "http://127.0.0.1:9/ServiceTags_Public.json" }, /https/],
    ["an ftp URL", ["--service-tags", "ftp://example.invalid/tags.json"], {}, /ftp/],
    ["a directory", ["--service-tags", "<scratch>"], {}, /not a regular file/],
  ])("exits 2 at start naming the setting for %s", async (_label, flags, env, problem) => {
    const { id, state } = target();
    const args = flags.map((flag) => (flag === "<scratch>" ? scratch : flag));
    const { outcome, asked } = await fallbackRequestsDuring(() =>
      cli(["plan", "--registry", id, "--state", state, ...args], env),
    );
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("SERVICE_TAGS_URL (--service-tags)");
    expect(outcome.stderr).toMatch(problem);
    expect(outcome.stderr.trim().split("\n")).toHaveLength(1);
    expect(outcome.stdout).toBe("");
    expect(asked).toBe(0);
  });

  it("fails the run with the reason when an explicit https URL answers 404, asking no other source", async () => {
    const { id, state } = target();
    const missing = harness.tags.fileUrl("ServiceTags_Public_20990101.json");
    const { outcome, asked } = await fallbackRequestsDuring(() =>
      cli(["plan", "--registry", id, "--state", state, "--service-tags", missing]),
    );
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(missing);
    expect(outcome.stderr).toContain("HTTP 404");
    expect(outcome.stderr).toContain("only source");
    expect(asked).toBe(0);
    expect(harness.tags.requestsTo("/download/ServiceTags_Public_20990101.json")).toHaveLength(1);
  });

  it("fails the run with the reason when an explicit file is not a service-tags file", async () => {
    const { id, state } = target();
    const { outcome, asked } = await fallbackRequestsDuring(() =>
      cli(["plan", "--registry", id, "--state", state, "--service-tags", join(projectRoot(), "package.json")]),
    );
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain("schema");
    expect(asked).toBe(0);
  });

  it("uses a readable explicit file and nothing else", async () => {
    const { id, state } = target();
    const file = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
    const { outcome, asked } = await fallbackRequestsDuring(() =>
      cli(["plan", "--registry", id, "--state", state, "--service-tags", file]),
    );
    expect(outcome.stderr).toBe("");
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("ServiceTags_Public_20251020.acr.json");
    expect(asked).toBe(0);
  });

  it("uses the Download Center page when no explicit source is set", async () => {
    const { id, state } = target();
    const { outcome, asked } = await fallbackRequestsDuring(() =>
      cli(["plan", "--registry", id, "--state", state], { SERVICE_TAGS_URL: "" }),
    );
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain("ServiceTags_Public_20251020.json (details-page");
    expect(asked).toBeGreaterThan(0);
  });
});
