import { describe, expect, it } from "vitest";
import { diagnoseCanary, tagsContaining, type DiagnosisInput } from "../../src/canary/diagnosis.js";

const FILE = {
  fileName: "ServiceTags_Public_20251020.json",
  values: [
    { name: "AzureCloud", properties: { addressPrefixes: ["4.0.0.0/8", "20.0.0.0/8", "2603:1000::/24"] } },
    { name: "AzureCloud.japaneast", properties: { addressPrefixes: ["4.216.0.0/16", "20.89.0.0/16"] } },
    {
      name: "AzureContainerRegistry",
      properties: { addressPrefixes: ["4.216.205.64/26", "20.89.0.192/26", "20.100.1.0/24"] },
    },
    {
      name: "AzureContainerRegistry.JapanEast",
      properties: { addressPrefixes: ["4.216.205.64/26", "2603:1040::/60"] },
    },
    { name: "AzureContainerRegistry.KoreaCentral", properties: { addressPrefixes: ["20.89.0.192/26"] } },
    { name: "Storage.JapanEast", properties: { addressPrefixes: ["20.150.0.0/17"] } },
  ],
};

const REFUSAL = (ip: string) =>
  `2026/12/01 15:00:01 Logging in to registry: canaryjpe.azurecr.io\n2026/12/01 15:00:03 failed to login, ran out of retries: failed to set docker credential: Error response from daemon: Get "https://canaryjpe.azurecr.io/v2/": denied: client with IP '${ip}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access\nRun ID: ca7 failed after 3s. Error: failed during run, err: exit status 1\n`;

function input(overrides: Partial<DiagnosisInput> = {}): DiagnosisInput {
  return {
    registry: "canaryjpe",
    location: "japaneast",
    at: "2026-12-01T15:00:00.000Z",
    run: { runId: "ca7", status: "Failed", runErrorMessage: "failed during run, err: exit status 1" },
    registryState: { defaultAction: "Deny", ipRules: ["203.0.113.10"], networkRuleBypassAllowedForTasks: false },
    allowedRegions: ["japaneast"],
    serviceTags: FILE,
    runTimeoutSeconds: 300,
    ...overrides,
  };
}

describe("the canary diagnosis", () => {
  it("reports an agent that got in as admitted with nothing to do", () => {
    expect(diagnoseCanary(input({ run: { runId: "ca7", status: "Succeeded" } }))).toEqual({
      verdict: "admitted",
      ok: true,
      refusedIp: undefined,
      containingTags: [],
      summary: "The ACR Tasks agent got into canaryjpe (run ca7 Succeeded).",
      advice: "Nothing to do.",
      warnings: [],
    });
  });

  it("warns that a passing run proves nothing when the bypass for tasks is on", () => {
    const result = diagnoseCanary(
      input({
        run: { runId: "ca7", status: "Succeeded" },
        registryState: { defaultAction: "Deny", ipRules: [], networkRuleBypassAllowedForTasks: true },
      }),
    );
    expect(result.ok).toBe(true);
    expect(result.advice).toBe("Nothing to do for the agent; read the warnings.");
    expect(result.warnings).toEqual([
      "networkRuleBypassAllowedForTasks is true on canaryjpe: tasks bypass its firewall, so a run that gets in proves nothing about the IP rules.",
    ]);
  });

  it("warns that a passing run proves nothing when the firewall's default action is Allow", () => {
    const result = diagnoseCanary(
      input({
        run: { runId: "ca7", status: "Succeeded" },
        registryState: { defaultAction: "Allow", ipRules: [], networkRuleBypassAllowedForTasks: undefined },
      }),
    );
    expect(result.warnings).toEqual([
      "defaultAction is Allow on canaryjpe: the firewall admits every address, so a run that gets in proves nothing about the IP rules.",
    ]);
  });

  it("names every tag holding a refused IP, regional ACR tags first, and says to sync when no rule covers it", () => {
    expect(diagnoseCanary(input({ log: { text: REFUSAL("4.216.205.70") } }))).toEqual({
      verdict: "refused",
      ok: false,
      refusedIp: "4.216.205.70",
      containingTags: [
        "AzureContainerRegistry.JapanEast",
        "AzureContainerRegistry",
        "AzureCloud",
        "AzureCloud.japaneast",
      ],
      summary:
        "The firewall of canaryjpe refused the ACR Tasks agent: run ca7 at 2026-12-01T15:00:00.000Z came from 4.216.205.70.",
      advice:
        "4.216.205.70 is in AzureContainerRegistry.JapanEast, which canaryjpe allows, but none of its IP rules covers it: run a sync (acr-allowlist-sync apply --registry canaryjpe) and read its plan.",
      warnings: [],
    });
  });

  it("says to wait for the rules to take effect when a rule already covers the refused IP", () => {
    const result = diagnoseCanary(
      input({
        log: { text: REFUSAL("4.216.205.70") },
        registryState: {
          defaultAction: "Deny",
          ipRules: ["203.0.113.10", "4.216.205.64/26"],
          networkRuleBypassAllowedForTasks: false,
        },
      }),
    );
    expect(result.advice).toBe(
      "4.216.205.70 is in AzureContainerRegistry.JapanEast, which canaryjpe allows, and its rule 4.216.205.64/26 covers it: rules take a few minutes to take effect, so wait for the next canary; if it is refused too, open a support case with run ca7 at 2026-12-01T15:00:00.000Z.",
    );
  });

  it("advises adding the region whose tag holds the refused IP when the registry does not allow it", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("20.89.0.200") } }));
    expect(result.verdict).toBe("refused");
    expect(result.containingTags).toEqual([
      "AzureContainerRegistry.KoreaCentral",
      "AzureContainerRegistry",
      "AzureCloud",
      "AzureCloud.japaneast",
    ]);
    expect(result.advice).toBe(
      'Add region koreacentral to canaryjpe (SYNC_REGIONS, or "regions" in TARGET_REGISTRIES): 20.89.0.200 is in AzureContainerRegistry.KoreaCentral, not in the tags of the regions it allows (japaneast).',
    );
  });

  it("gives support-case evidence when the refused IP is only in the global ACR tag", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("20.100.1.9") } }));
    expect(result.containingTags).toEqual(["AzureContainerRegistry", "AzureCloud"]);
    expect(result.advice).toBe(
      "20.100.1.9 is in the global AzureContainerRegistry tag but in no regional one, so there is no region to add. Evidence for a support case: run ca7 on canaryjpe (japaneast) at 2026-12-01T15:00:00.000Z was refused from 20.100.1.9, which ServiceTags_Public_20251020.json lists only under AzureContainerRegistry.",
    );
  });

  it("gives support-case evidence, and the other tags holding it, when the refused IP is in no ACR range", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("20.150.3.4") } }));
    expect(result.containingTags).toEqual(["AzureCloud", "Storage.JapanEast"]);
    expect(result.advice).toBe(
      "20.150.3.4 is in no AzureContainerRegistry range of ServiceTags_Public_20251020.json (it is in AzureCloud, Storage.JapanEast). Evidence for a support case: run ca7 on canaryjpe (japaneast) at 2026-12-01T15:00:00.000Z was refused from 20.150.3.4, an address Microsoft does not publish for ACR.",
    );
  });

  it("reports a refusal from an address in no tag at all", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("192.0.2.1") } }));
    expect(result.containingTags).toEqual([]);
    expect(result.advice).toBe(
      "192.0.2.1 is in no AzureContainerRegistry range of ServiceTags_Public_20251020.json. Evidence for a support case: run ca7 on canaryjpe (japaneast) at 2026-12-01T15:00:00.000Z was refused from 192.0.2.1, an address Microsoft does not publish for ACR.",
    );
  });

  it("still reports a refusal when the service-tags file could not be read", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("4.216.205.70") }, serviceTags: undefined }));
    expect(result.verdict).toBe("refused");
    expect(result.advice).toBe(
      "The service-tags file could not be read, so which tags hold 4.216.205.70 is unknown; the next canary checks again. Evidence for a support case meanwhile: run ca7 on canaryjpe (japaneast) at 2026-12-01T15:00:00.000Z.",
    );
  });

  it("reports a run that failed without a refusal in its log as a failure that is not the allowlist's", () => {
    expect(
      diagnoseCanary(
        input({
          run: { runId: "ca7", status: "Error", runErrorMessage: "internal error: the run could not be started" },
          log: { text: "2026/12/01 15:00:01 Logging in to registry: canaryjpe.azurecr.io\n" },
        }),
      ),
    ).toEqual({
      verdict: "failed",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary:
        "Run ca7 on canaryjpe ended Error for a reason other than the firewall: internal error: the run could not be started.",
      advice:
        "Not an allowlist failure (the log shows no refusal): read it with 'az acr task logs --registry canaryjpe --run-id ca7' and check ACR Tasks on https://status.azure.com; the next canary tries again.",
      warnings: [],
    });
  });

  it("reports a run that hit its own timeout as a failure that is not the allowlist's", () => {
    const result = diagnoseCanary(input({ run: { runId: "ca7", status: "Timeout" }, log: { text: "" } }));
    expect(result.verdict).toBe("failed");
    expect(result.summary).toBe(
      "Run ca7 on canaryjpe ended Timeout for a reason other than the firewall: the run exceeded its 300 s timeout.",
    );
  });

  it("reports a run that could not be scheduled (quota, permissions) as such, with the error's remedy", () => {
    const result = diagnoseCanary(
      input({
        run: undefined,
        scheduleError: {
          code: "RegistryRequestFailed",
          message: "ARM answered 409 TasksOperationsNotAllowed.",
          remedy: "Try later.",
        },
      }),
    );
    expect(result).toEqual({
      verdict: "failed",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary:
        "The canary run could not be scheduled on canaryjpe (RegistryRequestFailed): ARM answered 409 TasksOperationsNotAllowed.",
      advice:
        "Not an allowlist failure: ACR Tasks refused or failed the request (permissions, quota, platform). Try later.",
      warnings: [],
    });
  });

  it("is inconclusive when the log of a failed run cannot be read", () => {
    const result = diagnoseCanary(input({ log: { unreadable: "the log blob answered 403 AuthenticationFailed" } }));
    expect(result).toEqual({
      verdict: "inconclusive",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary:
        "Run ca7 on canaryjpe ended Failed, and its log could not be read (the log blob answered 403 AuthenticationFailed): whether the firewall refused the agent is unknown.",
      advice: "Read the log with 'az acr task logs --registry canaryjpe --run-id ca7'; the next canary tries again.",
      warnings: [],
    });
  });

  it("is inconclusive when the deadline passes without a refusal in the log, and refused when the log has one", () => {
    const running = { runId: "ca7", status: "Running" as const };
    expect(diagnoseCanary(input({ run: running, deadlineMs: 240000, log: { text: "" } })).summary).toBe(
      "Run ca7 on canaryjpe did not finish within 240000 ms (last status Running), and its log shows no refusal so far.",
    );
    expect(
      diagnoseCanary(input({ run: running, deadlineMs: 240000, log: { text: REFUSAL("4.216.205.70") } })).verdict,
    ).toBe("refused");
  });

  it("says that an IPv6 refusal cannot be allowed by IP rules", () => {
    const result = diagnoseCanary(input({ log: { text: REFUSAL("2603:1040::5") } }));
    expect(result.refusedIp).toBe("2603:1040::5");
    expect(result.advice).toBe(
      "2603:1040::5 is not an IPv4 address, and registry IP rules are IPv4 only. Evidence for a support case: run ca7 on canaryjpe (japaneast) at 2026-12-01T15:00:00.000Z.",
    );
  });

  it("finds the tags of an address without IPv6 prefixes getting in the way", () => {
    const address = 4 * 2 ** 24 + 216 * 2 ** 16 + 205 * 256 + 64;
    expect(tagsContaining(FILE.values, address)).toEqual([
      "AzureContainerRegistry.JapanEast",
      "AzureContainerRegistry",
      "AzureCloud",
      "AzureCloud.japaneast",
    ]);
  });
});
