import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { MAX_DEQUEUE_COUNT } from "../../src/fanout/message.js";
import { projectRoot } from "../support/paths.js";

const host = JSON.parse(readFileSync(join(projectRoot(), "host.json"), "utf8")) as {
  extensions?: { queues?: Record<string, unknown> };
};

/** host.json's queue settings are what the worker's "last delivery" logic and the README assume (azure-facts §9). */
describe("host.json queue settings", () => {
  it("poisons after the dequeue count the worker counts on", () => {
    expect(host.extensions?.queues?.maxDequeueCount).toBe(MAX_DEQUEUE_COUNT);
  });

  it("decodes base64 messages, as the scheduler sends them, and stays within the documented limits", () => {
    const queues = host.extensions?.queues ?? {};
    expect(queues.messageEncoding).toBe("base64");
    expect(queues.batchSize).toBeLessThanOrEqual(32);
    expect(queues.newBatchThreshold).toBeLessThanOrEqual(Number(queues.batchSize));
    expect(String(queues.visibilityTimeout)).toMatch(/^\d\d:\d\d:\d\d$/);
  });

  it("lets one instance hold no more messages at once than SYNC_MAX_PER_SUBSCRIPTION allows of one subscription", () => {
    // batchSize + newBatchThreshold is an instance's most messages in flight (azure-facts §9). Kept at the
    // default cap, no message waits inside an instance for its subscription's slot (its visibility
    // lease running) while another instance could take it; README "Across instances" has the sums.
    const queues = host.extensions?.queues ?? {};
    const perInstance = Number(queues.batchSize) + Number(queues.newBatchThreshold);
    const defaults = loadSettings({
      TARGET_REGISTRIES:
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/registry1",
    });
    expect(perInstance).toBe(defaults.maxPerSubscription);
  });
});
