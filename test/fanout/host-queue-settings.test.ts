import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
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
});
