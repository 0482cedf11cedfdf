import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import type { Runtime } from "../../src/app/runtime.js";
import { GrantRefusedError } from "../../src/errors.js";
import type { GrantChange } from "../../src/grants/change.js";
import { runInvocation, type InvocationPorts, type TargetOutcome } from "../../src/sync/invocation.js";
import { createGrantId, type RunResult } from "../../src/sync/run.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

/**
 * Temporary grants end to end through the production runtime: the real SDK over HTTPS to the ARM
 * emulator (whose Date header is the run clock, moved by the tests instead of waiting), the real
 * blob ledger on Azurite, the real source chain, and telemetry to a loopback ingestion endpoint.
 */

const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const JAPAN_EAST_IPV4 = 11;
const HOUR = 3_600_000;
const START = Date.parse("2026-03-02T09:00:00.000Z");

let harness: Harness;
let ingestion: IngestionEndpoint;
let armNow = START;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  harness = await startHarness();
  ingestion = await startIngestionEndpoint();
  harness.arm.setClock(() => new Date(armNow));
});
afterAll(async () => {
  for (const runtime of runtimes) await (runtime.ports.telemetry as Telemetry).shutdown();
  await ingestion.close();
  await harness.close();
});
beforeEach(() => {
  armNow = START;
  harness.arm.clearFaults();
});

function setup(spec: { ruleLimit?: number; settings?: Record<string, string> } = {}) {
  const name = `grant${randomBytes(4).toString("hex")}`;
  const id = harness.addRegistry({ name, ipRules: PEOPLE, ruleLimit: spec.ruleLimit ?? 100 });
  const runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `grants-${randomBytes(6).toString("hex")}`,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    ...spec.settings,
  });
  runtimes.push(runtime);
  return { id, runtime };
}

async function invoke(
  runtime: Runtime,
  options: { grant?: GrantChange; actor?: string; ports?: Partial<InvocationPorts>; mode?: "plan" | "apply" } = {},
): Promise<TargetOutcome> {
  const [outcome] = await runInvocation(
    runtime.settings,
    { ...runtime.ports, ...options.ports },
    {
      mode: options.mode ?? "apply",
      trigger: options.grant === undefined ? "timer" : "cli",
      actor: options.actor ?? "timer",
      grant: options.grant,
    },
  );
  if (outcome === undefined) throw new Error("no outcome");
  return outcome;
}

async function ok(runtime: Runtime, options: Parameters<typeof invoke>[1] = {}): Promise<RunResult> {
  const outcome = await invoke(runtime, options);
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}

function add(rule: string, ttlMs: number, reason = "docker pull during incident 4711"): GrantChange {
  return { kind: "add", rule, ttlMs, reason, grantedBy: "cli:alice@laptop", id: createGrantId() };
}

const eventsFor = (name: string, registry: string) =>
  ingestion.events(name).filter((event) => event.properties.registry === registry);

describe("temporary grants against the emulated registry", () => {
  it("grants with one PATCH, records who, why and until when, lists it, and the next run after expiry removes it", async () => {
    const { id, runtime } = setup();
    await ok(runtime);
    const writes = harness.arm.writes;

    const granted = await ok(runtime, { grant: add("192.0.2.7/32", 8 * HOUR), actor: "cli:alice@laptop" });
    expect(granted.outcome).toBe("applied");
    expect(granted.grant?.kind).toBe("added");
    expect(harness.arm.writes).toBe(writes + 1);
    const rules = harness.arm.registry(id).ipRules;
    expect(rules.slice(0, 2)).toEqual(PEOPLE);
    expect(rules).toContain("192.0.2.7/32");
    expect(rules).toHaveLength(PEOPLE.length + JAPAN_EAST_IPV4 + 1);

    const ledger = await runtime.ports.ledger.read(id);
    expect(ledger?.grants).toEqual([
      {
        id: expect.stringMatching(/^g[0-9a-f]{12}$/),
        rule: "192.0.2.7/32",
        createdAt: "2026-03-02T09:00:00.000Z",
        expiresAt: "2026-03-02T17:00:00.000Z",
        grantedBy: "cli:alice@laptop",
        reason: "docker pull during incident 4711",
      },
    ]);
    expect(ledger?.ownedRules).toContain("192.0.2.7/32");
    const [added] = eventsFor("AllowlistGrantAdded", id);
    expect(added?.properties).toMatchObject({
      rule: "192.0.2.7/32",
      grantedBy: "cli:alice@laptop",
      reason: "docker pull during incident 4711",
      expiresAt: "2026-03-02T17:00:00.000Z",
      grantId: ledger?.grants?.[0]?.id,
    });

    // A run before the expiry keeps it and writes nothing.
    armNow = START + 7 * HOUR;
    expect((await ok(runtime)).outcome).toBe("unchanged");
    expect(harness.arm.registry(id).ipRules).toContain("192.0.2.7/32");

    armNow = START + 8 * HOUR;
    const expired = await ok(runtime);
    expect(expired.outcome).toBe("applied");
    expect(expired.plan.removes.map((r) => r.rule)).toEqual(["192.0.2.7/32"]);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.7/32");
    expect(harness.arm.registry(id).ipRules.slice(0, 2)).toEqual(PEOPLE);
    expect(harness.arm.writes).toBe(writes + 2);
    const after = await runtime.ports.ledger.read(id);
    expect(after?.grants ?? []).toEqual([]);
    expect(after?.ownedRules).not.toContain("192.0.2.7/32");
    expect(eventsFor("AllowlistGrantExpired", id).map((e) => [e.properties.rule, e.properties.revokedBy])).toEqual([
      ["192.0.2.7/32", ""],
    ]);
  });

  it("ends a grant early on revoke, with one PATCH, and says who revoked it", async () => {
    const { id, runtime } = setup();
    await ok(runtime, { grant: add("192.0.2.0/28", 4 * HOUR) });
    expect(harness.arm.registry(id).ipRules).toContain("192.0.2.0/28");
    const writes = harness.arm.writes;

    armNow = START + HOUR;
    const revoked = await ok(runtime, {
      grant: { kind: "revoke", rule: "192.0.2.0/28", revokedBy: "cli:bob@desk" },
      actor: "cli:bob@desk",
    });
    expect(revoked.outcome).toBe("applied");
    expect(revoked.grant?.kind).toBe("revoked");
    expect(harness.arm.writes).toBe(writes + 1);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.0/28");
    expect((await runtime.ports.ledger.read(id))?.grants ?? []).toEqual([]);
    expect(eventsFor("AllowlistGrantExpired", id).map((e) => e.properties.revokedBy)).toEqual(["cli:bob@desk"]);
  });

  it("refuses a grant when the cover has no rule to spare, with the figure and what would free room, and writes nothing", async () => {
    // Limit 13: 2 people's rules, headroom 5, and the 6 /16 blocks Japan East needs at the /16 floor.
    const { id, runtime } = setup({ ruleLimit: 13 });
    expect((await ok(runtime)).plan.counts).toMatchObject({ budget: 6, after: 8 });
    const writes = harness.arm.writes;
    const before = harness.arm.registry(id).ipRules;

    const outcome = await invoke(runtime, { grant: add("192.0.2.7/32", HOUR) });
    expect(outcome.ok).toBe(false);
    const error = !outcome.ok ? outcome.error : undefined;
    expect(error).toBeInstanceOf(GrantRefusedError);
    expect((error as GrantRefusedError).message).toContain(
      "the registry allows 13 IP rules; people's rules 2, pinned 0, active grants 0 and headroom 5 leave 6",
    );
    expect((error as GrantRefusedError).message).toContain("needs at least 6 rules");
    expect((error as GrantRefusedError).remedy).toMatch(/revoke a grant.*remove a hand-made rule.*SYNC_HEADROOM/);
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(id).ipRules).toEqual(before);
    expect((await runtime.ports.ledger.read(id))?.grants ?? []).toEqual([]);
  });

  it("reports an address a person's rule or the current cover already admits, and writes nothing", async () => {
    const { id, runtime } = setup();
    await ok(runtime);
    const writes = harness.arm.writes;

    const byPeople = await ok(runtime, { grant: add("198.51.100.77/32", HOUR) });
    expect(byPeople.outcome).toBe("unchanged");
    expect(byPeople.grant).toMatchObject({ kind: "already-admitted", by: "people", byRule: "198.51.100.0/24" });
    const byCover = await ok(runtime, { grant: add("40.79.190.5/32", HOUR) });
    expect(byCover.grant).toMatchObject({ kind: "already-admitted", by: "service", byRule: "40.79.190.0/25" });
    expect(harness.arm.writes).toBe(writes);
    expect((await runtime.ports.ledger.read(id))?.grants ?? []).toEqual([]);
    expect(eventsFor("AllowlistGrantAdded", id)).toEqual([]);
  });

  it("removes a grant whose expiry passed while ARM failed on the first run that succeeds, and reports it overdue meanwhile", async () => {
    const { id, runtime } = setup();
    await ok(runtime, { grant: add("192.0.2.9/32", 2 * HOUR) });

    armNow = START + 30 * HOUR;
    harness.arm.injectFault({ op: "get", registryId: id, times: 50, fault: { kind: "status", status: 503 } });
    const failed = await invoke(runtime);
    expect(failed.ok).toBe(false);
    expect(harness.arm.registry(id).ipRules).toContain("192.0.2.9/32");
    const overdue = eventsFor("AllowlistGrantOverdue", id);
    expect(overdue.map((e) => e.properties.rule)).toEqual(["192.0.2.9/32"]);
    expect(Number(overdue[0]?.properties.overdueMinutes)).toBeGreaterThan(0);
    harness.arm.clearFaults();

    const recovered = await ok(runtime);
    expect(recovered.outcome).toBe("applied");
    expect(recovered.plan.removes.map((r) => r.rule)).toEqual(["192.0.2.9/32"]);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.9/32");
    expect((await runtime.ports.ledger.read(id))?.grants ?? []).toEqual([]);
  });
});

describe("a grant while the service-tags file cannot be had", () => {
  it("reports the expired grant as overdue, and the first run with a file removes it", async () => {
    // An explicit source is the only source: when it fails, the run has no file.
    const file = "ServiceTags_Public_20251020.json";
    const { id, runtime } = setup({ settings: { SERVICE_TAGS_URL: harness.tags.fileUrl(file) } });
    await ok(runtime, { grant: add("192.0.2.12/32", HOUR) });
    armNow = START + 26 * HOUR;
    harness.tags.setFault(`/download/${file}`, { kind: "status", status: 503 });
    try {
      const failed = await invoke(runtime, { ports: { now: () => new Date(START + 26 * HOUR) } });
      expect(failed.ok).toBe(false);
    } finally {
      harness.tags.clearFaults();
    }
    const overdue = eventsFor("AllowlistGrantOverdue", id);
    expect(overdue.map((e) => [e.properties.rule, e.properties.overdueMinutes])).toEqual([
      ["192.0.2.12/32", String(25 * 60)],
    ]);
    expect(harness.arm.registry(id).ipRules).toContain("192.0.2.12/32");
    expect((await ok(runtime)).plan.removes.map((r) => r.rule)).toEqual(["192.0.2.12/32"]);
  });
});

describe("clock skew between runs", () => {
  it("decides expiry on ARM's clock, however far the machine's own clock is off", async () => {
    const { id, runtime } = setup();
    // A laptop three days ahead grants for one hour: the grant still starts at ARM's time.
    const ahead = () => new Date(Date.now() + 72 * HOUR);
    await ok(runtime, { grant: add("192.0.2.10/32", HOUR), ports: { now: ahead } });
    const grant = (await runtime.ports.ledger.read(id))?.grants?.[0];
    expect(grant?.createdAt).toBe("2026-03-02T09:00:00.000Z");
    expect(grant?.expiresAt).toBe("2026-03-02T10:00:00.000Z");

    // The function app, its clock two days behind, keeps it before the expiry and removes it after.
    const behind = () => new Date(Date.now() - 48 * HOUR);
    armNow = START + 59 * 60_000;
    expect((await ok(runtime, { ports: { now: behind } })).outcome).toBe("unchanged");
    armNow = START + HOUR;
    expect((await ok(runtime, { ports: { now: behind } })).plan.removes.map((r) => r.rule)).toEqual(["192.0.2.10/32"]);
  });

  it("never lets a later run's slower clock make an expired grant young again", async () => {
    const { id, runtime } = setup();
    await ok(runtime, { grant: add("192.0.2.11/32", HOUR) });

    // One run sees the grant expired (ARM at +2 h) but its PATCH fails: the claim before the PATCH records that clock.
    armNow = START + 2 * HOUR;
    harness.arm.injectFault({ op: "patch", registryId: id, times: 50, fault: { kind: "status", status: 500 } });
    expect((await invoke(runtime)).ok).toBe(false);
    harness.arm.clearFaults();
    expect((await runtime.ports.ledger.read(id))?.clockHighWater).toBe("2026-03-02T11:00:00.000Z");

    // The next run reaches an ARM front end whose clock is 90 minutes behind: still expired.
    armNow = START + 30 * 60_000;
    const next = await ok(runtime);
    expect(next.plan.grants.clock).toBe("2026-03-02T11:00:00.000Z");
    expect(next.plan.removes.map((r) => r.rule)).toEqual(["192.0.2.11/32"]);
    expect(harness.arm.registry(id).ipRules).not.toContain("192.0.2.11/32");
  });
});
