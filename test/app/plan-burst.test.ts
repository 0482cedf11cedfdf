import { HttpRequest, HttpResponse, InvocationContext } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { FAST_TUNING, startHarness, type Harness } from "../support/harness.js";

/**
 * A burst of `GET /api/plan` on one Functions worker: the source chain downloads the file once per
 * process per TTL (SERVICE_TAGS_CACHE_SECONDS), with concurrent callers sharing the one fetch in
 * flight. The witness is the loopback Download Center's own request log.
 */

const FILE = "/download/ServiceTags_Public_20251020.json";
const PAGE = "/en-us/download/details.aspx";

let harness: Harness;
let runtime: Runtime;
let name: string;

beforeAll(async () => {
  harness = await startHarness();
  name = `burst${randomBytes(3).toString("hex")}`;
  const id = harness.addRegistry({ name, ipRules: ["203.0.113.10"] });
  runtime = harness.runtime(
    {
      TARGET_REGISTRIES: id,
      AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
      LEDGER_CONTAINER: `burst-${randomBytes(6).toString("hex")}`,
      SERVICE_TAGS_CACHE_SECONDS: "600",
    },
    // 50 plans read the registry at once on a shared 2-core machine: the ARM reads get room, not the source.
    { tuning: { ...FAST_TUNING, registry: { ...FAST_TUNING.registry, requestTimeoutMs: 60_000 } } },
  );
});
afterAll(async () => {
  await harness.close();
});

async function plan(): Promise<number> {
  const context = new InvocationContext({
    functionName: "allowlistPlan",
    invocationId: randomBytes(8).toString("hex"),
  });
  const request = new HttpRequest({ method: "GET", url: `https://func.example/api/plan?registry=${name}` });
  return new HttpResponse(await createPlanHandler(runtime)(request, context)).status;
}

describe("a burst of HTTP dry runs", () => {
  it("costs exactly one download of the file for 50 concurrent plans, and none for the next one", async () => {
    const before = harness.tags.requests.length;
    const apiBefore = harness.arm.serviceTagsApi.requests.length;
    const statuses = await Promise.all(Array.from({ length: 50 }, () => plan()));
    expect(statuses).toEqual(Array.from({ length: 50 }, () => 200));
    expect(await plan()).toBe(200);
    const log = harness.tags.requests.slice(before);
    expect(log.filter((r) => r.path.startsWith(FILE))).toHaveLength(1);
    expect(log.filter((r) => r.path.startsWith(PAGE))).toHaveLength(1);
    // The cross-check is fetched once with it (the emulator publishes nothing here: one 404).
    expect(harness.arm.serviceTagsApi.requests.length - apiBefore).toBe(1);
  });
});
