import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import type { SyncFailedEvent } from "../../src/telemetry/types.js";
import { startIngestionEndpoint, TEST_INSTRUMENTATION_KEY } from "../support/ingestion-endpoint.js";
import { serverTlsOptions } from "../support/tls.js";

// A telemetry outage must never fail or stall a sync run: flush() resolves whatever ingestion does.

const failure: SyncFailedEvent = {
  registry: "r",
  dryRun: false,
  errorType: "RegistryRequestFailed",
  message: "ARM 503",
  durationMs: 9,
  trigger: "timer",
};
const quiet = { offlineStorage: false } as const;

describe("telemetry when ingestion misbehaves", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("resolves flush when ingestion refuses the batch", async () => {
    const endpoint = await startIngestionEndpoint({ status: 400 });
    cleanups.push(() => endpoint.close());
    const telemetry = createTelemetry({ connectionString: endpoint.connectionString, ...quiet });
    telemetry.syncFailed(failure);
    await expect(telemetry.flush()).resolves.toBeUndefined();
    await telemetry.shutdown();
    expect(endpoint.requests.length).toBeGreaterThan(0);
    expect(endpoint.envelopes).toEqual([]);
  });

  it("resolves flush at its deadline when ingestion never answers", async () => {
    const received: string[] = [];
    const server: Server = createServer(serverTlsOptions(), (req) => {
      received.push(req.url ?? "");
      // Never answer: the exporter's request stays open.
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => {
            resolve();
          });
        }),
    );
    const { port } = server.address() as AddressInfo;
    const telemetry = createTelemetry({
      connectionString: `InstrumentationKey=${TEST_INSTRUMENTATION_KEY};IngestionEndpoint=https://127.0.0.1:${port}/`,
      flushTimeoutMs: 300,
      ...quiet,
    });
    telemetry.syncFailed(failure);
    await expect(telemetry.flush()).resolves.toBeUndefined();
    await expect(telemetry.shutdown()).resolves.toBeUndefined();
    expect(received).toContain("/v2.1/track");
  });
});
