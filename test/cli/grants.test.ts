import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { envelopeSchema } from "../../src/cli/envelope.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startMyIpServer, type MyIpServer } from "../support/my-ip-server.js";
import { fixturePath, projectRoot } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * `grant`, `grants` and `revoke` as an operator runs them: the built CLI as a separate process,
 * against the HTTPS ARM emulator (whose Date header is the run clock, moved by the tests), a file
 * ledger, and a loopback HTTPS "what is my IP" endpoint for `--ip me`.
 */

const run = promisify(execFile);
const MAIN = join(projectRoot(), "dist", "src", "cli", "main.js");
const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const HOUR = 3_600_000;
const START = Date.parse("2026-03-02T09:00:00.000Z");

let harness: Harness;
let myIp: MyIpServer;
let scratch: string;
let armNow = START;

beforeAll(async () => {
  harness = await startHarness({ exportIdentityEnv: false });
  myIp = await startMyIpServer();
  harness.arm.setClock(() => new Date(armNow));
  scratch = mkdtempSync(join(tmpdir(), "cli-grants-"));
});
afterAll(async () => {
  await myIp.close();
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});
beforeEach(() => {
  armNow = START;
  myIp.answer("203.0.113.50");
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(args: string[]): Promise<Outcome> {
  const env = {
    PATH: process.env.PATH ?? "",
    ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
    NODE_EXTRA_CA_CERTS: tlsPaths.ca,
  };
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], { env: env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

function registry(ruleLimit = 100): { id: string; flags: string[] } {
  const id = harness.addRegistry({ name: `cligr${randomBytes(4).toString("hex")}`, ipRules: PEOPLE, ruleLimit });
  return { id, flags: ["--registry", id, "--state", join(scratch, `${randomBytes(4).toString("hex")}.json`)] };
}

function parse(outcome: Outcome) {
  return envelopeSchema.parse(JSON.parse(outcome.stdout));
}

describe("acr-allowlist-sync grant, grants and revoke, as a separate process", () => {
  it("grants with one PATCH, lists the grant, and the first apply after the expiry removes it", async () => {
    const { id, flags } = registry();
    expect((await cli(["apply", ...flags])).code).toBe(0);
    const writes = harness.arm.writes;

    const granted = await cli(["grant", ...flags, "--ip", "192.0.2.7", "--ttl", "8h", "--reason", "portal access"]);
    expect(granted.stderr).toBe("");
    expect(granted.code).toBe(0);
    expect(granted.stdout).toContain("Granted 192.0.2.7/32 until 2026-03-02T17:00:00.000Z");
    expect(harness.arm.writes).toBe(writes + 1);
    expect(harness.arm.registry(id).ipRules).toContain("192.0.2.7/32");
    expect(harness.arm.registry(id).ipRules.slice(0, 2)).toEqual(PEOPLE);

    const listed = await cli(["grants", ...flags, "--json"]);
    expect(listed.code).toBe(0);
    const value = parse(listed);
    expect(value.command).toBe("grants");
    expect(value.results[0]).toMatchObject({ registry: id, ok: true, outcome: "unchanged", plan: null, error: null });
    expect(value.results[0]?.grants).toEqual([
      {
        id: expect.stringMatching(/^g[0-9a-f]{12}$/),
        rule: "192.0.2.7/32",
        createdAt: "2026-03-02T09:00:00.000Z",
        expiresAt: "2026-03-02T17:00:00.000Z",
        grantedBy: expect.stringMatching(/^cli:/),
        reason: "portal access",
        // The test's ARM clock is in 2026-03; by this machine's clock the grant may be long over.
        status: Date.now() < Date.parse("2026-03-02T17:00:00.000Z") ? "active" : "expired",
      },
    ]);
    const text = await cli(["grants", ...flags]);
    expect(text.stdout).toMatch(/192\.0\.2\.7\/32 .*by cli:.*portal access/);

    armNow = START + 8 * HOUR;
    const expired = await cli(["apply", ...flags, "--json"]);
    expect(expired.code).toBe(0);
    const applied = parse(expired).results[0];
    expect(applied?.outcome).toBe("applied");
    expect((applied?.plan as { removes: { rule: string }[] }).removes.map((r) => r.rule)).toEqual(["192.0.2.7/32"]);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.7/32");
    expect(parse(await cli(["grants", ...flags, "--json"])).results[0]?.grants).toEqual([]);
  });

  it("asks the configured endpoint for 'me', shows the answer before using it, and grants that address", async () => {
    const { id, flags } = registry();
    const outcome = await cli([
      "grant",
      ...flags,
      "--ip",
      "me",
      "--my-ip-url",
      `${myIp.url}?format=json`,
      "--ttl",
      "30m",
      "--reason",
      "docker pull from the laptop",
      "--json",
    ]);
    expect(outcome.code).toBe(0);
    expect(outcome.stderr).toContain(`says this machine's public address is 203.0.113.50.`);
    const result = parse(outcome).results[0];
    expect(result?.outcome).toBe("applied");
    expect(result?.grant).toMatchObject({ kind: "added", grant: { rule: "203.0.113.50/32" } });
    expect(harness.arm.registry(id).ipRules).toContain("203.0.113.50/32");

    myIp.answer("10.1.2.3");
    const privateAnswer = await cli([
      "grant",
      ...flags,
      "--ip",
      "me",
      "--my-ip-url",
      myIp.url,
      "--ttl",
      "1h",
      "--reason",
      "xyz",
    ]);
    expect(privateAnswer.code).toBe(1);
    expect(privateAnswer.stderr).toContain("not a public address");
  });

  it("refuses a grant with no room left, with the figure, exit 1 and the envelope, and writes nothing", async () => {
    // Limit 13: 2 people's rules, headroom 5, 6 rules the cover needs at the /16 floor.
    const { id, flags } = registry(13);
    expect((await cli(["apply", ...flags])).code).toBe(0);
    const writes = harness.arm.writes;
    const outcome = await cli(["grant", ...flags, "--ip", "192.0.2.7", "--ttl", "1h", "--reason", "xyz", "--json"]);
    expect(outcome.code).toBe(1);
    const result = parse(outcome).results[0];
    expect(result).toMatchObject({ ok: false, outcome: "refused", grant: null });
    expect(result?.error?.code).toBe("GrantNoRoom");
    expect(result?.error?.message).toContain("allows 13 IP rules");
    expect(result?.error?.message).toContain("needs at least 6 rules");
    expect(result?.error?.remedy).toContain("revoke a grant");
    expect(outcome.stderr).toContain("No room for a grant of 192.0.2.7/32");
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.7/32");
  });

  it("reports an address that a person's rule already admits, without a write", async () => {
    const { flags } = registry();
    const writes = harness.arm.writes;
    const outcome = await cli(["grant", ...flags, "--ip", "198.51.100.77", "--ttl", "1h", "--reason", "xyz"]);
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain(
      "Nothing written: 198.51.100.77/32 is already admitted by a person's rule 198.51.100.0/24.",
    );
    expect(harness.arm.writes).toBe(writes);
  });

  it("refuses wide prefixes without --allow-wide, over-long ttls and missing reasons as usage errors (exit 2)", async () => {
    const { id, flags } = registry();
    const wide = await cli(["grant", ...flags, "--ip", "192.0.2.0/23", "--ttl", "1h", "--reason", "xyz", "--json"]);
    expect(wide.code).toBe(2);
    expect(parse(wide)).toMatchObject({ results: [], error: { code: "Usage" } });
    expect(wide.stderr).toContain("--allow-wide");
    const long = await cli(["grant", ...flags, "--ip", "192.0.2.7", "--ttl", "8d", "--reason", "xyz"]);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain("7 days");
    const noReason = await cli(["grant", ...flags, "--ip", "192.0.2.7", "--ttl", "1h"]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("--reason");
    // Refused before anything was read or written.
    expect(harness.arm.requests.filter((r) => r.registryId?.toLowerCase() === id.toLowerCase())).toEqual([]);
  });

  it("revokes a grant early with one PATCH, and refuses to revoke one that does not exist", async () => {
    const { id, flags } = registry();
    expect((await cli(["grant", ...flags, "--ip", "192.0.2.0/28", "--ttl", "2d", "--reason", "vpn egress"])).code).toBe(
      0,
    );
    const writes = harness.arm.writes;
    const revoked = await cli(["revoke", ...flags, "--ip", "192.0.2.0/28", "--json"]);
    expect(revoked.code).toBe(0);
    expect(parse(revoked).results[0]).toMatchObject({ outcome: "applied", grant: { kind: "revoked" } });
    expect(harness.arm.writes).toBe(writes + 1);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.0/28");

    const missing = await cli(["revoke", ...flags, "--ip", "192.0.2.0/28"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("No active grant of 192.0.2.0/28");
  });

  it("documents every flag of the three commands in their help", async () => {
    for (const command of ["grant", "grants", "revoke"]) {
      const help = await cli([command, "--help"]);
      expect(help.code, command).toBe(0);
      expect(help.stdout).toContain(`Usage: acr-allowlist-sync ${command}`);
    }
    const grant = await cli(["grant", "--help"]);
    for (const flag of ["--ip", "--ttl", "--reason", "--allow-wide", "--my-ip-url", "--state", "--json"])
      expect(grant.stdout, flag).toContain(flag);
    expect((await cli(["--help"])).stdout).toMatch(/grant[\s\S]*grants[\s\S]*revoke/);
  });
});
