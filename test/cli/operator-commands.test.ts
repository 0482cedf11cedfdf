import { InvocationContext, type Timer } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { envelopeSchema, type Envelope, type EnvelopeResult } from "../../src/cli/envelope.js";
import type { RegistryStatus } from "../../src/cli/status.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { runBuiltCli, type CliRun } from "../support/cli-process.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";
import { fixturePath } from "../support/paths.js";
import { tlsPaths } from "../support/tls.js";

/**
 * The commands operators asked for, on the built CLI as a separate process: freeze / unfreeze (and
 * the function app's timer honouring a freeze made from the CLI with --state blob), status, release,
 * rollback --freeze, and the default state directory.
 */

const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];

let harness: Harness;
let ingestion: IngestionEndpoint;
let scratch: string;

beforeAll(async () => {
  harness = await startHarness();
  ingestion = await startIngestionEndpoint();
  scratch = mkdtempSync(join(tmpdir(), "cli-operator-"));
});
afterAll(async () => {
  await ingestion.close();
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
  return runBuiltCli(
    args,
    {
      ...harness.settings({ SERVICE_TAGS_URL: SERVICE_TAGS }),
      NODE_EXTRA_CA_CERTS: tlsPaths.ca,
      HOME: scratch,
      ...env,
    },
    cwd === undefined ? {} : { cwd },
  );
}

function registry(ipRules: readonly string[] = PEOPLE): string {
  return harness.addRegistry({ name: `op${randomBytes(4).toString("hex")}`, ipRules: [...ipRules] });
}

function stateFile(): string {
  return join(scratch, `${randomBytes(4).toString("hex")}.json`);
}

function only(outcome: CliRun): EnvelopeResult {
  const value: Envelope = envelopeSchema.parse(JSON.parse(outcome.stdout));
  expect(value.results).toHaveLength(1);
  const [result] = value.results;
  if (result === undefined) throw new Error("no result");
  return result;
}

async function statusOf(id: string, state: string): Promise<RegistryStatus> {
  const outcome = await cli(["status", "--registry", id, "--state", state, "--json"]);
  expect(outcome.code).toBe(0);
  return only(outcome).status as RegistryStatus;
}

function timer(): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue: false,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

describe("freeze and unfreeze", () => {
  it("makes apply skip a frozen registry, shows it in status, and syncs again after unfreeze", async () => {
    const id = registry();
    const state = stateFile();
    const frozen = await cli(["freeze", "--registry", id, "--state", state, "--reason", "incident 42", "--json"]);
    expect(frozen.code).toBe(0);
    expect(only(frozen)).toMatchObject({ ok: true, outcome: "applied", freeze: { reason: "incident 42" } });

    const apply = await cli(["apply", "--registry", id, "--state", state, "--json"]);
    expect(apply.code).toBe(0);
    expect(only(apply)).toMatchObject({ ok: true, outcome: "skipped", plan: { changed: true } });
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    expect((await statusOf(id, state)).frozen).toMatchObject({ reason: "incident 42" });

    const text = await cli(["apply", "--registry", id, "--state", state]);
    expect(text.stdout).toMatch(/Skipped op[0-9a-f]+: frozen by cli:.*incident 42/);

    expect((await cli(["unfreeze", "--registry", id, "--state", state])).code).toBe(0);
    expect(only(await cli(["apply", "--registry", id, "--state", state, "--json"])).outcome).toBe("applied");
    expect((await statusOf(id, state)).frozen).toBeNull();
  });

  it("needs --reason to freeze", async () => {
    const outcome = await cli(["freeze", "--registry", registry(), "--state", stateFile()]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain("--reason");
  });

  it("is honoured by the function app's timer when made from the CLI with --state blob, with a telemetry event", async () => {
    const id = registry();
    const container = `freeze-${randomBytes(5).toString("hex")}`;
    const storage = { AzureWebJobsStorage: String(process.env.AZURITE_CONNECTION_STRING), LEDGER_CONTAINER: container };
    const frozen = await cli(["freeze", "--registry", id, "--state", "blob", "--reason", "manual fix"], storage);
    expect(frozen.code).toBe(0);

    const runtime = harness.runtime({
      TARGET_REGISTRIES: id,
      ...storage,
      APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    });
    const logs: string[] = [];
    const context = new InvocationContext({
      functionName: "allowlistSync",
      invocationId: randomBytes(8).toString("hex"),
      logHandler: (_level, ...args) => logs.push(args.map(String).join(" ")),
    });
    await createTimerHandler(runtime)(timer(), context);
    await (runtime.ports.telemetry as Telemetry).shutdown();
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    expect(logs.join("\n")).toContain("skipped");
    const skipped = ingestion.events("AllowlistSyncSkipped").filter((event) => event.properties.registry === id);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]?.properties).toMatchObject({ reason: "manual fix", trigger: "timer" });
    expect(ingestion.events("AllowlistSyncCompleted").some((event) => event.properties.registry === id)).toBe(false);
    // The timer's run is recorded with the ledger, so the CLI's status shows it.
    const shown = only(await cli(["status", "--registry", id, "--state", "blob", "--json"], storage));
    expect(shown.status).toMatchObject({ lastRun: { outcome: "skipped", trigger: "timer" } });
  });
});

describe("status", () => {
  it("shows owned and people's rules, the last audit entry and drift", async () => {
    const id = registry();
    const state = stateFile();
    const before = await statusOf(id, state);
    expect(before).toMatchObject({
      managed: false,
      ownedRules: [],
      peopleRules: PEOPLE,
      lastAudit: null,
      frozen: null,
    });

    const applied = only(await cli(["apply", "--registry", id, "--state", state, "--json"]));
    const after = await statusOf(id, state);
    expect(after.ownedRules).toHaveLength(11);
    expect(after.peopleRules).toEqual(PEOPLE);
    expect(after.lastAudit).toMatchObject({ id: applied.auditId, operation: "sync" });
    expect(after.drift).toEqual([]);

    const removed = after.ownedRules[0] ?? "";
    harness.arm.setIpRules(
      id,
      harness.arm.registry(id).ipRules.filter((rule) => rule !== removed),
    );
    expect((await statusOf(id, state)).drift).toEqual([removed]);
    const text = await cli(["status", "--registry", id, "--state", state]);
    expect(text.stdout).toContain(`Drift: 1 owned rule removed by someone else (${removed})`);
  });

  it("shows the last run whatever it did: applied, unchanged (which writes no ledger), skipped, failed; a plan is not a run", async () => {
    const id = registry();
    const state = stateFile();
    expect((await statusOf(id, state)).lastRun).toBeNull();

    const applied = only(await cli(["apply", "--registry", id, "--state", state, "--json"]));
    const first = (await statusOf(id, state)).lastRun;
    expect(first).toMatchObject({ registryId: id, outcome: "applied", trigger: "cli", auditId: applied.auditId });
    expect(first?.actor).toMatch(/^cli:/);
    const ledgerUpdated = (await statusOf(id, state)).ledgerUpdatedAt;

    expect(only(await cli(["apply", "--registry", id, "--state", state, "--json"])).outcome).toBe("unchanged");
    const unchanged = await statusOf(id, state);
    expect(unchanged.lastRun).toMatchObject({ outcome: "unchanged", auditId: null, error: null });
    expect(Date.parse(unchanged.lastRun?.at ?? "")).toBeGreaterThanOrEqual(Date.parse(first?.at ?? ""));
    expect(unchanged.ledgerUpdatedAt).toBe(ledgerUpdated);

    const planned = await cli(["plan", "--registry", id, "--state", state, "--json"]);
    expect(planned.code).toBe(0);
    expect((await statusOf(id, state)).lastRun).toEqual(unchanged.lastRun);

    expect((await cli(["freeze", "--registry", id, "--state", state, "--reason", "change window"])).code).toBe(0);
    expect(only(await cli(["apply", "--registry", id, "--state", state, "--json"])).outcome).toBe("skipped");
    expect((await statusOf(id, state)).lastRun?.outcome).toBe("skipped");
    expect((await cli(["unfreeze", "--registry", id, "--state", state])).code).toBe(0);

    harness.arm.injectFault({
      op: "get",
      registryId: id,
      times: Infinity,
      fault: { kind: "status", status: 403, code: "AuthorizationFailed", message: "no read" },
    });
    try {
      expect(only(await cli(["apply", "--registry", id, "--state", state, "--json"])).outcome).toBe("failed");
    } finally {
      harness.arm.clearFaults();
    }
    const failed = await statusOf(id, state);
    expect(failed.lastRun).toMatchObject({ outcome: "failed", error: { code: "RegistryAccessDenied" } });
    const text = await cli(["status", "--registry", id, "--state", state]);
    expect(text.stdout).toMatch(/Last run: failed at \S+ by cli:\S+ \(\d+\.\d s\): RegistryAccessDenied: /);
  });
});

describe("rollback --freeze", () => {
  it("rolls back and freezes, so the timer does not undo it", async () => {
    const id = registry();
    const state = stateFile();
    const first = only(await cli(["apply", "--registry", id, "--state", state, "--json"]));
    harness.arm.setIpRules(id, PEOPLE);
    const outcome = await cli([
      "rollback",
      "--registry",
      id,
      "--state",
      state,
      "--to",
      String(first.auditId),
      "--yes",
      "--freeze",
      "--json",
    ]);
    expect(outcome.code).toBe(0);
    expect(only(outcome)).toMatchObject({ outcome: "applied", frozen: true });
    expect(harness.arm.registry(id).ipRules).toHaveLength(13);
    expect((await statusOf(id, state)).frozen?.reason).toBe(`rolled back to ${String(first.auditId)}`);
  });
});

describe("release", () => {
  it("forgets ownership without touching a rule, and freezes the registry", async () => {
    const id = registry();
    const state = stateFile();
    await cli(["apply", "--registry", id, "--state", state]);
    const rules = harness.arm.registry(id).ipRules;
    const outcome = await cli(["release", "--registry", id, "--state", state, "--json"]);
    expect(outcome.code).toBe(0);
    expect(only(outcome)).toMatchObject({ ok: true, outcome: "applied" });
    expect(harness.arm.registry(id).ipRules).toEqual(rules);
    const status = await statusOf(id, state);
    expect(status).toMatchObject({ managed: true, ownedRules: [] });
    expect(status.peopleRules).toHaveLength(13);
    expect(status.frozen?.reason).toContain("released");
  });

  it("removes the owned rules in one PATCH with --remove --yes, after a dry run without --yes", async () => {
    const id = registry();
    const state = stateFile();
    await cli(["apply", "--registry", id, "--state", state]);
    const dry = await cli(["release", "--registry", id, "--state", state, "--remove"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("Changes: 0 to add, 11 to remove.");
    expect(dry.stdout).toContain("Re-run with --yes");
    expect(harness.arm.registry(id).ipRules).toHaveLength(13);

    const writesBefore = harness.arm.requests.filter((r) => r.method === "PATCH").length;
    const outcome = await cli(["release", "--registry", id, "--state", state, "--remove", "--yes", "--json"]);
    expect(outcome.code).toBe(0);
    expect(only(outcome)).toMatchObject({ ok: true, outcome: "applied", plan: { source: { kind: "release" } } });
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    expect(harness.arm.requests.filter((r) => r.method === "PATCH").length - writesBefore).toBe(1);
    expect((await statusOf(id, state)).frozen?.reason).toContain("released");
  });
});

describe("the default state directory", () => {
  it("keeps the ledger in $XDG_STATE_HOME, and still reads the old ./.acr-allowlist-sync/ledger.json with a warning", async () => {
    const id = registry();
    const xdg = join(scratch, `xdg-${randomBytes(3).toString("hex")}`);
    expect((await cli(["apply", "--registry", id], { XDG_STATE_HOME: xdg })).code).toBe(0);
    expect(existsSync(join(xdg, "acr-allowlist-sync", "ledger.json"))).toBe(true);

    const home = join(scratch, `home-${randomBytes(3).toString("hex")}`);
    mkdirSync(home);
    expect((await cli(["apply", "--registry", id], { HOME: home })).code).toBe(0);
    expect(existsSync(join(home, ".local", "state", "acr-allowlist-sync", "ledger.json"))).toBe(true);

    const project = join(scratch, `project-${randomBytes(3).toString("hex")}`);
    mkdirSync(project);
    const other = registry();
    await cli(["apply", "--registry", other, "--state", join(".acr-allowlist-sync", "ledger.json")], {}, project);
    const plan = await cli(["plan", "--registry", other, "--json"], { HOME: home }, project);
    expect(plan.code).toBe(0);
    expect(plan.stderr).toMatch(/^acr-allowlist-sync: warning: reading the ledger from the old default/);
    expect(only(plan).plan).toMatchObject({ ownership: "ledger", changed: false });
  });
});
