import { ManagedIdentityCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createResourceGraphSource } from "../../src/discovery/resource-graph.js";
import { DiscoveryError } from "../../src/errors.js";
import { createThrottleGate } from "../../src/registry/throttle.js";
import { startArmEmulator, type ArmEmulator } from "../support/arm-emulator.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "../support/identity-endpoint.js";

/**
 * Discovery through the real @azure/arm-resourcegraph client, over HTTPS, against the ARM
 * emulator's Resource Graph: paging with $skipToken, scopes, the quota headers, 429 + Retry-After.
 */

const SUB_A = "00000000-0000-0000-0000-00000000aaa1";
const SUB_B = "00000000-0000-0000-0000-00000000bbb2";
const TAG = { key: "acr-allowlist-sync", value: "enabled" };
const FAST = { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 };

let identity: IdentityEndpoint;
let arm: ArmEmulator;
let credential: ManagedIdentityCredential;

beforeAll(async () => {
  identity = await startIdentityEndpoint();
  Object.assign(process.env, identity.env());
  credential = new ManagedIdentityCredential();
  arm = await startArmEmulator({ acceptToken: identity.tokenValidator() });
  for (let i = 0; i < 7; i += 1) {
    arm.addRegistry({
      subscriptionId: i < 4 ? SUB_A : SUB_B,
      name: `tagged${i}`,
      location: "eastus",
      // Tag names differ in case, values too: ARM treats names case-insensitively.
      tags: i % 2 === 0 ? { "acr-allowlist-sync": "enabled" } : { "ACR-Allowlist-Sync": "Enabled", owner: "x" },
    });
  }
  arm.addRegistry({ subscriptionId: SUB_A, name: "untagged0", location: "eastus", tags: { owner: "y" } });
  arm.addRegistry({
    subscriptionId: SUB_A,
    name: "othervalue0",
    location: "eastus",
    tags: { "acr-allowlist-sync": "off" },
  });
  arm.addManagementGroup("platform", [SUB_B]);
});
afterAll(async () => {
  await arm.close();
  await identity.close();
});

describe("discovery with Azure Resource Graph", () => {
  it("finds every tagged registry across pages, tag name and value in any case", async () => {
    const source = createResourceGraphSource({
      credential,
      cloud: "Public",
      endpoint: arm.url,
      pageSize: 2,
      retryOptions: FAST,
    });
    const before = arm.requests.length;
    const result = await source.discover({ tag: TAG, scopes: [] });
    expect(result.registries.map((r) => r.name).sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `tagged${i}`));
    const queries = arm.requests.slice(before).filter((r) => r.op === "query");
    expect(queries).toHaveLength(4);
    expect(result.stats.requests).toBe(4);
    expect(queries.every((q) => q.query === "?api-version=2024-04-01")).toBe(true);
    expect(result.registries.find((r) => r.name === "tagged1")?.tags).toEqual({
      "ACR-Allowlist-Sync": "Enabled",
      owner: "x",
    });
  });

  it("limits the search to the configured subscriptions and management groups", async () => {
    const source = createResourceGraphSource({ credential, cloud: "Public", endpoint: arm.url, retryOptions: FAST });
    const onlyA = await source.discover({ tag: TAG, scopes: [{ kind: "subscription", id: SUB_A }] });
    expect(onlyA.registries.map((r) => r.name)).toEqual(["tagged0", "tagged1", "tagged2", "tagged3"]);
    const group = await source.discover({ tag: TAG, scopes: [{ kind: "managementGroup", id: "platform" }] });
    expect(group.registries.map((r) => r.subscriptionId)).toEqual([SUB_B, SUB_B, SUB_B]);
  });

  it("waits for the quota window when a page says the quota is spent, then reads the next page", async () => {
    arm.configure({ resourceGraphQuota: { queries: 2, windowMs: 1_000 } });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const waits: number[] = [];
      const source = createResourceGraphSource({
        credential,
        cloud: "Public",
        endpoint: arm.url,
        pageSize: 3,
        retryOptions: FAST,
        sleep: async (ms) => {
          waits.push(ms);
          await new Promise((resolve) => setTimeout(resolve, ms));
        },
      });
      const throttledBefore = arm.throttled;
      const result = await source.discover({ tag: TAG, scopes: [] });
      expect(result.registries).toHaveLength(7);
      // Page 2 of 3 leaves 0 of 2: the source waits instead of collecting a 429.
      expect(result.stats.quotaWaits).toBe(1);
      expect(waits).toHaveLength(1);
      expect(waits[0]).toBeGreaterThan(0);
      expect(arm.throttled).toBe(throttledBefore);
    } finally {
      arm.configure({ resourceGraphQuota: { queries: 15, windowMs: 5_000 } });
    }
  });

  it("absorbs a 429 with Retry-After through the SDK's retry, and counts it at the shared gate", async () => {
    arm.injectFault({
      op: "query",
      fault: { kind: "status", status: 429, code: "RateLimiting", retryAfterSeconds: 1 },
    });
    const gate = createThrottleGate();
    const source = createResourceGraphSource({
      credential,
      cloud: "Public",
      endpoint: arm.url,
      retryOptions: FAST,
      throttleGate: gate,
    });
    const result = await source.discover({ tag: TAG, scopes: [] });
    expect(result.registries).toHaveLength(7);
    expect(result.stats.throttled).toBe(1);
    expect(gate.throttled()).toBe(1);
  });

  it("fails with a DiscoveryError that says which role is missing when Resource Graph refuses", async () => {
    arm.injectFault({ op: "query", fault: { kind: "status", status: 403, code: "AuthorizationFailed" } });
    const source = createResourceGraphSource({ credential, cloud: "Public", endpoint: arm.url, retryOptions: FAST });
    const error = await source.discover({ tag: TAG, scopes: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DiscoveryError);
    expect((error as DiscoveryError).describe()).toMatch(
      /\(403 AuthorizationFailed\).*Reader on each TARGET_DISCOVERY_SCOPES/,
    );
    expect(JSON.stringify((error as DiscoveryError).toJSON())).not.toMatch(/Bearer|eyJ|"headers"/);
  });

  it("asks for a token of the sovereign cloud's own audience, not the public one", async () => {
    const china = await startArmEmulator({
      acceptToken: identity.tokenValidator("https://management.chinacloudapi.cn"),
    });
    try {
      china.addRegistry({
        subscriptionId: SUB_A,
        name: "chinareg0",
        location: "chinanorth3",
        tags: { "acr-allowlist-sync": "enabled" },
      });
      const source = createResourceGraphSource({ credential, cloud: "China", endpoint: china.url, retryOptions: FAST });
      const result = await source.discover({ tag: TAG, scopes: [] });
      expect(result.registries.map((r) => r.name)).toEqual(["chinareg0"]);
      expect(
        identity.requests.some((r) => r.resource?.startsWith("https://management.chinacloudapi.cn") === true),
      ).toBe(true);
    } finally {
      await china.close();
    }
  });
});
