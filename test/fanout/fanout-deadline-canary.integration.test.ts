import { InvocationContext, type Timer } from "@azure/functions";
import { QueueServiceClient, type QueueClient } from "@azure/storage-queue";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPoisonHandler, createQueueHandler } from "../../src/app/queue-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { MAX_DEQUEUE_COUNT } from "../../src/fanout/message.js";
import { runInvocation } from "../../src/sync/invocation.js";
import type { Plan } from "../../src/sync/plan.js";
import { createGrantId } from "../../src/sync/run.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";
import { drainQueues } from "../support/queue-host.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";

/**
 * The queue path does what the in-process timer does around one registry: the invocation
 * deadline (SYNC_DEADLINE_MS) bounds each delivery, the after-change canary runs on a canary
 * registry whose sync applied a change, and a failed run reports the grants past their expiry. Real Azurite queues, the real timer (scheduler), queue
 * and poison handlers, the real telemetry exporter to a loopback ingestion endpoint.
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

function connectionString(): string {
  const value = process.env.AZURITE_CONNECTION_STRING;
  if (!value?.includes("QueueEndpoint=")) throw new Error("the global setup starts Azurite's queue service");
  return value;
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
beforeEach(() => {
  harness.arm.clearFaults();
  harness.arm.setClock(() => new Date());
});

const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: "", next: "", lastUpdated: "" },
};

function context(): InvocationContext {
  return new InvocationContext({
    functionName: "allowlistSync",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: () => undefined,
  });
}

interface Setup {
  readonly runtime: Runtime;
  readonly queue: QueueClient;
  readonly poison: QueueClient;
}

async function setup(settings: Record<string, string>): Promise<Setup> {
  const suffix = randomBytes(5).toString("hex");
  const queueName = `fdc-${suffix}`;
  const runtime = harness.runtime(
    {
      AzureWebJobsStorage: connectionString(),
      LEDGER_CONTAINER: `fdc-${suffix}`,
      SYNC_FANOUT: "true",
      APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
      ...settings,
    },
    { fanoutQueueName: queueName },
  );
  runtimes.push(runtime);
  const service = QueueServiceClient.fromConnectionString(connectionString());
  const queue = service.getQueueClient(queueName);
  const poison = service.getQueueClient(`${queueName}-poison`);
  await queue.createIfNotExists();
  await poison.createIfNotExists();
  return { runtime, queue, poison };
}

/** Schedules a run with the real timer and lets the host stand-in deliver every message to the real handlers. */
async function scheduleAndDrain(s: Setup, logs: string[] = []) {
  await createTimerHandler(s.runtime)(timer, context());
  return drainQueues(
    {
      queue: s.queue,
      poison: s.poison,
      handler: createQueueHandler(s.runtime),
      poisonHandler: createPoisonHandler(s.runtime),
      maxDequeueCount: MAX_DEQUEUE_COUNT,
      concurrency: 4,
      visibilityTimeoutSeconds: 0,
    },
    logs,
  );
}

function eventsOf(name: string, registry: string) {
  return ingestion.events(name).filter((event) => event.properties.registry === registry);
}

describe("the queue path's deadline and canary, as on the timer", () => {
  it("runs the after-change canary from the queue on the canary registry only, and not again when nothing changed", async () => {
    const suffix = randomBytes(3).toString("hex");
    const spec = { ipRules: ["203.0.113.10"], networkRuleBypassAllowedForTasks: false };
    const prod = harness.addRegistry({ name: `qprod${suffix}`, ...spec });
    const canary = harness.addRegistry({ name: `qcanary${suffix}`, ...spec });
    const s = await setup({ TARGET_REGISTRIES: prod, CANARY_REGISTRIES: canary });
    const logs: string[] = [];

    const stats = await scheduleAndDrain(s, logs);

    expect(stats).toMatchObject({ succeeded: 2, failedDeliveries: 0, poisoned: 0 });
    expect(harness.arm.registry(canary).ipRules).toHaveLength(12);
    expect(harness.arm.tasks.runs(prod)).toEqual([]);
    expect(harness.arm.tasks.runs(canary).map((run) => [run.runId, run.admitted])).toEqual([["ca1", true]]);
    const stored = await s.runtime.ports.canary?.results.read(canary);
    expect(stored).toMatchObject({ registryId: canary, runId: "ca1", verdict: "admitted", trigger: "after-apply" });
    expect(logs).toContain(
      `information: Canary qcanary${suffix} (japaneast), run ca1 at ${stored?.at ?? "?"}: admitted.\nThe ACR Tasks agent got into qcanary${suffix} (run ca1 Succeeded).\nAdvice: Nothing to do.\n`,
    );
    // Each message's invocation flushed its telemetry before returning.
    expect(eventsOf("AllowlistCanaryCompleted", canary).map((event) => event.properties)).toEqual([
      expect.objectContaining({ ok: "true", verdict: "admitted", runId: "ca1", trigger: "after-apply" }),
    ]);
    expect(eventsOf("AllowlistCanaryCompleted", prod)).toEqual([]);

    // The next run finds nothing to change: no canary.
    await scheduleAndDrain(s);
    expect(harness.arm.tasks.runs(canary)).toHaveLength(1);
    expect(eventsOf("AllowlistSyncCompleted", canary)).toHaveLength(2);
  });

  it("stops a delivery at SYNC_DEADLINE_MS on a slow ARM and retries it; the next delivery converges with no failure reported", async () => {
    const id = harness.addRegistry({ name: `qslow${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
    const s = await setup({ TARGET_REGISTRIES: id, SYNC_DEADLINE_MS: "1000" });
    // The first registry read answers after 6 s, far past the 1 s budget; the next one at once.
    harness.arm.injectFault({ op: "get", registryId: id, fault: { kind: "delay", ms: 6_000 } });
    const logs: string[] = [];

    const stats = await scheduleAndDrain(s, logs);

    expect(stats).toMatchObject({ succeeded: 1, failedDeliveries: 1, poisoned: 0, maxDequeueCountSeen: 2 });
    const first = logs.find((line) => line.includes("(delivery 1)"));
    expect(first).toMatch(/^warning: .*1000 ms budget \(SYNC_DEADLINE_MS\) ran out during the registry's sync/);
    expect(harness.arm.registry(id).ipRules).toHaveLength(12);
    expect(eventsOf("AllowlistSyncFailed", id)).toEqual([]);
    expect(eventsOf("AllowlistSyncCompleted", id)).toHaveLength(1);
    // The deadline aborted the slow read: the emulator saw its client give up.
    expect(harness.arm.requests.filter((r) => r.registryId === id && r.status === "hang")).toHaveLength(1);
  });

  it("reports DeadlineExceeded once, then Poisoned, when every delivery runs out of its budget", async () => {
    const id = harness.addRegistry({ name: `qstuck${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
    const s = await setup({ TARGET_REGISTRIES: id, SYNC_DEADLINE_MS: "1000" });
    harness.arm.injectFault({ op: "get", registryId: id, times: Infinity, fault: { kind: "delay", ms: 6_000 } });

    const stats = await scheduleAndDrain(s);

    expect(stats).toMatchObject({ poisoned: 1, failedDeliveries: MAX_DEQUEUE_COUNT });
    expect(eventsOf("AllowlistSyncFailed", id).map((event) => event.properties.errorType)).toEqual([
      "DeadlineExceeded",
      "Poisoned",
    ]);
    expect(harness.arm.registry(id).ipRules).toEqual(["203.0.113.10"]);
  });

  it("reports a grant past its expiry as overdue when the registry's sync fails, as the timer does", async () => {
    const id = harness.addRegistry({ name: `qgrant${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
    const s = await setup({ TARGET_REGISTRIES: id });
    // A one-hour grant made on an ARM clock two hours back: it expired an hour ago.
    harness.arm.setClock(() => new Date(Date.now() - 2 * 3_600_000));
    const [granted] = await runInvocation(s.runtime.settings, s.runtime.ports, {
      mode: "apply",
      trigger: "cli",
      actor: "cli:alice@laptop",
      grant: {
        kind: "add",
        rule: "192.0.2.9/32",
        ttlMs: 3_600_000,
        reason: "incident 4711",
        grantedBy: "cli:alice@laptop",
        id: createGrantId(),
      },
    });
    expect(granted?.ok).toBe(true);
    harness.arm.setClock(() => new Date());
    // A permanent failure: reported at the first delivery, not retried.
    harness.arm.injectFault({
      op: "get",
      registryId: id,
      times: Infinity,
      fault: { kind: "status", status: 404, code: "ResourceNotFound" },
    });

    const stats = await scheduleAndDrain(s);

    expect(stats).toMatchObject({ succeeded: 1, failedDeliveries: 0, poisoned: 0 });
    expect(eventsOf("AllowlistSyncFailed", id).map((event) => event.properties.errorType)).toEqual([
      "RegistryNotFound",
    ]);
    const overdue = eventsOf("AllowlistGrantOverdue", id);
    expect(overdue.map((event) => [event.properties.rule, event.properties.trigger])).toEqual([
      ["192.0.2.9/32", "timer"],
    ]);
    expect(Number(overdue[0]?.properties.overdueMinutes)).toBeGreaterThanOrEqual(59);
  });

  it("plans from the document the timer's chain handed out, with the run's lags", async () => {
    // A Discovery API behind the weekly file: the chain's cross-check finds lags (the file's higher numbers win).
    harness.arm.serviceTagsApi.publish(readServiceTagsFixture("ServiceTags_Public_20240401.acr.json"));
    const id = harness.addRegistry({ name: `qlag${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
    const s = await setup({ TARGET_REGISTRIES: id });
    const inProcess = await s.runtime.ports.serviceTags.fetch();
    expect(inProcess.lags?.some((lag) => lag.name === "AzureContainerRegistry.JapanEast")).toBe(true);

    await scheduleAndDrain(s);

    const [entry] = await s.runtime.ports.ledger.listAudit(id);
    // The audit entry keeps the plan the worker made, as JSON.
    const plan = entry?.plan as Plan | undefined;
    const lag = plan?.warnings.find((warning) => warning.code === "source-lag");
    expect(lag?.details).toEqual({
      tag: "AzureContainerRegistry.JapanEast",
      fileChangeNumber: 8,
      apiChangeNumber: 7,
      used: "file",
    });
    const [completed] = eventsOf("AllowlistSyncCompleted", id);
    expect(completed?.properties.newestChangeNumber).toBe(String(inProcess.newestChangeNumberSeen));
  });
});
