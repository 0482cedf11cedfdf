import { HttpRequest, HttpResponse, InvocationContext } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import { loadSettings } from "../../src/config/settings.js";
import { ConfigError, DeadlineExceededError } from "../../src/errors.js";
import { blobContainerFromSettings, createBlobLedgerStore } from "../../src/ledger/blob-store.js";
import { runInvocation } from "../../src/sync/invocation.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";
import { LATEST_ALIAS_PATH } from "../support/servicetags-server.js";

/**
 * One time budget per invocation, shared by the download, the lock wait and every registry.
 * The budget is a setting, so these runs use 1.5 s against an ARM or a source that is slower:
 * the run must stop by itself, report AllowlistSyncFailed with DeadlineExceeded and flush.
 */

const BUDGET_MS = "1500";
const FILE = "/download/ServiceTags_Public_20251020.json";
let harness: Harness;
let ingestion: IngestionEndpoint;

beforeAll(async () => {
  harness = await startHarness();
  ingestion = await startIngestionEndpoint();
});
afterAll(async () => {
  await ingestion.close();
  await harness.close();
});
beforeEach(() => {
  harness.arm.clearFaults();
  harness.tags.clearFaults();
  ingestion.clear();
});

function setup(count: number, extra: Record<string, string> = {}) {
  const ids = Array.from({ length: count }, () =>
    harness.addRegistry({ name: `reg${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] }),
  );
  const runtime = harness.runtime({
    TARGET_REGISTRIES: ids.join(","),
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `deadline-${randomBytes(6).toString("hex")}`,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    SYNC_DEADLINE_MS: BUDGET_MS,
    ...extra,
  });
  return { ids, runtime };
}

function failedEvents() {
  return ingestion.events("AllowlistSyncFailed").map((e) => ({
    registry: e.properties.registry,
    errorType: e.properties.errorType,
  }));
}

describe("the invocation deadline", () => {
  it("stops a run on a slow ARM, skips the registries after it, writes nothing and reports DeadlineExceeded", async () => {
    const { ids, runtime } = setup(2);
    const [first = "", second = ""] = ids;
    harness.arm.injectFault({ op: "get", registryId: first, fault: { kind: "delay", ms: 6_000 } });
    const writesBefore = harness.arm.writes;

    const outcomes = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "timer",
      actor: "timer",
    });

    const errors = outcomes.map((o) => (o.ok ? undefined : o.error));
    expect(errors.every((e) => e instanceof DeadlineExceededError)).toBe(true);
    expect(errors.map((e) => (e as DeadlineExceededError).details.stage)).toEqual(["registry", "not-started"]);
    expect((errors[0] as DeadlineExceededError).message).toContain("SYNC_DEADLINE_MS");
    expect(harness.arm.writes).toBe(writesBefore);
    expect(harness.arm.requests.filter((r) => r.registryId === second)).toEqual([]);
    // Flushed before runInvocation returned: the alert sees both registries.
    expect(failedEvents()).toEqual([
      { registry: first, errorType: "DeadlineExceeded" },
      { registry: second, errorType: "DeadlineExceeded" },
    ]);
    await (runtime.ports.telemetry as Telemetry).shutdown();
  });

  it("stops a download that drips past the budget before any ARM call", async () => {
    const { ids, runtime } = setup(1);
    for (const path of [FILE, LATEST_ALIAS_PATH])
      harness.tags.setFault(path, { kind: "slow", intervalMs: 400, chunkBytes: 64 });
    const requestsBefore = harness.arm.requests.length;

    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "timer",
      actor: "timer",
    });

    const error = outcome?.ok === false ? outcome.error : undefined;
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as DeadlineExceededError).details.stage).toBe("download");
    expect(harness.arm.requests.length).toBe(requestsBefore);
    expect(failedEvents()).toEqual([{ registry: ids[0], errorType: "DeadlineExceeded" }]);
    await (runtime.ports.telemetry as Telemetry).shutdown();
  });

  it("waits for another run's lock only as long as the budget lasts", async () => {
    const { ids, runtime } = setup(1, { SYNC_LOCK_WAIT_MS: "60000" });
    const other = createBlobLedgerStore({
      containerClient: blobContainerFromSettings({
        connectionString: process.env.AZURITE_CONNECTION_STRING,
        containerName: runtime.settings.ledgerContainer,
      }),
    });
    const held = await other.acquireLock(ids[0] ?? "", { waitMs: 0 });
    try {
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "timer",
        actor: "timer",
      });
      const error = outcome?.ok === false ? outcome.error : undefined;
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect((error as DeadlineExceededError).details.stage).toBe("lock");
    } finally {
      await held.release();
    }
    await (runtime.ports.telemetry as Telemetry).shutdown();
  });

  it("answers an HTTP dry run on a slow ARM with 504 DeadlineExceeded within SYNC_HTTP_DEADLINE_MS", async () => {
    const { ids, runtime } = setup(1, { SYNC_DEADLINE_MS: "600000", SYNC_HTTP_DEADLINE_MS: BUDGET_MS });
    harness.arm.injectFault({ op: "get", registryId: ids[0], fault: { kind: "delay", ms: 6_000 } });
    const context = new InvocationContext({ functionName: "allowlistPlan", invocationId: "deadline" });
    const request = new HttpRequest({ method: "GET", url: "https://func.example/api/plan" });
    const response = new HttpResponse(await createPlanHandler(runtime)(request, context));
    expect(response.status).toBe(504);
    const body = (await response.json()) as { code: string; details: { setting: string } };
    expect(body.code).toBe("DeadlineExceeded");
    expect(body.details.setting).toBe("SYNC_HTTP_DEADLINE_MS");
    await (runtime.ports.telemetry as Telemetry).shutdown();
  });
});

describe("deadline settings", () => {
  const ID =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";

  it("refuses an HTTP budget at or past the 230 s response limit (minus the flush)", () => {
    expect(() => loadSettings({ TARGET_REGISTRIES: ID, SYNC_HTTP_DEADLINE_MS: "230000" })).toThrow(ConfigError);
    expect(loadSettings({ TARGET_REGISTRIES: ID }).httpDeadlineMs).toBeLessThan(230_000 - 15_000);
  });
});
