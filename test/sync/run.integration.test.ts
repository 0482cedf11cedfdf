import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConvergenceError, GuardError, LockHeldError } from "../../src/errors.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { rollbackTarget } from "../../src/sync/run.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * One sync, end to end, through the real modules: the real SDK over HTTPS to the ARM emulator
 * with a token from the managed identity endpoint, the real source chain against the loopback
 * Download Center, and the real blob ledger on Azurite.
 */

const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const JAPAN_EAST_IPV4 = 11;
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});

function setup(spec: { ipRules?: string[]; name?: string } = {}) {
  const name = spec.name ?? `reg${randomBytes(4).toString("hex")}`;
  const id = harness.addRegistry({ name, ipRules: spec.ipRules ?? PEOPLE });
  const container = `ledger-${randomBytes(6).toString("hex")}`;
  const runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: container,
  });
  return { id, runtime };
}

async function run(runtime: ReturnType<typeof setup>["runtime"], mode: "plan" | "apply") {
  const [outcome] = await runInvocation(runtime.settings, runtime.ports, { mode, trigger: "test", actor: "test" });
  if (outcome === undefined) throw new Error("no outcome");
  if (!outcome.ok) throw outcome.error;
  return outcome.result;
}

describe("a sync run against the emulated registry", () => {
  it("adds the region's prefixes, keeps people's rules, records the change, and a second run writes nothing", async () => {
    const { id, runtime } = setup();
    const writesBefore = harness.arm.writes;

    const first = await run(runtime, "apply");
    expect(first.outcome).toBe("applied");
    expect(first.plan.ownership).toBe("adopted");
    expect(first.plan.adds).toHaveLength(JAPAN_EAST_IPV4);
    expect(first.plan.source.kind === "service-tags" && first.plan.source.origin.fileName).toBe(
      "ServiceTags_Public_20251020.json",
    );
    expect(first.plan.source.kind === "service-tags" && first.plan.source.origin.kind).toBe("details-page");
    const state = harness.arm.registry(id);
    expect(state.ipRules.slice(0, 2)).toEqual(PEOPLE);
    expect(state.ipRules).toHaveLength(PEOPLE.length + JAPAN_EAST_IPV4);
    expect(state.defaultAction).toBe("Deny");
    expect(harness.arm.writes).toBe(writesBefore + 1);
    expect(harness.arm.patchBodies(id)).toEqual([
      {
        properties: {
          networkRuleSet: {
            defaultAction: "Deny",
            ipRules: state.ipRules.map((value) => ({ action: "Allow", value })),
          },
        },
      },
    ]);

    const ledger = await runtime.ports.ledger.read(id);
    expect(ledger?.ownedRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(ledger?.pendingRules).toEqual([]);
    const audit = await runtime.ports.ledger.listAudit(id);
    expect(audit.map((entry) => entry.id)).toEqual([first.auditId]);
    expect(audit[0]?.before.ipRules).toEqual(PEOPLE);

    const second = await run(runtime, "apply");
    expect(second.outcome).toBe("unchanged");
    expect(second.plan.changed).toBe(false);
    expect(second.plan.ownership).toBe("ledger");
    expect(harness.arm.writes).toBe(writesBefore + 1);
    expect(harness.arm.registry(id).ipRules.slice(0, 2)).toEqual(PEOPLE);
  });

  it("never writes the registry or the ledger in a dry run", async () => {
    const { id, runtime } = setup();
    const writesBefore = harness.arm.writes;
    const result = await run(runtime, "plan");
    expect(result.outcome).toBe("dry-run");
    expect(result.plan.adds).toHaveLength(JAPAN_EAST_IPV4);
    expect(harness.arm.writes).toBe(writesBefore);
    expect(await runtime.ports.ledger.read(id)).toBeUndefined();
    expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
  });

  it("removes only its own rule when a prefix leaves the tag, even one a person added inside ACR ranges stays", async () => {
    const personInsideAcr = "40.79.190.7/32";
    const { id, runtime } = setup();
    await run(runtime, "apply");
    harness.arm.setIpRules(id, [...harness.arm.registry(id).ipRules, personInsideAcr]);

    const file = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8")) as {
      values: { name: string; properties: { changeNumber: number; addressPrefixes: string[] } }[];
    };
    const tag = file.values.find((value) => value.name === "AzureContainerRegistry.JapanEast");
    if (tag === undefined) throw new Error("fixture lacks JapanEast");
    tag.properties.addressPrefixes = tag.properties.addressPrefixes.filter((prefix) => prefix !== "40.79.190.0/25");
    tag.properties.changeNumber += 1;
    harness.tags.publish("ServiceTags_Public_20251027.json", JSON.stringify(file));
    try {
      const result = await run(runtime, "apply");
      expect(result.plan.removes.map((r) => r.rule)).toEqual(["40.79.190.0/25"]);
      const rules = harness.arm.registry(id).ipRules;
      expect(rules).not.toContain("40.79.190.0/25");
      expect(rules).toContain(personInsideAcr);
      expect(rules.slice(0, 2)).toEqual(PEOPLE);
    } finally {
      harness.tags.publish(
        "ServiceTags_Public_20251027.json",
        readServiceTagsFixture("ServiceTags_Public_20251020.acr.json"),
      );
    }
  });

  it("refuses a file older than the one applied before, and remembers the newer changeNumber", async () => {
    const { id, runtime } = setup();
    await run(runtime, "apply");
    expect((await runtime.ports.ledger.read(id))?.appliedTagChangeNumbers).toEqual({
      "AzureContainerRegistry.JapanEast": 8,
    });
    const file = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8")) as {
      values: { name: string; properties: { changeNumber: number; addressPrefixes: string[] } }[];
    };
    const tag = file.values.find((value) => value.name === "AzureContainerRegistry.JapanEast");
    if (tag === undefined) throw new Error("fixture lacks JapanEast");
    tag.properties.addressPrefixes = tag.properties.addressPrefixes.slice(1);
    tag.properties.changeNumber = 7;
    harness.tags.publish("ServiceTags_Public_20251110.json", JSON.stringify(file));
    try {
      const writes = harness.arm.writes;
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "test",
        actor: "test",
      });
      expect(outcome !== undefined && !outcome.ok && outcome.error).toBeInstanceOf(GuardError);
      expect(outcome !== undefined && !outcome.ok && (outcome.error as GuardError).guard).toBe("stale-source");
      expect(harness.arm.writes).toBe(writes);
      expect((await runtime.ports.ledger.read(id))?.appliedTagChangeNumbers).toEqual({
        "AzureContainerRegistry.JapanEast": 8,
      });
    } finally {
      harness.tags.publish(
        "ServiceTags_Public_20251110.json",
        readServiceTagsFixture("ServiceTags_Public_20251020.acr.json"),
      );
    }
  });

  it("re-plans once when someone else writes right after our PATCH, and keeps their rule", async () => {
    const { id, runtime } = setup();
    harness.arm.injectFault({
      op: "patch",
      registryId: id,
      fault: {
        kind: "concurrent-writer",
        when: "after",
        write: (emulator, registryId) => {
          emulator.setIpRules(registryId, [...emulator.registry(registryId).ipRules, "192.0.2.55"]);
        },
      },
    });
    const result = await run(runtime, "apply");
    expect(result.outcome).toBe("applied");
    expect(result.attempts).toBe(2);
    const rules = harness.arm.registry(id).ipRules;
    expect(rules).toContain("192.0.2.55");
    expect(rules.slice(0, 2)).toEqual(PEOPLE);
    expect((await runtime.ports.ledger.read(id))?.ownedRules).not.toContain("192.0.2.55/32");
  });

  it("stops after one re-plan when someone keeps writing, and still records what it wrote", async () => {
    const { id, runtime } = setup();
    harness.arm.injectFault({
      op: "patch",
      registryId: id,
      times: Infinity,
      fault: {
        kind: "concurrent-writer",
        when: "after",
        write: (emulator, registryId) => {
          emulator.setIpRules(registryId, [...PEOPLE, "192.0.2.99"]);
        },
      },
    });
    try {
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "test",
        actor: "test",
      });
      expect(outcome !== undefined && !outcome.ok && outcome.error).toBeInstanceOf(ConvergenceError);
      const audit = await runtime.ports.ledger.listAudit(id);
      expect(audit).toHaveLength(1);
      expect(audit[0]?.after.ipRules).toEqual([...PEOPLE, "192.0.2.99"]);
      expect((await runtime.ports.ledger.read(id))?.pendingRules.length).toBeGreaterThan(0);
    } finally {
      harness.arm.clearFaults();
    }
  });

  it("stops with a clear error while another run holds the registry's lock", async () => {
    const { id, runtime } = setup();
    const held = await runtime.ports.ledger.acquireLock(id, { waitMs: 0 });
    try {
      const [outcome] = await runInvocation({ ...runtime.settings, lockWaitMs: 100 }, runtime.ports, {
        mode: "apply",
        trigger: "test",
        actor: "test",
      });
      expect(outcome?.ok).toBe(false);
      expect(outcome !== undefined && !outcome.ok && outcome.error).toBeInstanceOf(LockHeldError);
      expect(harness.arm.registry(id).ipRules).toEqual(PEOPLE);
    } finally {
      await held.release();
    }
  });

  it("rolls back to an earlier audit entry: a dry run first, then the owned rules restored and people's rules untouched", async () => {
    const { id, runtime } = setup({ ipRules: ["203.0.113.10"] });
    const first = await run(runtime, "apply");
    const owned = first.plan.ownedAfter;
    harness.arm.setIpRules(id, ["203.0.113.10", ...owned.slice(1)]);
    const [target] = runtime.settings.targets;
    if (target === undefined || first.auditId === undefined) throw new Error("setup failed");

    const dry = await rollbackTarget(target, first.auditId, runtime.ports, {
      mode: "plan",
      actor: "test",
      lockWaitMs: 1000,
    });
    expect(dry.plan.adds.map((a) => a.rule)).toEqual([owned[0]]);
    expect(harness.arm.registry(id).ipRules).toHaveLength(owned.length);

    const applied = await rollbackTarget(target, first.auditId, runtime.ports, {
      mode: "apply",
      actor: "test",
      lockWaitMs: 1000,
    });
    expect(applied.outcome).toBe("applied");
    const audit = await runtime.ports.ledger.listAudit(id);
    expect(audit.at(-1)?.operation).toBe("rollback");
    expect(audit.at(-1)?.rollbackOf).toBe(first.auditId);
    expect(harness.arm.registry(id).ipRules).toContain("203.0.113.10");
    expect(harness.arm.registry(id).ipRules).toHaveLength(owned.length + 1);
  });

  it("keeps ownership in a file ledger for the CLI just as in the blob ledger", async () => {
    const id = harness.addRegistry({ name: `reg${randomBytes(4).toString("hex")}`, ipRules: PEOPLE });
    const path = join(mkdtempSync(join(tmpdir(), "acr-ledger-")), "ledger.json");
    const runtime = harness.runtime({ TARGET_REGISTRIES: id }, { ledger: { kind: "file", path } });
    expect((await run(runtime, "apply")).outcome).toBe("applied");
    expect((await run(runtime, "apply")).outcome).toBe("unchanged");
    expect((await runtime.ports.ledger.read(id))?.ownedRules).toHaveLength(JAPAN_EAST_IPV4);
  });
});
