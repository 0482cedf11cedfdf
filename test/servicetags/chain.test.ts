import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Runtime } from "../../src/app/runtime.js";
import type { ServiceTagsDocument } from "../../src/servicetags/schema.js";
import { ServiceTagsUnavailableError } from "../../src/servicetags/source-errors.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { FAST_TUNING, TEST_SUBSCRIPTION, startHarness, type Harness } from "../support/harness.js";
import { LATEST_ALIAS_PATH, readServiceTagsFixture } from "../support/servicetags-server.js";

/**
 * The whole source chain through the production runtime: the loopback Download Center (page,
 * file, alias), the Discovery API in the ARM emulator (paged, string changeNumbers, lagging), and
 * the last-good copy beside a file ledger. Every order of failures, the cross-check, the copy
 * inside and past its age.
 */

const PAGE = "/en-us/download/details.aspx";
const JAPAN_EAST = "AzureContainerRegistry.JapanEast";
const LAGGING = readServiceTagsFixture("ServiceTags_Public_20240401.acr.json");
const DAY = 86_400_000;

let harness: Harness;
let scratch: string;
let registryId: string;

beforeAll(async () => {
  harness = await startHarness();
  scratch = mkdtempSync(join(tmpdir(), "chain-"));
  registryId = harness.addRegistry({ name: `chain${randomBytes(3).toString("hex")}`, ipRules: ["203.0.113.10"] });
});
afterAll(async () => {
  await harness.close();
  rmSync(scratch, { recursive: true, force: true });
});
beforeEach(() => {
  harness.tags.clearFaults();
  harness.arm.serviceTagsApi.clearFaults();
  harness.arm.serviceTagsApi.deny([]);
  harness.arm.serviceTagsApi.setPageSize(25);
  harness.arm.serviceTagsApi.publish(LAGGING);
});

/** A runtime over its own ledger folder (so its own last-good copy), at a clock of our choosing. */
function runtime(
  extra: Record<string, string> = {},
  clock: { now: Date } = { now: new Date() },
  folder = mkdtempSync(join(scratch, "state-")),
): { runtime: Runtime; folder: string; clock: { now: Date } } {
  const built = harness.runtime(
    { TARGET_REGISTRIES: registryId, ...extra },
    {
      ledger: { kind: "file", path: join(folder, "ledger.json") },
      tuning: { ...FAST_TUNING, serviceTags: { ...FAST_TUNING.serviceTags, now: () => clock.now } },
    },
  );
  return { runtime: built, folder, clock };
}

function failFileChain(): void {
  harness.tags.setFault(PAGE, { kind: "status", status: 503 }, { times: 100 });
  harness.tags.setFault(LATEST_ALIAS_PATH, { kind: "status", status: 404 }, { times: 100 });
}

function failApi(): void {
  harness.arm.serviceTagsApi.injectFault({ kind: "status", status: 503 }, 100);
}

async function fetchError(r: Runtime): Promise<ServiceTagsUnavailableError> {
  const error = await r.ports.serviceTags.fetch().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ServiceTagsUnavailableError);
  return error as ServiceTagsUnavailableError;
}

function tag(document: ServiceTagsDocument, name: string) {
  return document.file.values.find((value) => value.name === name);
}

describe("the source chain in order", () => {
  it("serves the Download Center file, cross-checked against a lagging Discovery API: the file's higher numbers win", async () => {
    const { runtime: r } = runtime();
    const document = await r.ports.serviceTags.fetch();
    expect(document.origin).toMatchObject({ kind: "details-page", fileName: "ServiceTags_Public_20251020.json" });
    expect(document.origin).toMatchObject({ publishedAt: "2025-10-20T00:00:00.000Z", ageBasis: "file-date" });
    expect(document.origin.dataAgeDays).toBeGreaterThan(0);
    expect(document.crossCheck?.status).toBe("checked");
    expect(document.lags).toContainEqual({ name: JAPAN_EAST, fileChangeNumber: 8, apiChangeNumber: 7, used: "file" });
    expect(tag(document, JAPAN_EAST)?.properties.changeNumber).toBe(8);
    expect(document.newestChangeNumberSeen).toBe(374);
    // 60 tags at 25 a page: the API was read through nextLink to the end.
    const api = harness.arm.serviceTagsApi.requests.slice(-3);
    expect(api.map((request) => request.status)).toEqual([200, 200, 200]);
    expect(api[2]?.query).toContain("$skipToken=50");
    expect(api[0]).toMatchObject({ subscriptionId: TEST_SUBSCRIPTION, location: "japaneast" });
  });

  it("takes a tag from the Discovery API when its changeNumber is higher there, and the plan says source-lag with both numbers", async () => {
    const newer = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString()) as {
      values: { name: string; properties: { changeNumber: number; addressPrefixes: string[] } }[];
    };
    for (const value of newer.values) {
      if (value.name !== JAPAN_EAST) continue;
      value.properties.changeNumber = 9;
      value.properties.addressPrefixes = [...value.properties.addressPrefixes, "198.18.0.0/24"];
    }
    harness.arm.serviceTagsApi.publish(JSON.stringify(newer));
    const { runtime: r } = runtime();
    const [outcome] = await runInvocation(r.settings, r.ports, { mode: "plan", trigger: "cli", actor: "test" });
    if (outcome?.ok !== true) throw new Error("the dry run failed");
    const plan = outcome.result.plan;
    expect(plan.adds.map((add) => add.rule)).toContain("198.18.0.0/24");
    const lag = plan.warnings.find((w) => w.code === "source-lag");
    expect(lag?.details).toEqual({ tag: JAPAN_EAST, fileChangeNumber: 8, apiChangeNumber: 9, used: "discovery-api" });
    expect(lag?.message).toContain("8");
    expect(lag?.message).toContain("9");
    // Only the selected tag is warned about, not every tag that differs.
    expect(plan.warnings.filter((w) => w.code === "source-lag")).toHaveLength(1);
  });

  it("falls back to the _Latest alias when the page fails", async () => {
    harness.tags.setFault(PAGE, { kind: "status", status: 503 }, { times: 100 });
    const { runtime: r } = runtime();
    const document = await r.ports.serviceTags.fetch();
    expect(document.origin.kind).toBe("latest-alias");
    expect(document.origin.ageBasis).toBe("last-modified");
  });

  it("falls back to the Discovery API when page and alias fail, dating it from when its changeNumber was first seen", async () => {
    failFileChain();
    const clock = { now: new Date() };
    const first = runtime({}, clock);
    const document = await first.runtime.ports.serviceTags.fetch();
    expect(document.origin).toMatchObject({ kind: "discovery-api", changeNumber: 300, ageBasis: "first-seen" });
    expect(document.origin.dataAgeDays).toBe(0);
    expect(tag(document, JAPAN_EAST)?.properties.changeNumber).toBe(7);
    // The same changeNumber three days later, in a new process beside the same ledger: three days old.
    clock.now = new Date(clock.now.getTime() + 3 * DAY);
    const later = runtime({}, clock, first.folder);
    expect((await later.runtime.ports.serviceTags.fetch()).origin.dataAgeDays).toBe(3);
  });

  it("falls back to the last-good copy when every live source fails, with a stale-copy warning, while it is young enough", async () => {
    const clock = { now: new Date() };
    const good = runtime({}, clock);
    await good.runtime.ports.serviceTags.fetch();
    failFileChain();
    failApi();
    clock.now = new Date(clock.now.getTime() + 13 * DAY);
    const later = runtime({}, clock, good.folder);
    const [outcome] = await runInvocation(later.runtime.settings, later.runtime.ports, {
      mode: "plan",
      trigger: "cli",
      actor: "test",
    });
    if (outcome?.ok !== true) throw new Error("the dry run failed");
    const source = outcome.result.plan.source;
    expect(source.kind === "service-tags" ? source.origin : undefined).toMatchObject({
      kind: "last-good",
      copyOf: "details-page",
      fileName: "ServiceTags_Public_20251020.json",
    });
    const stale = outcome.result.plan.warnings.find((w) => w.code === "stale-copy");
    expect(stale?.message).toContain("13 day(s) ago, limit 14");
  });

  it("fails as before when the last-good copy is older than SERVICE_TAGS_MAX_AGE_DAYS, naming every source", async () => {
    const clock = { now: new Date() };
    const good = runtime({ SERVICE_TAGS_MAX_AGE_DAYS: "7" }, clock);
    await good.runtime.ports.serviceTags.fetch();
    failFileChain();
    failApi();
    clock.now = new Date(clock.now.getTime() + 8 * DAY);
    const error = await fetchError(runtime({ SERVICE_TAGS_MAX_AGE_DAYS: "7" }, clock, good.folder).runtime);
    expect(error.attempts.map((a) => [a.source, a.reason])).toEqual([
      ["details-page", "http-status"],
      ["latest-alias", "http-status"],
      ["discovery-api", "http-status"],
      ["last-good", "copy-too-old"],
    ]);
    expect(error.message).toContain("SERVICE_TAGS_MAX_AGE_DAYS (7)");
  });

  it("says so when no copy was kept and every live source fails", async () => {
    failFileChain();
    harness.arm.serviceTagsApi.deny([TEST_SUBSCRIPTION]);
    const error = await fetchError(runtime().runtime);
    expect(error.attempts.map((a) => a.reason)).toEqual(["http-status", "http-status", "http-status", "no-copy"]);
    const api = error.attempts.find((a) => a.source === "discovery-api");
    expect(api?.status).toBe(403);
    expect(api?.message).toContain("AuthorizationFailed");
  });

  it("refuses a last-good copy that does not validate and reports the store", async () => {
    const folder = mkdtempSync(join(scratch, "state-"));
    writeFileSync(join(folder, "servicetags-last-good-public.json"), '{"schemaVersion":1,"origin":{},"file":{}}');
    failFileChain();
    failApi();
    const error = await fetchError(runtime({}, { now: new Date() }, folder).runtime);
    expect(error.attempts.at(-1)).toMatchObject({ source: "last-good", reason: "store-failed" });
  });

  it("still serves the file when the Discovery API fails, and records that the cross-check was unavailable", async () => {
    failApi();
    const document = await runtime().runtime.ports.serviceTags.fetch();
    expect(document.origin.kind).toBe("details-page");
    expect(document.crossCheck?.status).toBe("unavailable");
    expect(document.lags).toBeUndefined();
  });

  it("asks neither the Discovery API nor the last-good copy when an explicit source is set", async () => {
    const apiBefore = harness.arm.serviceTagsApi.requests.length;
    const explicit = harness.tags.fileUrl("ServiceTags_Public_20990101.json");
    const { runtime: r, folder } = runtime();
    await r.ports.serviceTags.fetch();
    const error = await fetchError(runtime({ SERVICE_TAGS_URL: explicit }, { now: new Date() }, folder).runtime);
    expect(error.attempts.map((a) => a.source)).toEqual(["explicit"]);
    expect(harness.arm.serviceTagsApi.requests.length - apiBefore).toBe(3);
  });

  it("finds the Discovery API's location from the first target's registry when none is configured", async () => {
    const reads = (): number =>
      harness.arm.requests.filter((q) => q.op === "get" && q.registryId === registryId).length;
    const before = reads();
    const { runtime: r } = runtime({ SERVICE_TAGS_API_LOCATION: "" });
    await r.ports.serviceTags.fetch();
    await r.ports.serviceTags.fetch();
    expect(harness.arm.serviceTagsApi.requests.at(-1)?.location).toBe("japaneast");
    // Read once per process, not once per fetch.
    expect(reads() - before).toBe(1);
  });
});
