/**
 * The fan-out figures of `npm run bench` (run in a child process of bench.ts, so its peak RSS is
 * the run's alone): N emulated registries, discovered by tag, scheduled on a real Azurite queue
 * and synced by the real queue handler at concurrency C, against the HTTPS ARM emulator with a
 * fixed latency per call. Prints one JSON object: registries per minute, wall time, ARM calls per
 * registry, peak RSS. Needs NODE_EXTRA_CA_CERTS set to the test CA before start (bench.ts does it).
 */
import type { Timer } from "@azure/functions";
import { createRequire } from "node:module";
import { QueueServiceClient } from "@azure/storage-queue";
import { randomBytes } from "node:crypto";
import { resourceUsage } from "node:process";
import { createPoisonHandler, createQueueHandler } from "../src/app/queue-handler.js";
import { createTimerHandler } from "../src/app/timer-handler.js";
import { MAX_DEQUEUE_COUNT } from "../src/fanout/message.js";
import { noopTelemetry } from "../src/telemetry/noop.js";
import { startAzurite } from "../test/support/azurite.js";
import { startHarness } from "../test/support/harness.js";
import { fixturePath } from "../test/support/paths.js";
import { drainQueues } from "../test/support/queue-host.js";

// @azure/functions is CommonJS: a named value import crashes plain Node.
const { InvocationContext } = createRequire(import.meta.url)("@azure/functions") as typeof import("@azure/functions");

const REGISTRIES = Number(process.argv[2] ?? "200");
const CONCURRENCY = Number(process.argv[3] ?? "16");
const LATENCY_MS = Number(process.argv[4] ?? "50");
const REGIONS = ["japaneast", "eastus", "westeurope", "australiaeast", "brazilsouth"];

async function main(): Promise<void> {
  const azurite = await startAzurite({ queue: true });
  const harness = await startHarness({ arm: { latencyMs: LATENCY_MS } });
  try {
    const tag = randomBytes(4).toString("hex");
    for (let i = 0; i < REGISTRIES; i += 1) {
      harness.addRegistry({
        subscriptionId: `00000000-0000-0000-0000-${String(i % 10).padStart(12, "0")}`,
        name: `bench${String(i).padStart(5, "0")}`,
        location: REGIONS[i % REGIONS.length] ?? "eastus",
        ipRules: ["203.0.113.10"],
        tags: { "acr-allowlist-sync": tag },
      });
    }
    const queueName = `bench-${tag}`;
    const base = harness.runtime(
      {
        TARGET_DISCOVERY_TAG: `acr-allowlist-sync=${tag}`,
        SYNC_FANOUT: "true",
        SERVICE_TAGS_URL: fixturePath("servicetags", "ServiceTags_Public_20251020.acr.json"),
        AzureWebJobsStorage: azurite.connectionString,
        LEDGER_CONTAINER: `bench-${tag}`,
        SYNC_LOCK_WAIT_MS: "30000",
      },
      { fanoutQueueName: queueName },
    );
    const runtime = { ...base, ports: { ...base.ports, telemetry: noopTelemetry() } };
    const service = QueueServiceClient.fromConnectionString(azurite.connectionString);
    const queue = service.getQueueClient(queueName);
    const poison = service.getQueueClient(`${queueName}-poison`);
    await queue.createIfNotExists();
    await poison.createIfNotExists();
    const timer: Timer = {
      isPastDue: false,
      schedule: { adjustForDST: false },
      scheduleStatus: { last: "", next: "", lastUpdated: "" },
    };
    const started = performance.now();
    await createTimerHandler(runtime)(
      timer,
      new InvocationContext({ functionName: "allowlistSync", logHandler: () => undefined }),
    );
    const stats = await drainQueues({
      queue,
      poison,
      handler: createQueueHandler(runtime),
      poisonHandler: createPoisonHandler(runtime),
      maxDequeueCount: MAX_DEQUEUE_COUNT,
      concurrency: CONCURRENCY,
    });
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      JSON.stringify({
        registries: REGISTRIES,
        concurrency: CONCURRENCY,
        armLatencyMs: LATENCY_MS,
        seconds: Math.round(seconds * 10) / 10,
        registriesPerMinute: Math.round((REGISTRIES / seconds) * 60),
        armCallsPerRegistry: Math.round((harness.arm.requests.length / REGISTRIES) * 100) / 100,
        poisoned: stats.poisoned,
        // getrusage maxrss is KiB on Linux; Azurite runs in its own process and is not counted.
        peakRssMiB: Math.round(resourceUsage().maxRSS / 1024),
      }),
    );
  } finally {
    await harness.close();
    await azurite.stop();
  }
}

await main();
