import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { EVENT_NAMES, type Telemetry } from "../../src/telemetry/types.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

/** A credential that hands out a fixed token and remembers the scopes it was asked for. */
class FixedTokenCredential implements TokenCredential {
  readonly scopes: string[] = [];
  getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return Promise.resolve({ token: "test-ingestion-token", expiresOnTimestamp: Date.now() + 3_600_000 });
  }
}

// Application Insights with local authentication disabled accepts only Entra ID tokens: the sink
// must send `Authorization: Bearer` with the Azure Monitor audience.
describe("telemetry with Entra ID authentication and a role name", () => {
  let endpoint: IngestionEndpoint;
  let telemetry: Telemetry;
  const credential = new FixedTokenCredential();

  beforeAll(async () => {
    endpoint = await startIngestionEndpoint();
    telemetry = createTelemetry({
      connectionString: endpoint.connectionString,
      credential,
      cloudRoleName: "acr-allowlist-sync-test",
      offlineStorage: false,
    });
    telemetry.syncFailed({
      registry: "r",
      dryRun: false,
      errorType: "LockHeld",
      message: "Another run holds the registry.",
      durationMs: 5,
      trigger: "timer",
    });
    await telemetry.flush();
  });

  afterAll(async () => {
    await telemetry.shutdown();
    await endpoint.close();
  });

  it("asks the credential for the Azure Monitor scope and sends its token as a bearer header", () => {
    expect(credential.scopes).toContain("https://monitor.azure.com/.default");
    expect(endpoint.requests.length).toBeGreaterThan(0);
    expect(endpoint.requests.every((r) => r.authorization === "Bearer test-ingestion-token")).toBe(true);
  });

  it("tags rows with the configured cloud role name", () => {
    const [event] = endpoint.events(EVENT_NAMES.failed);
    expect(event?.tags["ai.cloud.role"]).toBe("acr-allowlist-sync-test");
  });
});
