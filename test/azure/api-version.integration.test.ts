import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings.js";
import { ConfigError, RegistryRequestError } from "../../src/errors.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * A cloud that does not offer the SDK's api-version yet (sovereign clouds get new versions late):
 * the emulator refuses it like ARM does, and the run must retry once with 2023-07-01, warn in
 * the plan, and never loop.
 */

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness.close();
});
beforeEach(() => {
  harness.arm.configure({
    registryApiVersions: ["2025-11-01"],
    unsupportedApiVersionCode: "InvalidApiVersionParameter",
  });
});

function setup(extra: Record<string, string> = {}) {
  const id = harness.addRegistry({ name: `reg${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
  const runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `apiver-${randomBytes(6).toString("hex")}`,
    ...extra,
  });
  return { id, runtime };
}

const versionsOf = (id: string) =>
  harness.arm.requests
    .filter((r) => r.registryId?.toLowerCase() === id.toLowerCase())
    .map((r) => `${r.op} ${new URLSearchParams(r.query).get("api-version") ?? "?"} ${String(r.status)}`);

describe("ARM api-version", () => {
  it.each(["InvalidApiVersionParameter", "NoRegisteredProviderFound"] as const)(
    "retries once with 2023-07-01 when ARM answers %s, then writes with it and warns in the plan",
    async (code) => {
      harness.arm.configure({ registryApiVersions: ["2023-07-01"], unsupportedApiVersionCode: code });
      const { id, runtime } = setup();
      const writesBefore = harness.arm.writes;
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "apply",
        trigger: "test",
        actor: "test",
      });
      if (outcome?.ok !== true) throw outcome?.ok === false ? outcome.error : new Error("no outcome");
      expect(outcome.result.outcome).toBe("applied");
      expect(harness.arm.writes).toBe(writesBefore + 1);
      const versions = versionsOf(id);
      expect(versions[0]).toBe("get 2025-11-01 400");
      expect(versions.slice(1).every((v) => v.includes(" 2023-07-01 "))).toBe(true);
      expect(versions.filter((v) => v.endsWith(" 400"))).toHaveLength(1);
      const warning = outcome.result.plan.warnings.find((w) => w.code === "api-version-fallback");
      expect(warning?.message).toContain(code);
      expect(warning?.message).toContain("ARM_API_VERSION=2023-07-01");
    },
  );

  it("sends ARM_API_VERSION from the first request, with no refused request and no warning", async () => {
    harness.arm.configure({ registryApiVersions: ["2023-07-01"] });
    const { id, runtime } = setup({ ARM_API_VERSION: "2023-07-01" });
    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "plan",
      trigger: "test",
      actor: "test",
    });
    expect(outcome?.ok).toBe(true);
    expect(versionsOf(id).every((v) => v.includes(" 2023-07-01 200"))).toBe(true);
    const warnings = outcome?.ok === true ? outcome.result.plan.warnings.map((w) => w.code) : [];
    expect(warnings).not.toContain("api-version-fallback");
  });

  it("gives up after the one retry when the older version is refused too, naming ARM's answer", async () => {
    harness.arm.configure({ registryApiVersions: ["2030-01-01"] });
    const { id, runtime } = setup();
    const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "plan",
      trigger: "test",
      actor: "test",
    });
    const error = outcome?.ok === false ? outcome.error : undefined;
    expect(error).toBeInstanceOf(RegistryRequestError);
    expect((error as RegistryRequestError).message).toContain("InvalidApiVersionParameter");
    expect(versionsOf(id)).toEqual(["get 2025-11-01 400", "get 2023-07-01 400"]);
  });

  it("refuses an ARM_API_VERSION that is not one, naming the setting", () => {
    let error: unknown;
    try {
      loadSettings({
        TARGET_REGISTRIES:
          "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
        ARM_API_VERSION: "latest",
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).details.setting).toBe("ARM_API_VERSION");
  });
});
