import { InvocationContext, type Timer } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Runtime } from "../../src/app/runtime.js";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { captureTelemetry, type TelemetryCapture } from "../faults/fault-lab.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * The in-process timer (SYNC_FANOUT=false) with discovery on: the real Resource Graph client finds
 * the tagged registries in the ARM emulator, a bad override tag skips only its registry, explicit
 * settings win over tags, and a registry that loses the tag is reported once and left alone.
 */

const JAPAN_EAST_IPV4 = 11;
let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});

const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: "", next: "", lastUpdated: "" },
};

function context(logs: string[]): InvocationContext {
  return new InvocationContext({
    functionName: "allowlistSync",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(" ")}`),
  });
}

function discoveringRuntime(
  tagValue: string,
  extra: Record<string, string> = {},
): { runtime: Runtime; telemetry: TelemetryCapture } {
  const base = harness.runtime({
    TARGET_DISCOVERY_TAG: `acr-allowlist-sync=${tagValue}`,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `disc-${randomBytes(6).toString("hex")}`,
    ...extra,
  });
  const telemetry = captureTelemetry();
  return { runtime: { ...base, ports: { ...base.ports, telemetry } }, telemetry };
}

describe("the in-process timer with discovery", () => {
  it("syncs the tagged registries, skips only the one with a bad tag, and fails the invocation naming it", async () => {
    const value = randomBytes(4).toString("hex");
    const tags = { "acr-allowlist-sync": value };
    const good = harness.addRegistry({ name: `good${value}`, tags: { ...tags, "acr-allowlist-sync.headroom": "20" } });
    const europe = harness.addRegistry({ name: `eu${value}`, location: "westeurope", tags });
    const bad = harness.addRegistry({ name: `bad${value}`, tags: { ...tags, "acr-allowlist-sync.regions": "mars!" } });
    const untagged = harness.addRegistry({ name: `plain${value}` });
    const { runtime, telemetry } = discoveringRuntime(value);
    const logs: string[] = [];

    const run = createTimerHandler(runtime)(timer, context(logs));
    await expect(run).rejects.toThrow(
      new RegExp(`^1 of 3 registries failed: bad${value}: Tag acr-allowlist-sync.regions='mars!'`),
    );

    expect(harness.arm.registry(good).ipRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(harness.arm.registry(europe).ipRules.length).toBeGreaterThan(0);
    expect(harness.arm.registry(bad).ipRules).toEqual([]);
    expect(harness.arm.registry(untagged).ipRules).toEqual([]);
    expect(telemetry.failed.map((f) => [f.registry, f.errorType])).toEqual([[bad, "InvalidRegistryTag"]]);
    expect(telemetry.completed.map((c) => c.registry).sort()).toEqual([europe, good].sort());
  });

  it("skips a registry whose pinned-rules tag is wider than SYNC_MIN_PREFIX_LENGTH, naming the tag", async () => {
    const value = randomBytes(4).toString("hex");
    const tags = { "acr-allowlist-sync": value };
    const good = harness.addRegistry({
      name: `pin${value}`,
      tags: { ...tags, "acr-allowlist-sync.pinned-rules": "203.0.113.10" },
    });
    const open = harness.addRegistry({
      name: `open${value}`,
      tags: { ...tags, "acr-allowlist-sync.pinned-rules": "0.0.0.0/0" },
    });
    const { runtime, telemetry } = discoveringRuntime(value, { SYNC_MIN_PREFIX_LENGTH: "12" });
    const logs: string[] = [];

    await expect(createTimerHandler(runtime)(timer, context(logs))).rejects.toThrow(
      new RegExp(
        `^1 of 2 registries failed: open${value}: Tag acr-allowlist-sync.pinned-rules='0.0.0.0/0' .*wider than SYNC_MIN_PREFIX_LENGTH /12`,
      ),
    );
    expect(harness.arm.registry(good).ipRules).toContain("203.0.113.10/32");
    expect(harness.arm.registry(open).ipRules).toEqual([]);
    expect(telemetry.failed.map((f) => [f.registry, f.errorType])).toEqual([[open, "InvalidRegistryTag"]]);
  });

  it("lets TARGET_REGISTRIES win over a registry's tags", async () => {
    const value = randomBytes(4).toString("hex");
    const id = harness.addRegistry({
      name: `expl${value}`,
      tags: { "acr-allowlist-sync": value, "acr-allowlist-sync.regions": "westeurope" },
    });
    const { runtime, telemetry } = discoveringRuntime(value, {
      TARGET_REGISTRIES: JSON.stringify([{ id, regions: ["japaneast"] }]),
    });
    await createTimerHandler(runtime)(timer, context([]));
    expect(telemetry.completed).toHaveLength(1);
    expect(telemetry.completed[0]?.tagChangeNumbers).toMatch(/^AzureContainerRegistry\.JapanEast=/);
  });

  it("reports a registry that lost the tag once, leaves its rules, and does not sync it any more", async () => {
    const value = randomBytes(4).toString("hex");
    const id = harness.addRegistry({ name: `lost${value}`, tags: { "acr-allowlist-sync": value } });
    const stays = harness.addRegistry({ name: `stay${value}`, tags: { "acr-allowlist-sync": value } });
    const { runtime, telemetry } = discoveringRuntime(value);
    const handler = createTimerHandler(runtime);
    await handler(timer, context([]));
    const rules = harness.arm.registry(id).ipRules;
    expect(rules).toHaveLength(JAPAN_EAST_IPV4);

    harness.arm.updateRegistry(id, { tags: { owner: "someone" } });
    const logs: string[] = [];
    await handler(timer, context(logs));
    await handler(timer, context([]));

    expect(telemetry.untagged.map((u) => u.registry)).toEqual([id]);
    expect(logs.some((line) => line.includes(`${id} no longer carries the discovery tag`))).toBe(true);
    expect(harness.arm.registry(id).ipRules).toEqual(rules);
    expect(telemetry.completed.filter((c) => c.registry === id)).toHaveLength(1);
    expect(telemetry.completed.filter((c) => c.registry === stays)).toHaveLength(3);
  });
});
