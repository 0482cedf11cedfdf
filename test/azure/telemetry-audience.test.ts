import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createRuntime } from "../../src/app/runtime.js";
import { ConfigError } from "../../src/errors.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "../support/identity-endpoint.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

/**
 * Telemetry per cloud, through the production runtime and the real exporter: Entra ID ingestion
 * only when APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for it, and then a managed-identity
 * token (from the loopback identity endpoint) for the cloud's Azure Monitor audience.
 */

const ID =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
let identity: IdentityEndpoint;
let ingestion: IngestionEndpoint;

beforeAll(async () => {
  identity = await startIdentityEndpoint();
  Object.assign(process.env, identity.env());
  ingestion = await startIngestionEndpoint();
});
afterAll(async () => {
  await ingestion.close();
  await identity.close();
});
beforeEach(() => {
  ingestion.clear();
  identity.requests.length = 0;
});

async function sendOneEvent(env: Record<string, string>): Promise<void> {
  const runtime = createRuntime({
    TARGET_REGISTRIES: ID,
    AzureWebJobsStorage: "UseDevelopmentStorage=true",
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    ...env,
  });
  const telemetry = runtime.ports.telemetry as Telemetry;
  telemetry.syncFailed({
    registry: ID,
    dryRun: false,
    errorType: "DeadlineExceeded",
    message: "m",
    durationMs: 1,
    trigger: "timer",
  });
  await telemetry.shutdown();
}

const monitorTokenRequests = () => identity.requests.filter((r) => r.resource?.startsWith("https://monitor."));
/** Every ingestion request carried a token the identity endpoint issued for `audience` (cached ones too). */
const sentTokensFor = (audience: string): boolean =>
  ingestion.requests.length > 0 &&
  ingestion.requests.every((r) => identity.isIssued((r.authorization ?? "").replace(/^Bearer /, ""), audience));

describe("telemetry in each cloud", () => {
  it.each([
    ["Public", "https://monitor.azure.com"],
    ["AzureGovernment", "https://monitor.azure.us"],
    ["China", "https://monitor.azure.cn"],
  ])("with Entra ingestion in %s, asks for a token for %s and sends it", async (cloud, audience) => {
    await sendOneEvent({ SERVICE_TAGS_CLOUD: cloud, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=AAD" });
    expect(monitorTokenRequests().map((r) => r.resource?.replace(/\/+$/, ""))).toEqual([audience]);
    expect(ingestion.events("AllowlistSyncFailed")).toHaveLength(1);
    expect(sentTokensFor(audience)).toBe(true);
  });

  it("takes the audience from AADAudience in the connection string when it has one", async () => {
    await sendOneEvent({
      SERVICE_TAGS_CLOUD: "Public",
      APPLICATIONINSIGHTS_CONNECTION_STRING: `${ingestion.connectionString};AADAudience=https://monitor.azure.us/.default`,
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=AAD",
    });
    expect(sentTokensFor("https://monitor.azure.us")).toBe(true);
    expect(sentTokensFor("https://monitor.azure.com")).toBe(false);
  });

  it("sends with the instrumentation key alone, asking for no token, without Authorization=AAD", async () => {
    await sendOneEvent({ SERVICE_TAGS_CLOUD: "China" });
    expect(monitorTokenRequests()).toEqual([]);
    expect(ingestion.events("AllowlistSyncFailed")).toHaveLength(1);
    expect(ingestion.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it("uses the identity the authentication string names", async () => {
    await sendOneEvent({
      AZURE_CLIENT_ID: "99999999-8888-4777-8666-555555555555",
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "ClientId=11111111-2222-4333-8444-555555555555;Authorization=AAD",
    });
    expect(monitorTokenRequests().map((r) => r.clientId)).toEqual(["11111111-2222-4333-8444-555555555555"]);
  });

  it("refuses an authentication string that does not say Authorization=AAD, naming the setting", () => {
    expect(() =>
      createRuntime({ TARGET_REGISTRIES: ID, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=Key" }),
    ).toThrow(ConfigError);
  });
});
