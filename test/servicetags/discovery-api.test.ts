import { DefaultAzureCredential } from "@azure/identity";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createDiscoveryApiSource, DISCOVERY_API_VERSION } from "../../src/servicetags/discovery-api.js";
import { parseServiceTags } from "../../src/servicetags/parse.js";
import { ServiceTagsFetchError } from "../../src/servicetags/source-errors.js";
import { TEST_SUBSCRIPTION, startHarness, type Harness } from "../support/harness.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";

/**
 * The Discovery API source against the ARM emulator's `Microsoft.Network/locations/{location}/serviceTags`
 * (string changeNumbers, nextLink paging), with a real credential from the managed identity endpoint.
 */

const FIXTURE = readServiceTagsFixture("ServiceTags_Public_20251020.acr.json");

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});
beforeEach(() => {
  harness.arm.serviceTagsApi.clearFaults();
  harness.arm.serviceTagsApi.publish(FIXTURE);
  harness.arm.serviceTagsApi.setPageSize(7);
});

function api(cloud: "Public" | "China" = "Public") {
  return createDiscoveryApiSource({
    credential: new DefaultAzureCredential(),
    cloud,
    endpoint: harness.arm.url,
    subscriptionId: TEST_SUBSCRIPTION,
    location: "westeurope",
    timeoutMs: 5_000,
    retryOptions: { maxRetries: 2, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  });
}

describe("the Discovery API source", () => {
  it("reads every page and maps string changeNumbers into the file's validated shape", async () => {
    const start = harness.arm.serviceTagsApi.requests.length;
    const document = await api().fetch();
    const file = parseServiceTags(FIXTURE.toString(), { location: "fixture" });
    expect(document.file.changeNumber).toBe(file.changeNumber);
    expect(document.file.values.map((v) => [v.name, v.properties.changeNumber, v.properties.addressPrefixes])).toEqual(
      file.values.map((v) => [v.name, v.properties.changeNumber, v.properties.addressPrefixes]),
    );
    expect(new Set(document.file.values.map((v) => v.properties.platform))).toEqual(new Set(["Azure"]));
    expect(document.origin).toMatchObject({
      kind: "discovery-api",
      fileName: "serviceTags@westeurope",
      cloud: "Public",
    });
    const requests = harness.arm.serviceTagsApi.requests.slice(start);
    expect(requests).toHaveLength(Math.ceil(file.values.length / 7));
    expect(requests[0]?.query).toBe(`?api-version=${DISCOVERY_API_VERSION}`);
  });

  it("retries a 503 through the SDK pipeline", async () => {
    harness.arm.serviceTagsApi.injectFault({ kind: "status", status: 503 }, 1);
    expect((await api().fetch()).file.values.length).toBeGreaterThan(0);
  });

  it("refuses an answer without the Discovery API's schema", async () => {
    harness.arm.serviceTagsApi.injectFault({ kind: "wrong-schema" }, 1);
    const error = await api()
      .fetch()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceTagsFetchError);
    expect((error as ServiceTagsFetchError).reason).toBe("schema");
  });

  it("names the permission when the identity lacks it", async () => {
    harness.arm.serviceTagsApi.deny([TEST_SUBSCRIPTION]);
    try {
      const error = (await api()
        .fetch()
        .catch((e: unknown) => e)) as ServiceTagsFetchError;
      expect(error.status).toBe(403);
      expect(error.remedy).toContain("Microsoft.Network/locations/serviceTags/read");
    } finally {
      harness.arm.serviceTagsApi.deny([]);
    }
  });

  it("asks for a token of the sovereign cloud's ARM audience", async () => {
    const start = harness.identity.requests.length;
    // The emulator is a Public ARM: it refuses the China token, as the real one would.
    const error = (await api("China")
      .fetch()
      .catch((e: unknown) => e)) as ServiceTagsFetchError;
    expect(error.status).toBe(401);
    const resources = harness.identity.requests.slice(start).map((r) => r.resource);
    expect(resources).toContain("https://management.chinacloudapi.cn");
  });

  it("refuses an answer of another cloud than the configured one", async () => {
    harness.arm.serviceTagsApi.publish(readServiceTagsFixture("ServiceTags_China_20260720.json"));
    harness.arm.serviceTagsApi.setPageSize(5000);
    const error = (await api()
      .fetch()
      .catch((e: unknown) => e)) as ServiceTagsFetchError;
    expect(error.reason).toBe("wrong-cloud");
  });
});
