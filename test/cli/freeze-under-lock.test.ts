import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileLedgerStore } from "../../src/ledger/file-store.js";
import { BUILT_CLI, runBuiltCli } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * A freeze is read under the registry's lock: an apply that waits for the lock while an operator
 * freezes the registry is skipped once it gets the lock, and writes nothing. Built CLI, separate
 * processes; the lock is held by this process through the real file ledger store.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];

let harness: Harness;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  scratch = mkdtempSync(join(tmpdir(), "cli-freeze-lock-"));
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function env(): Record<string, string | undefined> {
  return {
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
    HOME: scratch,
    SYNC_LOCK_WAIT_MS: "120000",
  };
}

describe("a freeze made while an apply waits for the lock", () => {
  it("skips that apply once it gets the lock, and nothing is written", async () => {
    const id = harness.addRegistry({ name: `frz${randomBytes(4).toString("hex")}`, ipRules: PEOPLE });
    const state = join(scratch, `${randomBytes(4).toString("hex")}.json`);
    const other = createFileLedgerStore({ path: state, owner: "another run" });
    const lock = await other.acquireLock(id, { waitMs: 0 });
    const writes = harness.arm.writes;

    const child = spawn(process.execPath, [BUILT_CLI, "apply", "--registry", id, "--state", state, "--json"], {
      env: { PATH: process.env.PATH ?? "", ...env() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString("utf8");
          if (stderr.includes("waiting for the lock")) resolve();
        });
        child.on("exit", () => {
          reject(new Error(`apply ended before waiting for the lock: ${stderr}`));
        });
      });
      expect(stderr).toMatch(/^acr-allowlist-sync: waiting for the lock of frz[0-9a-f]+: another run holds it/m);

      const frozen = await runBuiltCli(
        ["freeze", "--registry", id, "--state", state, "--reason", "manual fix during incident 42"],
        env(),
      );
      expect(frozen.code, frozen.stderr).toBe(0);
    } finally {
      await lock.release();
    }

    expect(await exited).toBe(0);
    const value = JSON.parse(stdout) as { results: { outcome: string; freeze?: { reason: string } }[] };
    expect(value.results).toHaveLength(1);
    expect(value.results[0]).toMatchObject({
      outcome: "skipped",
      freeze: { reason: "manual fix during incident 42" },
    });
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    // No ledger entry and no audit entry: the skipped apply recorded nothing.
    expect(await other.read(id)).toBeUndefined();
    expect(await other.listAudit(id)).toEqual([]);
    expect(existsSync(`${state}.lock`)).toBe(false);
  });
});
