import { InvocationContext, type Timer } from "@azure/functions";
import { QueueServiceClient, type QueueClient } from "@azure/storage-queue";
import { BlobServiceClient } from "@azure/storage-blob";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPoisonHandler, createQueueHandler } from "../../src/app/queue-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { MAX_DEQUEUE_COUNT } from "../../src/fanout/message.js";
import { captureTelemetry, type TelemetryCapture } from "../faults/fault-lab.js";
import { startHarness, type Harness } from "../support/harness.js";
import { drainQueues } from "../support/queue-host.js";

/**
 * Fan-out on real Azurite queues: the real timer handler (SYNC_FANOUT=true) stores the file and
 * enqueues; the real queue handler consumes, driven by a small stand-in for the host's trigger
 * (dequeue count, visibility between retries, poison after maxDequeueCount); failures are retried
 * and poisoned; duplicate delivery writes nothing twice.
 */

const JAPAN_EAST_IPV4 = 11;
let harness: Harness;
const connectionString = (): string => {
  const value = process.env.AZURITE_CONNECTION_STRING;
  if (!value?.includes("QueueEndpoint=")) throw new Error("the global setup starts Azurite's queue service");
  return value;
};

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

interface Setup {
  readonly runtime: Runtime;
  readonly telemetry: TelemetryCapture;
  readonly queue: QueueClient;
  readonly poison: QueueClient;
  readonly container: string;
}

async function setup(extra: Record<string, string>): Promise<Setup> {
  const suffix = randomBytes(5).toString("hex");
  const queueName = `fanout-${suffix}`;
  const container = `fanout-${suffix}`;
  const withQueue = harness.runtime(
    { AzureWebJobsStorage: connectionString(), LEDGER_CONTAINER: container, SYNC_FANOUT: "true", ...extra },
    { fanoutQueueName: queueName },
  );
  const telemetry = captureTelemetry();
  const service = QueueServiceClient.fromConnectionString(connectionString());
  const queue = service.getQueueClient(queueName);
  const poison = service.getQueueClient(`${queueName}-poison`);
  await queue.createIfNotExists();
  await poison.createIfNotExists();
  return { runtime: { ...withQueue, ports: { ...withQueue.ports, telemetry } }, telemetry, queue, poison, container };
}

function context(): InvocationContext {
  return new InvocationContext({
    functionName: "allowlistSync",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: () => undefined,
  });
}

function drain(s: Setup, concurrency = 4) {
  return drainQueues({
    queue: s.queue,
    poison: s.poison,
    handler: createQueueHandler(s.runtime),
    poisonHandler: createPoisonHandler(s.runtime),
    maxDequeueCount: MAX_DEQUEUE_COUNT,
    concurrency,
    visibilityTimeoutSeconds: 0,
  });
}

describe("fan-out on Storage queues", () => {
  it("enqueues nothing and fails naming SYNC_REGIONS when it names a region that is none; a bad regions tag skips only its registry", async () => {
    const value = randomBytes(4).toString("hex");
    const explicit = harness.addRegistry({ name: `ftypo${value}` });
    const typo = await setup({ TARGET_REGISTRIES: explicit, SYNC_REGIONS: "japaneast,japneast" });
    await expect(createTimerHandler(typo.runtime)(timer, context())).rejects.toThrow(
      /^Setting SYNC_REGIONS \(--regions\) is invalid: region 'japneast' \(did you mean japaneast/,
    );
    expect((await typo.queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
    expect(typo.telemetry.failed.map((f) => [f.registry, f.errorType])).toEqual([[explicit, "InvalidConfiguration"]]);

    const good = harness.addRegistry({ name: `fgood${value}`, tags: { "acr-allowlist-sync": value } });
    const bad = harness.addRegistry({
      name: `fbad${value}`,
      tags: { "acr-allowlist-sync": value, "acr-allowlist-sync.regions": "japneast" },
    });
    const tagged = await setup({ TARGET_DISCOVERY_TAG: `acr-allowlist-sync=${value}` });
    await expect(createTimerHandler(tagged.runtime)(timer, context())).rejects.toThrow(
      new RegExp(
        `^1 registry not enqueued: fbad${value}: Tag acr-allowlist-sync\\.regions on registry .*'japneast' \\(did you mean japaneast`,
      ),
    );
    const bodies = (await tagged.queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map(
      (m) => (JSON.parse(Buffer.from(m.messageText, "base64").toString("utf8")) as { registryId: string }).registryId,
    );
    expect(bodies).toEqual([good]);
    expect(tagged.telemetry.failed.map((f) => [f.registry, f.errorType])).toEqual([[bad, "InvalidRegistryTag"]]);
  });

  it("schedules one base64 message per registry with the file in blob storage under its hash, and the queue function syncs each", async () => {
    const value = randomBytes(4).toString("hex");
    const explicit = harness.addRegistry({ name: `fex${value}` });
    const tagged = [0, 1].map((i) =>
      harness.addRegistry({ name: `ftag${i}${value}`, tags: { "acr-allowlist-sync": value } }),
    );
    const s = await setup({ TARGET_REGISTRIES: explicit, TARGET_DISCOVERY_TAG: `acr-allowlist-sync=${value}` });

    await createTimerHandler(s.runtime)(timer, context());

    const peeked = await s.queue.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems).toHaveLength(3);
    const bodies = peeked.peekedMessageItems.map(
      (m) =>
        JSON.parse(Buffer.from(m.messageText, "base64").toString("utf8")) as {
          registryId: string;
          serviceTagsBlob: string;
          runId: string;
          trigger: string;
        },
    );
    expect(bodies.map((b) => b.registryId).sort()).toEqual([explicit, ...tagged].sort());
    expect(new Set(bodies.map((b) => b.runId)).size).toBe(1);
    expect(bodies.every((b) => b.trigger === "timer")).toBe(true);
    const blobName = bodies[0]?.serviceTagsBlob ?? "";
    expect(blobName).toMatch(/^servicetags\/[0-9a-f]{64}\.json$/);
    const blobs = BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(s.container);
    expect(await blobs.getBlobClient(blobName).exists()).toBe(true);
    // Nothing is synced by the scheduler itself.
    expect(harness.arm.registry(explicit).ipRules).toEqual([]);
    expect(s.telemetry.scheduled.map((e) => [e.registries, e.discovered])).toEqual([[3, 2]]);

    const stats = await drain(s);
    expect(stats).toMatchObject({ succeeded: 3, failedDeliveries: 0, poisoned: 0 });
    for (const id of [explicit, ...tagged]) expect(harness.arm.registry(id).ipRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(s.telemetry.completed.map((c) => c.registry).sort()).toEqual([explicit, ...tagged].sort());
    expect(s.telemetry.failed).toEqual([]);
    // Each queue delivery records the registry's last run beside the ledger, as the timer's path does.
    for (const id of [explicit, ...tagged])
      expect(await s.runtime.ports.runs?.read(id)).toMatchObject({
        outcome: "applied",
        trigger: "queue",
        actor: `queue:${bodies[0]?.runId ?? ""}`,
      });
  });

  it("retries a delivery that failed, without reporting a failure when a later delivery succeeds", async () => {
    const id = harness.addRegistry({ name: `fretry${randomBytes(4).toString("hex")}` });
    const s = await setup({ TARGET_REGISTRIES: id });
    // Three 503s outlast the SDK's two retries (test tuning): the first delivery fails, the second succeeds.
    harness.arm.injectFault({ op: "get", registryId: id, times: 3, fault: { kind: "status", status: 503 } });
    await createTimerHandler(s.runtime)(timer, context());
    const stats = await drain(s);
    expect(stats).toMatchObject({ succeeded: 1, failedDeliveries: 1, poisoned: 0, maxDequeueCountSeen: 2 });
    expect(harness.arm.registry(id).ipRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(s.telemetry.failed).toEqual([]);
    expect(s.telemetry.completed).toHaveLength(1);
  });

  it("poisons a message that fails on every delivery and reports it as Poisoned, the other registries unharmed", async () => {
    const suffix = randomBytes(4).toString("hex");
    const broken = harness.addRegistry({ name: `fbroken${suffix}` });
    const fine = harness.addRegistry({ name: `ffine${suffix}` });
    const s = await setup({ TARGET_REGISTRIES: `${broken},${fine}` });
    harness.arm.injectFault({ op: "get", registryId: broken, times: Infinity, fault: { kind: "status", status: 500 } });
    try {
      await createTimerHandler(s.runtime)(timer, context());
      const stats = await drain(s);
      expect(stats).toMatchObject({
        poisoned: 1,
        failedDeliveries: MAX_DEQUEUE_COUNT,
        maxDequeueCountSeen: MAX_DEQUEUE_COUNT,
      });
    } finally {
      harness.arm.clearFaults();
    }
    expect(harness.arm.registry(fine).ipRules).toHaveLength(JAPAN_EAST_IPV4);
    expect(harness.arm.registry(broken).ipRules).toEqual([]);
    // One failure (the last delivery), then the poison report: not one per retry.
    expect(s.telemetry.failed.map((f) => [f.registry, f.errorType])).toEqual([
      [broken, "RegistryRequestFailed"],
      [broken, "Poisoned"],
    ]);
    expect(s.telemetry.failed[1]?.message).toMatch(/failed on all 5 deliveries.*poison queue/);
    // Retries are not runs that ended: only the last delivery's failure is recorded.
    expect(await s.runtime.ports.runs?.read(broken)).toMatchObject({
      outcome: "failed",
      error: { code: "RegistryRequestFailed" },
    });
  });

  it("writes once when the same message is delivered twice", async () => {
    const id = harness.addRegistry({ name: `fdup${randomBytes(4).toString("hex")}` });
    const s = await setup({ TARGET_REGISTRIES: id });
    await createTimerHandler(s.runtime)(timer, context());
    const [message] = (await s.queue.peekMessages()).peekedMessageItems;
    if (message === undefined) throw new Error("no message enqueued");
    // At-least-once delivery: the same message twice, at the same time.
    await s.queue.sendMessage(message.messageText);
    const writes = harness.arm.writes;
    const stats = await drain(s, 2);
    expect(stats.succeeded).toBe(2);
    expect(harness.arm.writes).toBe(writes + 1);
    expect(s.telemetry.completed.filter((c) => c.adds > 0)).toHaveLength(1);
  });

  it("drops a message that is not a fan-out message, reporting it, without retrying it", async () => {
    const s = await setup({
      TARGET_REGISTRIES: harness.addRegistry({ name: `fjunk${randomBytes(4).toString("hex")}` }),
    });
    await s.queue.sendMessage(Buffer.from(JSON.stringify({ hello: "world" })).toString("base64"));
    const stats = await drain(s);
    expect(stats).toMatchObject({ succeeded: 1, failedDeliveries: 0, poisoned: 0 });
    expect(s.telemetry.failed.map((f) => f.errorType)).toEqual(["InvalidFanoutMessage"]);
  });
});
