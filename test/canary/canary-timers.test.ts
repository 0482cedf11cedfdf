import { HttpRequest, HttpResponse, InvocationContext, type Timer } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCanaryTimerHandler } from "../../src/app/canary-handler.js";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";

/**
 * The canary in the timer path, through the real handlers and runtime: after the sync timer
 * applies a change to a dedicated canary registry, the canary runs there (not on the production
 * target), its result is stored with the ledger and sent to telemetry; the canary timer runs on
 * its own schedule whether or not anything changed, and fails its invocation on a refusal.
 */

let harness: Harness;
let ingestion: IngestionEndpoint;
const runtimes: Runtime[] = [];

function japanEast(): string[] {
  const file = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8")) as {
    values: { name: string; properties: { addressPrefixes: string[] } }[];
  };
  return (
    file.values.find((value) => value.name === "AzureContainerRegistry.JapanEast")?.properties.addressPrefixes ?? []
  ).filter((prefix) => !prefix.includes(":"));
}

beforeAll(async () => {
  harness = await startHarness({ arm: { tasks: { queuedMs: 5, runningMs: 10 } } });
  harness.arm.tasks.setAgentPool("japaneast", japanEast());
  ingestion = await startIngestionEndpoint();
});
afterAll(async () => {
  for (const runtime of runtimes) await (runtime.ports.telemetry as Telemetry).shutdown();
  await ingestion.close();
  await harness.close();
});

function timer(): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue: false,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

function context(functionName: string): { context: InvocationContext; logs: string[] } {
  const logs: string[] = [];
  return {
    logs,
    context: new InvocationContext({
      functionName,
      invocationId: randomBytes(8).toString("hex"),
      logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(" ")}`),
    }),
  };
}

function setup(extra: Record<string, string> = {}) {
  const suffix = randomBytes(3).toString("hex");
  const spec = { ipRules: ["203.0.113.10"], networkRuleBypassAllowedForTasks: false };
  const prod = harness.addRegistry({ name: `prod${suffix}`, ...spec });
  const canary = harness.addRegistry({ name: `canary${suffix}`, ...spec });
  const runtime = harness.runtime({
    TARGET_REGISTRIES: prod,
    CANARY_REGISTRIES: canary,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `canary-${suffix}`,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    ...extra,
  });
  runtimes.push(runtime);
  return { prod, canary, canaryName: `canary${suffix}`, runtime };
}

describe("the canary in the timer path", () => {
  it("runs after the sync timer applies a change to the canary registry, and not again when nothing changed", async () => {
    const { prod, canary, canaryName, runtime } = setup();
    const first = context("allowlistSync");
    await createTimerHandler(runtime)(timer(), first.context);

    // The canary registry is synced like a target, and only it runs a task.
    expect(harness.arm.registry(canary).ipRules).toHaveLength(12);
    expect(harness.arm.tasks.runs(prod)).toEqual([]);
    expect(harness.arm.tasks.runs(canary).map((run) => [run.runId, run.admitted])).toEqual([["ca1", true]]);
    expect(first.logs).toContain(
      `information: Canary ${canaryName} (japaneast), run ca1 at ${(await runtime.ports.canary?.results.read(canary))?.at ?? "?"}: admitted.\nThe ACR Tasks agent got into ${canaryName} (run ca1 Succeeded).\nAdvice: Nothing to do.\n`,
    );
    expect(await runtime.ports.canary?.results.read(canary)).toMatchObject({
      registryId: canary,
      runId: "ca1",
      verdict: "admitted",
      ok: true,
      trigger: "after-apply",
    });

    await createTimerHandler(runtime)(timer(), context("allowlistSync").context);
    expect(harness.arm.tasks.runs(canary)).toHaveLength(1);

    await (runtime.ports.telemetry as Telemetry).flush();
    const events = ingestion.events("AllowlistCanaryCompleted").filter((event) => event.properties.registry === canary);
    expect(events.map((event) => event.properties)).toEqual([
      {
        registry: canary,
        region: "japaneast",
        ok: "true",
        verdict: "admitted",
        refusedIp: "",
        containingTags: "",
        runId: "ca1",
        durationMs: expect.stringMatching(/^\d+$/) as unknown,
        summary: `The ACR Tasks agent got into ${canaryName} (run ca1 Succeeded).`,
        advice: "Nothing to do.",
        trigger: "after-apply",
      },
    ]);
  });

  it("does not start the after-change canary when the invocation's budget cannot hold the wait and a run, and stores why", async () => {
    // 20 s of SYNC_DEADLINE_MS cannot hold a 5 s propagation wait plus the 30 s a run needs at least:
    // waiting would only end in the host killing the invocation.
    const { canary, canaryName, runtime } = setup({ SYNC_DEADLINE_MS: "20000", CANARY_PROPAGATION_DELAY_MS: "5000" });
    const run = context("allowlistSync");
    await createTimerHandler(runtime)(timer(), run.context);

    expect(harness.arm.registry(canary).ipRules).toHaveLength(12);
    expect(harness.arm.tasks.runs(canary)).toEqual([]);
    const stored = await runtime.ports.canary?.results.read(canary);
    expect(stored).toMatchObject({ registryId: canary, verdict: "inconclusive", ok: false, trigger: "after-apply" });
    expect(stored?.summary).toMatch(
      new RegExp(
        `^The canary did not run on ${canaryName}: (1\\d|20) s of the invocation's budget \\(SYNC_DEADLINE_MS\\) were left, and the propagation wait and one run need 35 s\\.$`,
      ),
    );
    expect(stored?.advice).toContain("CANARY_SCHEDULE");
  });

  it("runs on its own schedule, stores a refusal with its diagnosis, reports it, and fails the invocation", async () => {
    const { canary, canaryName, runtime } = setup();
    const run = context("allowlistCanary");
    await expect(createCanaryTimerHandler(runtime)(timer(), run.context)).rejects.toThrow(
      `1 of 1 canary did not get in: ${canaryName}: refused: The firewall of ${canaryName} refused the ACR Tasks agent: run ca1 at `,
    );
    const stored = await runtime.ports.canary?.results.read(canary);
    expect(stored).toMatchObject({
      verdict: "refused",
      refusedIp: "4.216.205.65",
      containingTags: ["AzureContainerRegistry.JapanEast", "AzureContainerRegistry"],
      trigger: "timer",
    });
    expect(
      run.logs.some((line) => line.startsWith("error: Canary ") && line.includes("Tags holding 4.216.205.65")),
    ).toBe(true);

    await (runtime.ports.telemetry as Telemetry).flush();
    const [event] = ingestion.events("AllowlistCanaryCompleted").filter((e) => e.properties.registry === canary);
    expect(event?.properties).toMatchObject({
      ok: "false",
      verdict: "refused",
      refusedIp: "4.216.205.65",
      containingTags: "AzureContainerRegistry.JapanEast,AzureContainerRegistry",
      runId: "ca1",
      advice: stored?.advice,
      trigger: "timer",
    });
    const points = ingestion.metrics("allowlist_canary_ok").filter((m) => m.properties.registry === canary);
    expect(points.map((point) => [point.value, point.properties.verdict, point.properties.region])).toEqual([
      [0, "refused", "japaneast"],
    ]);
  });

  it("does nothing when no canary registry is configured", async () => {
    const suffix = randomBytes(3).toString("hex");
    const prod = harness.addRegistry({ name: `solo${suffix}` });
    const runtime = harness.runtime({
      TARGET_REGISTRIES: prod,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: `canary-${suffix}`,
    });
    const run = context("allowlistCanary");
    await createCanaryTimerHandler(runtime)(timer(), run.context);
    expect(run.logs).toEqual([
      "information: No canary registry is configured (CANARY_REGISTRIES, CANARY_ON_TARGETS): nothing to do.",
    ]);
    expect(harness.arm.tasks.runs(prod)).toEqual([]);
  });

  it("runs on a target itself only when CANARY_ON_TARGETS opts it in", async () => {
    const suffix = randomBytes(3).toString("hex");
    const prod = harness.addRegistry({ name: `optin${suffix}`, networkRuleBypassAllowedForTasks: false });
    const runtime = harness.runtime({
      TARGET_REGISTRIES: prod,
      CANARY_ON_TARGETS: prod,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: `canary-${suffix}`,
    });
    expect(runtime.settings.targets.map((target) => target.canary)).toEqual(["target"]);
    await createTimerHandler(runtime)(timer(), context("allowlistSync").context);
    expect(harness.arm.tasks.runs(prod).map((run) => run.admitted)).toEqual([true]);
  });
});

describe("the HTTP plan answer", () => {
  async function plan(runtime: Runtime, query: string): Promise<HttpResponse> {
    const request = new HttpRequest({ method: "GET", url: `https://func.example/api/plan${query}` });
    return new HttpResponse(await createPlanHandler(runtime)(request, context("allowlistPlan").context));
  }

  it("shows the registry's last canary result, in JSON and in text, and null before any", async () => {
    const { canary, canaryName, runtime } = setup();
    const before = (await (await plan(runtime, `?registry=${canaryName}`)).json()) as { lastCanary: unknown };
    expect(before.lastCanary).toBeNull();

    await expect(createCanaryTimerHandler(runtime)(timer(), context("allowlistCanary").context)).rejects.toThrow();
    const stored = await runtime.ports.canary?.results.read(canary);
    const answer = (await (await plan(runtime, `?registry=${canaryName}`)).json()) as {
      lastCanary: Record<string, unknown>;
      adds: unknown[];
    };
    expect(answer.adds).toHaveLength(11);
    expect(answer.lastCanary).toEqual(JSON.parse(JSON.stringify(stored)) as unknown);
    expect(answer.lastCanary).toMatchObject({ verdict: "refused", refusedIp: "4.216.205.65", runId: "ca1" });

    const text = await (await plan(runtime, `?registry=${canaryName}&format=text`)).text();
    expect(text).toContain(
      `\nLast canary:\nCanary ${canaryName} (japaneast), run ca1 at ${String(stored?.at)}: refused.\n`,
    );
    expect(text).toContain("Tags holding 4.216.205.65: AzureContainerRegistry.JapanEast, AzureContainerRegistry.\n");
  });
});
