import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCanary } from "../../src/canary/canary.js";
import type { CanaryResult } from "../../src/canary/result.js";
import type { Runtime } from "../../src/app/runtime.js";
import { runInvocation } from "../../src/sync/invocation.js";
import type { RegistrySpec } from "../support/arm-emulator.js";
import { startHarness, type Harness } from "../support/harness.js";
import { readServiceTagsFixture } from "../support/servicetags-server.js";

/**
 * The canary end to end through the real modules: the Tasks calls go through the registry
 * client's own SDK pipeline (token from the managed identity endpoint, retries, TLS) to the ARM
 * emulator, whose agents log in from addresses of the region's published tag and are refused
 * unless the registry's rules admit them; the diagnosis reads the real (fixture) service-tags file.
 */

const AT = "2026-12-01T15:00:00.000Z";
const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const FILE = "ServiceTags_Public_20251020.json";
let harness: Harness;

function tagPrefixes(name: string): string[] {
  const file = JSON.parse(readServiceTagsFixture("ServiceTags_Public_20251020.acr.json").toString("utf8")) as {
    values: { name: string; properties: { addressPrefixes: string[] } }[];
  };
  const tag = file.values.find((value) => value.name === name);
  if (tag === undefined) throw new Error(`no tag ${name} in the fixture`);
  return tag.properties.addressPrefixes.filter((prefix) => !prefix.includes(":"));
}

beforeAll(async () => {
  harness = await startHarness({ arm: { tasks: { queuedMs: 10, runningMs: 20 } } });
  // Agents of a region log in from its published tag...
  harness.arm.tasks.setAgentPool("japaneast", tagPrefixes("AzureContainerRegistry.JapanEast"));
  // ...except where a test needs them elsewhere: japanwest's agents come from Korea Central's tag,
  // koreasouth's from an address no tag holds.
  harness.arm.tasks.setAgentPool("japanwest", tagPrefixes("AzureContainerRegistry.KoreaCentral"));
  harness.arm.tasks.setAgentPool("koreasouth", ["192.0.2.0/24"]);
});
afterAll(async () => {
  await harness.close();
});

function setup(spec: Partial<RegistrySpec> = {}): { id: string; name: string; runtime: Runtime } {
  const name = spec.name ?? `canary${randomBytes(4).toString("hex")}`;
  const id = harness.addRegistry({ ipRules: PEOPLE, networkRuleBypassAllowedForTasks: false, ...spec, name });
  const runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `ledger-${randomBytes(6).toString("hex")}`,
  });
  return { id, name, runtime };
}

async function sync(runtime: Runtime): Promise<void> {
  const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
    mode: "apply",
    trigger: "test",
    actor: "test",
  });
  if (outcome === undefined) throw new Error("no outcome");
  if (!outcome.ok) throw outcome.error;
  expect(outcome.result.outcome).toBe("applied");
}

async function canary(runtime: Runtime, deadlineMs = 10_000): Promise<CanaryResult> {
  const target = runtime.settings.targets[0];
  const tasks = runtime.ports.canary?.tasks;
  if (target === undefined || tasks === undefined) throw new Error("no target or no Tasks gateway");
  return runCanary(
    target,
    { registry: runtime.ports.registry, tasks, now: () => new Date(AT) },
    { deadlineMs, pollIntervalMs: 5, trigger: "test", document: await runtime.ports.serviceTags.fetch() },
  );
}

/** The parts of a result that do not depend on timing. */
function verdictOf(result: CanaryResult) {
  const { durationMs: _durationMs, ...rest } = result;
  return rest;
}

describe("the ACR Tasks canary against the emulated registry", () => {
  it("is refused before a sync, names the tag holding the agent's IP, and gets in after the sync", async () => {
    const { id, name, runtime } = setup();

    const before = await canary(runtime);
    expect(verdictOf(before)).toEqual({
      schemaVersion: 1,
      registryId: id,
      registry: name,
      region: "japaneast",
      runId: "ca1",
      runStatus: "Failed",
      at: AT,
      trigger: "test",
      serviceTagsFile: FILE,
      verdict: "refused",
      ok: false,
      refusedIp: "4.216.205.65",
      containingTags: ["AzureContainerRegistry.JapanEast", "AzureContainerRegistry"],
      summary: `The firewall of ${name} refused the ACR Tasks agent: run ca1 at ${AT} came from 4.216.205.65.`,
      advice: `4.216.205.65 is in AzureContainerRegistry.JapanEast, which ${name} allows, but none of its IP rules covers it: run a sync (acr-allowlist-sync apply --registry ${name}) and read its plan.`,
      warnings: [],
    });
    expect(harness.arm.tasks.runs(id).map((run) => [run.runId, run.agentIp, run.admitted])).toEqual([
      ["ca1", "4.216.205.65", false],
    ]);

    await sync(runtime);
    const after = await canary(runtime);
    expect(verdictOf(after)).toEqual({
      ...verdictOf(before),
      runId: "ca2",
      runStatus: "Succeeded",
      verdict: "admitted",
      ok: true,
      refusedIp: undefined,
      containingTags: [],
      summary: `The ACR Tasks agent got into ${name} (run ca2 Succeeded).`,
      advice: "Nothing to do.",
    });
    expect(harness.arm.tasks.runs(id)[1]).toMatchObject({ agentIp: "13.78.106.202", admitted: true });
  });

  it("schedules through the long-running operation with the SDK's token and never sends it to the log blob", async () => {
    const { id, runtime } = setup();
    const seen = harness.arm.requests.length;
    const logsSeen = harness.arm.tasks.logRequests.length;
    await canary(runtime);
    const ops = harness.arm.requests.slice(seen).filter((request) => request.registryId === id);
    expect(ops[0]).toMatchObject({ method: "GET", op: "get" });
    const tasksOps = ops.map((request) => request.op).filter((op) => op !== "get" && op !== "usages");
    expect(tasksOps[0]).toBe("scheduleRun");
    expect(tasksOps[1]).toBe("poll");
    expect(tasksOps).toContain("getRun");
    expect(tasksOps.at(-1)).toBe("listLogSasUrl");
    expect(ops.every((request) => request.query.includes("api-version="))).toBe(true);
    const body = JSON.parse(ops.find((request) => request.op === "scheduleRun")?.body ?? "{}") as Record<
      string,
      unknown
    >;
    expect(body).toMatchObject({ type: "EncodedTaskRunRequest", platform: { os: "Linux" }, timeout: 300 });
    expect(harness.arm.tasks.runs(id)[0]?.task).toContain("cmd: mcr.microsoft.com/hello-world");
    expect(harness.arm.tasks.logRequests.slice(logsSeen)).toEqual([
      { path: expect.stringMatching(/\/rawtext\.log$/) as unknown, authorization: false, status: 200 },
    ]);
  });

  it("advises adding the region whose tag holds the agent's IP when it is another region's", async () => {
    const { name, runtime } = setup({ location: "japanwest" });
    await sync(runtime);
    const result = await canary(runtime);
    expect(result).toMatchObject({
      verdict: "refused",
      refusedIp: "4.218.237.65",
      containingTags: ["AzureContainerRegistry.KoreaCentral", "AzureContainerRegistry"],
      advice: `Add region koreacentral to ${name} (SYNC_REGIONS, or "regions" in TARGET_REGISTRIES): 4.218.237.65 is in AzureContainerRegistry.KoreaCentral, not in the tags of the regions it allows (japanwest).`,
    });
  });

  it("gives the evidence for a support case when the agent's IP is in no published tag", async () => {
    const { name, runtime } = setup({ location: "koreasouth" });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      verdict: "refused",
      ok: false,
      refusedIp: "192.0.2.1",
      containingTags: [],
      advice: `192.0.2.1 is in no AzureContainerRegistry range of ${FILE}. Evidence for a support case: run ca1 on ${name} (koreasouth) at ${AT} was refused from 192.0.2.1, an address Microsoft does not publish for ACR.`,
    });
  });

  it("reports a run that ends in its own timeout as a failure that is not the allowlist's", async () => {
    const { id, name, runtime } = setup();
    await sync(runtime);
    harness.arm.injectFault({ op: "scheduleRun", registryId: id, fault: { kind: "run-ends", status: "Timeout" } });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      runStatus: "Timeout",
      verdict: "failed",
      ok: false,
      refusedIp: undefined,
      summary: `Run ca1 on ${name} ended Timeout for a reason other than the firewall: the run exceeded its 300 s timeout.`,
      advice: `Not an allowlist failure (the log shows no refusal): read it with 'az acr task logs --registry ${name} --run-id ca1' and check ACR Tasks on https://status.azure.com; the next canary tries again.`,
    });
  });

  it("is inconclusive when the run does not finish before the deadline", async () => {
    const { id, name, runtime } = setup();
    await sync(runtime);
    harness.arm.injectFault({ op: "scheduleRun", registryId: id, fault: { kind: "run-stuck" } });
    const result = await canary(runtime, 300);
    expect(result).toMatchObject({
      runStatus: "Running",
      verdict: "inconclusive",
      ok: false,
      summary: `Run ca1 on ${name} did not finish within 300 ms (last status Running), and its log shows no refusal so far.`,
    });
  });

  it("is inconclusive, not refused, when the log of a failed run cannot be read", async () => {
    const { id, name, runtime } = setup();
    harness.arm.injectFault({ op: "listLogSasUrl", registryId: id, fault: { kind: "log-unreadable", status: 403 } });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      runStatus: "Failed",
      verdict: "inconclusive",
      ok: false,
      refusedIp: undefined,
      summary: `Run ca1 on ${name} ended Failed, and its log could not be read (the log blob answered 403 AuthenticationFailed): whether the firewall refused the agent is unknown.`,
      advice: `Read the log with 'az acr task logs --registry ${name} --run-id ca1'; the next canary tries again.`,
    });
  });

  it("gets in with the bypass for tasks on, and warns that this proves nothing about the rules", async () => {
    const { name, runtime } = setup({ networkRuleBypassAllowedForTasks: true });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      verdict: "admitted",
      ok: true,
      advice: "Nothing to do for the agent; read the warnings.",
      warnings: [
        `networkRuleBypassAllowedForTasks is true on ${name}: tasks bypass its firewall, so a run that gets in proves nothing about the IP rules.`,
      ],
    });
  });

  it("reports a platform error of the run as such", async () => {
    const { id, name, runtime } = setup();
    await sync(runtime);
    harness.arm.injectFault({ op: "scheduleRun", registryId: id, fault: { kind: "run-ends", status: "Error" } });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      runStatus: "Error",
      verdict: "failed",
      summary: `Run ca1 on ${name} ended Error for a reason other than the firewall: internal error: the run could not be started; please retry.`,
    });
  });

  it("reports a run that ACR Tasks will not schedule (quota) as a failure that is not the allowlist's", async () => {
    const { id, name, runtime } = setup();
    harness.arm.injectFault({
      op: "scheduleRun",
      registryId: id,
      fault: {
        kind: "status",
        status: 409,
        code: "TasksOperationsNotAllowed",
        message: `ACR Tasks requests for the registry ${name} are temporarily not allowed.`,
      },
    });
    const result = await canary(runtime);
    expect(result).toMatchObject({
      runId: undefined,
      runStatus: undefined,
      verdict: "failed",
      ok: false,
      summary: `The canary run could not be scheduled on ${name} (RegistryRequestFailed): Scheduling the canary's ACR Tasks run on registry ${name} failed: ARM answered 409 TasksOperationsNotAllowed: ACR Tasks requests for the registry ${name} are temporarily not allowed.`,
    });
  });

  it("names the canary role when the identity may not schedule runs on the registry", async () => {
    const { name, runtime } = setup({ deniedActions: ["Microsoft.ContainerRegistry/registries/scheduleRun/action"] });
    const result = await canary(runtime);
    expect(result.verdict).toBe("failed");
    expect(result.summary).toMatch(
      new RegExp(
        `^The canary run could not be scheduled on ${name} \\(RegistryAccessDenied\\): Scheduling the canary's ACR Tasks run on registry ${name} was refused: ARM answered 403 AuthorizationFailed`,
      ),
    );
    expect(result.advice).toContain("Microsoft.ContainerRegistry/registries/scheduleRun/action");
    expect(result.advice).toContain("canaryRegistryIds");
  });

  it("follows a scheduleRun that answers the Run at once", async () => {
    const { runtime } = setup({ networkRuleBypassAllowedForTasks: true });
    harness.arm.configure({ tasks: { scheduleRunResponse: "sync" } });
    try {
      const result = await canary(runtime);
      expect(result).toMatchObject({ runId: "ca1", runStatus: "Succeeded", verdict: "admitted" });
    } finally {
      harness.arm.configure({ tasks: { scheduleRunResponse: "async" } });
    }
  });
});
