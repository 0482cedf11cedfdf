import { InvocationContext, type Timer } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { startHarness, TEST_SUBSCRIPTION, type Harness } from "../support/harness.js";
import { registryResourceId } from "../support/arm-emulator.js";

/**
 * The daily sync through the real timer handler and runtime: every configured registry runs, one
 * failing registry does not stop the others, and the invocation fails afterwards, naming it.
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

function timer(isPastDue = false): Timer {
  const now = new Date();
  return {
    isPastDue,
    schedule: { adjustForDST: false },
    scheduleStatus: {
      last: now.toISOString(),
      next: new Date(now.getTime() + 86_400_000).toISOString(),
      lastUpdated: now.toISOString(),
    },
  };
}

function context(): { context: InvocationContext; logs: string[] } {
  const logs: string[] = [];
  return {
    logs,
    context: new InvocationContext({
      functionName: "allowlistSync",
      invocationId: randomBytes(8).toString("hex"),
      logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(" ")}`),
    }),
  };
}

function name(prefix: string): string {
  return `${prefix}${randomBytes(3).toString("hex")}`;
}

function runtimeFor(ids: readonly string[]) {
  return harness.runtime({
    TARGET_REGISTRIES: ids.join(","),
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `timer-${randomBytes(6).toString("hex")}`,
  });
}

describe("the sync timer", () => {
  it("syncs every registry when one is not Premium, then fails the invocation naming that one", async () => {
    const east = name("east");
    const basic = name("basic");
    const europe = name("europe");
    const idEast = harness.addRegistry({ name: east, ipRules: PEOPLE });
    const idBasic = harness.addRegistry({ name: basic, sku: "Basic", ipRules: PEOPLE });
    const idEurope = harness.addRegistry({ name: europe, location: "westeurope", ipRules: [] });
    const runtime = runtimeFor([idEast, idBasic, idEurope]);
    const writes = harness.arm.writes;
    const { context: ctx, logs } = context();

    const run = createTimerHandler(runtime)(timer(), ctx);
    await expect(run).rejects.toThrow(new RegExp(`^1 of 3 registries failed: ${basic}: .*Premium`));

    // The two others converged: rules written, ledger and audit recorded.
    expect(harness.arm.writes).toBe(writes + 2);
    expect(harness.arm.registry(idEast).ipRules).toHaveLength(PEOPLE.length + JAPAN_EAST_IPV4);
    expect(harness.arm.registry(idEast).ipRules.slice(0, 2)).toEqual(PEOPLE);
    expect((await runtime.ports.ledger.read(idEast))?.ownedRules).toHaveLength(JAPAN_EAST_IPV4);
    const europeRules = harness.arm.registry(idEurope).ipRules;
    expect(europeRules.length).toBeGreaterThan(0);
    expect((await runtime.ports.ledger.read(idEurope))?.ownedRules).toEqual(europeRules);
    expect(await runtime.ports.ledger.listAudit(idEurope)).toHaveLength(1);
    // The failing one was left alone.
    expect(harness.arm.registry(idBasic).ipRules).toEqual(PEOPLE);
    expect(await runtime.ports.ledger.read(idBasic)).toBeUndefined();
    expect(logs.filter((line) => line.startsWith("error:"))).toEqual([expect.stringContaining(`${basic}:`)]);
    expect(logs.filter((line) => line.startsWith("information:")).join("\n")).toMatch(
      new RegExp(`${east}: applied[^\\n]*\\ninformation: ${europe}: applied`),
    );
  });

  it("syncs the others when one configured registry does not exist (404), then fails naming it", async () => {
    const first = name("first");
    const second = name("second");
    const gone = name("gone");
    const idFirst = harness.addRegistry({ name: first, ipRules: [] });
    const idSecond = harness.addRegistry({ name: second, ipRules: PEOPLE });
    const idGone = registryResourceId(TEST_SUBSCRIPTION, "rg-acr", gone);
    const runtime = runtimeFor([idFirst, idGone, idSecond]);

    await expect(createTimerHandler(runtime)(timer(), context().context)).rejects.toThrow(
      new RegExp(`^1 of 3 registries failed: ${gone}: `),
    );
    expect(harness.arm.registry(idFirst).ipRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(harness.arm.registry(idSecond).ipRules).toHaveLength(PEOPLE.length + JAPAN_EAST_IPV4);
    expect((await runtime.ports.ledger.read(idSecond))?.ownedRules).toHaveLength(JAPAN_EAST_IPV4);
  });

  it("succeeds when every registry converges, and a second run writes nothing", async () => {
    const ids = [
      harness.addRegistry({ name: name("ok"), ipRules: PEOPLE }),
      harness.addRegistry({ name: name("ok"), location: "westeurope", ipRules: [] }),
    ];
    const runtime = runtimeFor(ids);
    const writes = harness.arm.writes;
    await expect(createTimerHandler(runtime)(timer(), context().context)).resolves.toBeUndefined();
    expect(harness.arm.writes).toBe(writes + 2);

    const { context: ctx, logs } = context();
    await expect(createTimerHandler(runtime)(timer(true), ctx)).resolves.toBeUndefined();
    expect(harness.arm.writes).toBe(writes + 2);
    expect(logs.filter((line) => line.includes(": unchanged,"))).toHaveLength(2);
    expect(logs).toContainEqual(expect.stringMatching(/^warning: .*past due/));
  });

  it("fails naming SYNC_REGIONS when it holds a typo, before any registry is written", async () => {
    const ids = [
      harness.addRegistry({ name: name("typo"), ipRules: PEOPLE }),
      harness.addRegistry({ name: name("typo"), ipRules: [] }),
    ];
    const runtime = harness.runtime({
      TARGET_REGISTRIES: ids.join(","),
      SYNC_REGIONS: "japaneast,japanwset",
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: `timer-${randomBytes(6).toString("hex")}`,
    });
    const writes = harness.arm.writes;
    const { context: ctx, logs } = context();
    await expect(createTimerHandler(runtime)(timer(), ctx)).rejects.toThrow(
      /^Setting SYNC_REGIONS \(--regions\) is invalid: region 'japanwset' \(did you mean japanwest/,
    );
    expect(harness.arm.writes).toBe(writes);
    expect(logs).toContainEqual(expect.stringMatching(/^error: Setting SYNC_REGIONS .*japanwset/));
    expect(logs.filter((line) => /GuardTripped|tag-missing/.test(line))).toEqual([]);
  });
});
