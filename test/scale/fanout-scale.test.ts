import { createBlobLedgerStore } from "../../src/ledger/blob-store.js";
import { BlobServiceClient } from "@azure/storage-blob";
import { QueueServiceClient } from "@azure/storage-queue";
import { InvocationContext, type Timer } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPoisonHandler, createQueueHandler } from "../../src/app/queue-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { createTimerHandler } from "../../src/app/timer-handler.js";
import { MAX_DEQUEUE_COUNT } from "../../src/fanout/message.js";
import { captureTelemetry, type TelemetryCapture } from "../faults/fault-lab.js";
import { FAST_TUNING, startHarness, type Harness } from "../support/harness.js";
import { fixturePath, projectRoot } from "../support/paths.js";
import { startAzurite, type Azurite } from "../support/azurite.js";
import { drainQueues, type QueueHostStats } from "../support/queue-host.js";
import { checkWeek } from "../replay/invariants.js";

/**
 * Scale: 1,000 emulated registries in 20 subscriptions (10 regions, a tenth crowded with 80 of
 * people's rules, some failing), discovered by tag and fanned out on a real Azurite queue to the
 * real queue handler of several emulated instances, against an ARM emulator that adds latency to
 * every call and throttles each subscription with 429 + Retry-After. It must converge with 0 lost
 * registries and 0 invariant violations, poisoning only the registries that fail on every delivery.
 *
 * Instances: INSTANCES copies of the production composition (their own runtime, so their own
 * per-subscription cap, 429 gate, SDK clients), each taking host.json's batchSize +
 * newBatchThreshold messages at a time, on one queue: the cap holds per instance only, as in Flex.
 *
 * Sized for CI on 2 busy cores, without shrinking the run: 20 ms of emulated ARM latency (real ARM
 * is ~50-150 ms per call), PATCH answered synchronously (no polls), per-subscription buckets scaled
 * down from ARM's (250 reads at 25/s) to 6 reads at 8/s so that the emulator really throttles a run
 * this fast (ARM would not at 50 registries per subscription; here a few hundred 429s, a number that
 * depends on the machine's speed, so it is printed, not asserted), plus two injected 429s on 20
 * registries. Concurrency 1 is measured on a 20-registry sample and extrapolated (all 1,000 one at a
 * time would take minutes). Its own Azurite (blob and queue): Azurite scans every blob of an account
 * per request, so the other test files' blobs would slow it. The run is CPU-bound here (emulator,
 * Azurite and the instances share 2 cores), so the ratio printed is a floor of what separate
 * instances would get. Figures are printed, never asserted.
 */

const SUBSCRIPTIONS = 20;
// SCALE_REGISTRIES lets a developer run a smaller or larger fleet; npm test runs the full 1,000.
const PER_SUBSCRIPTION = Math.max(5, Math.round(Number(process.env.SCALE_REGISTRIES ?? "1000") / SUBSCRIPTIONS));
const INSTANCES = 8;
const HOST = JSON.parse(readFileSync(join(projectRoot(), "host.json"), "utf8")) as {
  extensions: { queues: { batchSize: number; newBatchThreshold: number } };
};
/** Messages one instance handles at a time (azure-facts §9). */
const PER_INSTANCE = HOST.extensions.queues.batchSize + HOST.extensions.queues.newBatchThreshold;
const SAMPLE = 20;
const LATENCY_MS = 20;
const BUCKETS = { reads: { capacity: 6, refillPerSecond: 8 }, writes: { capacity: 3, refillPerSecond: 4 } };
const REGIONS = [
  "japaneast",
  "eastus",
  "westeurope",
  "australiaeast",
  "brazilsouth",
  "centralindia",
  "eastasia",
  "francecentral",
  "canadacentral",
  "uksouth",
];
const SERVICE_TAGS = fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json");

type Kind = "normal" | "crowded" | "poisoned" | "transient" | "throttled" | "denied" | "basic" | "untagged";
interface Spec {
  readonly id: string;
  readonly name: string;
  readonly kind: Kind;
  readonly region: string;
  readonly people: readonly string[];
}

const kindOf = (i: number): Kind =>
  i % 100 === 7
    ? "poisoned"
    : i % 100 === 13
      ? "transient"
      : i % 100 === 21
        ? "denied"
        : i % 50 === 17
          ? "throttled"
          : i % 200 === 33
            ? "basic"
            : i % 250 === 99
              ? "untagged"
              : i % 10 === 3
                ? "crowded"
                : "normal";

const peopleFor = (kind: Kind, i: number): string[] =>
  kind === "crowded"
    ? Array.from({ length: 80 }, (_, k) => `198.18.${Math.floor(k / 4)}.${(k % 4) * 64}/26`)
    : [`203.0.113.${i % 250}`, `198.51.100.0/24`];

const selectedByRegion = (() => {
  const file = JSON.parse(readFileSync(SERVICE_TAGS, "utf8")) as {
    values: { name: string; properties: { addressPrefixes: string[] } }[];
  };
  const map = new Map<string, string[]>();
  for (const region of REGIONS) {
    const tag = file.values.find((v) => v.name.toLowerCase() === `azurecontainerregistry.${region}`);
    if (tag === undefined) throw new Error(`the fixture has no tag for ${region}`);
    map.set(
      region,
      tag.properties.addressPrefixes.filter((p) => !p.includes(":")),
    );
  }
  return map;
})();

let harness: Harness;
let azurite: Azurite;
beforeAll(async () => {
  // PATCH answered 200 at once (ACR does either, azure-facts §3): two polls fewer per registry, same logic.
  harness = await startHarness({ arm: { latencyMs: LATENCY_MS, patchResponse: "sync" } });
  azurite = await startAzurite({ queue: true });
});
afterAll(async () => {
  await harness.close();
  await azurite.stop();
});

const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: "", next: "", lastUpdated: "" },
};

const connectionString = (): string => azurite.connectionString;

function addRegistries(
  prefix: string,
  subscriptions: number,
  perSubscription: number,
  tag: string,
  mixed: boolean,
): Spec[] {
  const specs: Spec[] = [];
  for (let s = 0; s < subscriptions; s += 1) {
    const subscriptionId = `00000000-0000-0000-${prefix}-${String(s).padStart(12, "0")}`;
    for (let r = 0; r < perSubscription; r += 1) {
      const i = s * perSubscription + r;
      const kind = mixed ? kindOf(i) : "normal";
      const region = REGIONS[i % REGIONS.length] ?? "japaneast";
      const name = `scale${prefix}${String(i).padStart(4, "0")}`;
      const people = peopleFor(kind, i);
      const id = harness.addRegistry({
        subscriptionId,
        name,
        location: region,
        ipRules: people,
        sku: kind === "basic" ? "Basic" : "Premium",
        deniedActions: kind === "denied" ? ["Microsoft.ContainerRegistry/registries/write"] : [],
        tags: kind === "untagged" ? { owner: "someone" } : { "acr-allowlist-sync": tag },
      });
      if (kind === "poisoned")
        harness.arm.injectFault({ op: "get", registryId: id, times: Infinity, fault: { kind: "status", status: 500 } });
      // Eight 503s outlast the SDK's 6 retries (7 attempts): the first delivery fails, the second succeeds.
      if (kind === "transient")
        harness.arm.injectFault({ op: "get", registryId: id, times: 8, fault: { kind: "status", status: 503 } });
      // ARM's answer to a spent bucket: 429 + Retry-After; the SDK waits it out, the gate pauses the subscription.
      if (kind === "throttled")
        harness.arm.injectFault({
          op: "get",
          registryId: id,
          times: 2,
          fault: { kind: "status", status: 429, code: "SubscriptionRequestsThrottled", retryAfterSeconds: 1 },
        });
      specs.push({ id, name, kind, region, people });
    }
  }
  return specs;
}

interface Run {
  readonly telemetry: TelemetryCapture;
  readonly stats: QueueHostStats;
  readonly wallMs: number;
  readonly armCalls: number;
  /** 429s answered by the emulator's per-subscription buckets (its own throttling, not injected). */
  readonly bucket429s: number;
  /** 429s answered by an injected fault. */
  readonly injected429s: number;
  /** 429s the instances' throttle gates saw (each waited out, then retried). */
  readonly gated429s: number;
  readonly container: string;
}

/** One instance of the queue function: the production composition of its own (cap, 429 gate, clients). */
function instanceRuntime(tag: string, queueName: string, container: string, telemetry: TelemetryCapture): Runtime {
  const base = harness.runtime(
    {
      TARGET_DISCOVERY_TAG: `acr-allowlist-sync=${tag}`,
      SYNC_FANOUT: "true",
      SERVICE_TAGS_URL: SERVICE_TAGS,
      AzureWebJobsStorage: connectionString(),
      LEDGER_CONTAINER: container,
      SYNC_MAX_PER_SUBSCRIPTION: "4",
      SYNC_LOCK_WAIT_MS: "30000",
    },
    {
      fanoutQueueName: queueName,
      tuning: {
        ...FAST_TUNING,
        registry: {
          ...FAST_TUNING.registry,
          retryOptions: { maxRetries: 6, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
          requestTimeoutMs: 10_000,
        },
        discovery: { pageSize: 100 },
      },
    },
  );
  return { ...base, ports: { ...base.ports, telemetry } };
}

function sumStats(all: readonly QueueHostStats[]): QueueHostStats {
  return all.reduce(
    (sum, s) => ({
      deliveries: sum.deliveries + s.deliveries,
      succeeded: sum.succeeded + s.succeeded,
      failedDeliveries: sum.failedDeliveries + s.failedDeliveries,
      poisoned: sum.poisoned + s.poisoned,
      maxDequeueCountSeen: Math.max(sum.maxDequeueCountSeen, s.maxDequeueCountSeen),
    }),
    { deliveries: 0, succeeded: 0, failedDeliveries: 0, poisoned: 0, maxDequeueCountSeen: 0 },
  );
}

/** The timer schedules (on the first instance), then `instances` instances drain the queue, `perInstance` messages each at a time. */
async function fanOut(tag: string, instances: number, perInstance: number): Promise<Run> {
  const suffix = randomBytes(5).toString("hex");
  const queueName = `scale-${suffix}`;
  const container = `scale-${suffix}`;
  const telemetry = captureTelemetry();
  const runtimes = Array.from({ length: instances }, () => instanceRuntime(tag, queueName, container, telemetry));
  const [scheduler] = runtimes;
  if (scheduler === undefined) throw new Error("no instance");
  const service = QueueServiceClient.fromConnectionString(connectionString());
  const queue = service.getQueueClient(queueName);
  const poison = service.getQueueClient(`${queueName}-poison`);
  await queue.createIfNotExists();
  await poison.createIfNotExists();
  const armBefore = harness.arm.requests.length;
  const bucketBefore = harness.arm.throttled;
  const started = Date.now();
  const context = new InvocationContext({
    functionName: "allowlistSync",
    invocationId: suffix,
    logHandler: () => undefined,
  });
  // Failed registries (denied, Basic) fail the scheduler's invocation only for the skipped ones; the rest is queued.
  await createTimerHandler(scheduler)(timer, context).catch(() => undefined);
  const stats = sumStats(
    await Promise.all(
      runtimes.map((runtime) =>
        drainQueues({
          queue,
          poison,
          handler: createQueueHandler(runtime),
          poisonHandler: createPoisonHandler(runtime),
          maxDequeueCount: MAX_DEQUEUE_COUNT,
          concurrency: perInstance,
          visibilityTimeoutSeconds: 0,
        }),
      ),
    ),
  );
  const wallMs = Date.now() - started;
  const answered = harness.arm.requests.slice(armBefore);
  return {
    telemetry,
    stats,
    wallMs,
    armCalls: answered.length,
    bucket429s: harness.arm.throttled - bucketBefore,
    injected429s: answered.filter((r) => r.status === 429 && r.fault === "status").length,
    gated429s: runtimes.reduce((sum, runtime) => sum + runtime.throttleGate.throttled(), 0),
    container,
  };
}

describe("fan-out at scale", () => {
  it(`converges ${SUBSCRIPTIONS * PER_SUBSCRIPTION} registries in ${SUBSCRIPTIONS} subscriptions with 0 lost and 0 invariant violations, poisoning only the ones that must be`, async () => {
    // Concurrency 1, on a sample: the per-registry cost without any overlap.
    const sampleTag = randomBytes(4).toString("hex");
    const sample = addRegistries("5a5a", 2, SAMPLE / 2, sampleTag, false);
    const single = await fanOut(sampleTag, 1, 1);
    expect(single.telemetry.completed).toHaveLength(sample.length);

    const tag = randomBytes(4).toString("hex");
    harness.arm.configure({ throttle: BUCKETS });
    const specs = addRegistries("b1b1", SUBSCRIPTIONS, PER_SUBSCRIPTION, tag, true);
    const before = new Map(specs.map((s) => [s.id, harness.arm.registry(s.id).ipRules]));
    let run: Run;
    try {
      run = await fanOut(tag, INSTANCES, PER_INSTANCE);
    } finally {
      harness.arm.configure({ throttle: null });
      harness.arm.clearFaults();
    }

    const ledgers = createBlobLedgerStore({
      containerClient: BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(run.container),
    });
    const completed = new Set(run.telemetry.completed.map((e) => e.registry));
    const failedBy = new Map<string, string[]>();
    for (const event of run.telemetry.failed)
      failedBy.set(event.registry, [...(failedBy.get(event.registry) ?? []), event.errorType]);
    const patchesOf = new Map<string, { sent: number; applied: number }>();
    for (const request of harness.arm.requests) {
      if (request.method !== "PATCH" || request.registryId === undefined) continue;
      const entry = patchesOf.get(request.registryId.toLowerCase()) ?? { sent: 0, applied: 0 };
      entry.sent += 1;
      if (request.status === 200 || request.status === 201) entry.applied += 1;
      patchesOf.set(request.registryId.toLowerCase(), entry);
    }

    // Every ledger, a few at a time (one after the other would be a thousand round trips).
    const ledgerOf = new Map<string, Awaited<ReturnType<typeof ledgers.read>>>();
    for (let i = 0; i < specs.length; i += 50) {
      const batch = specs.slice(i, i + 50).filter((spec) => spec.kind !== "poisoned");
      const read = await Promise.all(batch.map((spec) => ledgers.read(spec.id)));
      batch.forEach((spec, j) => ledgerOf.set(spec.id, read[j]));
    }
    const lost: string[] = [];
    const violations: string[] = [];
    for (const spec of specs) {
      const after = harness.arm.registry(spec.id).ipRules;
      const failures = failedBy.get(spec.id) ?? [];
      const expectedToConverge = ["normal", "crowded", "transient", "throttled"].includes(spec.kind);
      if (expectedToConverge && !completed.has(spec.id))
        lost.push(`${spec.name} (${spec.kind}): not completed [${failures.join(",")}]`);
      if (spec.kind === "poisoned" && failures.join(",") !== "RegistryRequestFailed,Poisoned")
        lost.push(`${spec.name}: expected a last failure and Poisoned, got [${failures.join(",")}]`);
      if (spec.kind === "denied" && failures.join(",") !== "RegistryAccessDenied")
        lost.push(`${spec.name}: expected RegistryAccessDenied once, got [${failures.join(",")}]`);
      if (spec.kind === "basic" && failures.join(",") !== "NetworkRuleNotSupported")
        lost.push(`${spec.name}: expected NetworkRuleNotSupported at discovery, got [${failures.join(",")}]`);
      if (spec.kind === "untagged" && (failures.length > 0 || completed.has(spec.id)))
        lost.push(`${spec.name}: untagged but touched`);
      if (spec.kind === "basic" || spec.kind === "untagged") continue;
      const patches = patchesOf.get(spec.id.toLowerCase()) ?? { sent: 0, applied: 0 };
      violations.push(
        ...checkWeek({
          label: `${spec.name} (${spec.kind})`,
          selected: selectedByRegion.get(spec.region),
          converged: expectedToConverge,
          rulesBefore: before.get(spec.id) ?? [],
          rulesAfter: after,
          ruleLimit: 100,
          peopleRules: spec.people,
          patches: patches.sent,
          writes: patches.applied,
          selectionUnchanged: false,
          ledger: ledgerOf.get(spec.id),
        }),
      );
    }

    const registries = specs.length;
    const concurrency = INSTANCES * PER_INSTANCE;
    const mustPoison = specs.filter((s) => s.kind === "poisoned").length;
    const singleRate = SAMPLE / (single.wallMs / 1000);
    const fanRate = registries / (run.wallMs / 1000);
    const report = [
      `fan-out scale: ${registries} registries in ${SUBSCRIPTIONS} subscriptions, ${REGIONS.length} regions, ARM latency ${LATENCY_MS} ms/call, buckets per subscription ${BUCKETS.reads.capacity} reads at ${BUCKETS.reads.refillPerSecond}/s, ${BUCKETS.writes.capacity} writes at ${BUCKETS.writes.refillPerSecond}/s`,
      `  concurrency 1 (measured on a sample of ${SAMPLE}, extrapolated): ${(single.wallMs / 1000).toFixed(1)} s = ${singleRate.toFixed(1)} registries/s -> ~${(registries / singleRate).toFixed(0)} s for ${registries}`,
      `  concurrency ${concurrency} (${INSTANCES} instances x ${PER_INSTANCE}, all ${registries}): ${(run.wallMs / 1000).toFixed(1)} s = ${fanRate.toFixed(1)} registries/s; ratio ${(fanRate / singleRate).toFixed(1)}x`,
      `  ARM calls per registry: ${(run.armCalls / registries).toFixed(2)} (sample at concurrency 1: ${(single.armCalls / SAMPLE).toFixed(2)})`,
      `  429s absorbed: ${run.bucket429s + run.injected429s} (${run.bucket429s} from the emulator's per-subscription buckets, ${run.injected429s} injected; ${run.gated429s} paused a subscription in an instance's gate)`,
      `  deliveries ${run.stats.deliveries}, failed deliveries ${run.stats.failedDeliveries}, messages poisoned ${run.stats.poisoned} (must fail on every delivery: ${mustPoison})`,
      `  lost registries: ${lost.length}; invariant violations: ${violations.length}`,
    ];
    console.log(report.join("\n"));

    expect(lost).toEqual([]);
    expect(violations).toEqual([]);
    expect(run.stats.poisoned).toBe(specs.filter((s) => s.kind === "poisoned").length);
    expect(run.injected429s).toBeGreaterThanOrEqual(2 * specs.filter((s) => s.kind === "throttled").length);
    // Every 429 ARM answered (buckets and injected alike) reached an instance's gate, which paused that
    // subscription for its Retry-After: absorbed, not failed (no registry lost above).
    expect(run.gated429s).toBe(run.bucket429s + run.injected429s);
  }, 300_000);
});
