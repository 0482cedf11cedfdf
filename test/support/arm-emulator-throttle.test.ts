import { ManagedIdentityCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createArmRegistryGateway } from "../../src/registry/arm-gateway.js";
import { parseRegistryId } from "../../src/registry/resource-id.js";
import { createThrottleGate } from "../../src/registry/throttle.js";
import { startArmEmulator, type ArmEmulator } from "./arm-emulator.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "./identity-endpoint.js";

/**
 * The emulator's ARM throttling (per-subscription token buckets, 429 + Retry-After) and latency,
 * seen through the real registry gateway: the SDK waits out Retry-After, the shared gate pauses
 * the other calls of the same subscription, and the registry reads succeed.
 */

const SUB = "00000000-0000-0000-0000-0000000077a1";
const OTHER = "00000000-0000-0000-0000-0000000077b2";
let identity: IdentityEndpoint;
let arm: ArmEmulator;

beforeAll(async () => {
  identity = await startIdentityEndpoint();
  Object.assign(process.env, identity.env());
  arm = await startArmEmulator({ acceptToken: identity.tokenValidator() });
});
afterAll(async () => {
  await arm.close();
  await identity.close();
});

describe("the ARM emulator's throttling", () => {
  it("answers 429 with Retry-After beyond a subscription's read bucket, and the gateway absorbs it", async () => {
    const ids = [0, 1, 2, 3, 4].map((i) =>
      arm.addRegistry({ subscriptionId: SUB, name: `throttled${i}`, location: "eastus" }),
    );
    const other = arm.addRegistry({ subscriptionId: OTHER, name: "unthrottled0", location: "eastus" });
    arm.configure({
      throttle: { reads: { capacity: 4, refillPerSecond: 4 }, writes: { capacity: 10, refillPerSecond: 10 } },
    });
    try {
      const gate = createThrottleGate();
      const gateway = createArmRegistryGateway({
        credential: new ManagedIdentityCredential(),
        endpoint: arm.url,
        operationTimeoutMs: 10_000,
        retryOptions: { maxRetries: 5, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
        throttleGate: gate,
      });
      const throttledBefore = arm.throttled;
      // 5 registries x (GET + listUsages) = 10 reads against a bucket of 4 refilled at 4/s.
      const snapshots = await Promise.all(ids.map((id) => gateway.read(parseRegistryId(id))));
      expect(snapshots.map((s) => s.ref.name)).toEqual(ids.map((id) => parseRegistryId(id).name));
      const answered429 = arm.requests.filter((r) => r.status === 429 && r.registryId?.includes(SUB) === true);
      expect(answered429.length).toBeGreaterThan(0);
      expect(arm.throttled - throttledBefore).toBe(answered429.length);
      expect(gate.throttled()).toBe(answered429.length);
      // Another subscription has its own bucket.
      const before = arm.requests.length;
      await gateway.read(parseRegistryId(other));
      expect(arm.requests.slice(before).map((r) => r.status)).toEqual([200, 200]);
    } finally {
      arm.configure({ throttle: null });
    }
  });

  it("adds the configured latency to every answer", async () => {
    const id = arm.addRegistry({ subscriptionId: OTHER, name: "slowreg0", location: "eastus" });
    arm.configure({ latencyMs: 150 });
    try {
      const gateway = createArmRegistryGateway({
        credential: new ManagedIdentityCredential(),
        endpoint: arm.url,
        operationTimeoutMs: 10_000,
      });
      const before = arm.requests.length;
      await gateway.read(parseRegistryId(id));
      expect(arm.requests.slice(before).map((r) => `${r.op} ${r.latencyMs}`)).toEqual(["get 150", "usages 150"]);
    } finally {
      arm.configure({ latencyMs: 0 });
    }
  });
});
