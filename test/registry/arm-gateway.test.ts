import {
  CredentialUnavailableError,
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from "@azure/identity";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AllowlistSyncError,
  NetworkRulesNotSupportedError,
  RegistryAccessDeniedError,
  RegistryNotFoundError,
  RegistryOperationError,
  RegistryRequestError,
  RegistryStateInvalidError,
  RuleQuotaExceededError,
} from "../../src/errors.js";
import { createArmRegistryGateway, type ArmRegistryGatewayOptions } from "../../src/registry/arm-gateway.js";
import { parseRegistryId } from "../../src/registry/resource-id.js";
import type { RegistryGateway, RegistryRef } from "../../src/registry/types.js";
import {
  registryResourceId,
  startArmEmulator,
  type ArmEmulator,
  type FaultRule,
  type RegistrySpec,
} from "../support/arm-emulator.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "../support/identity-endpoint.js";

// The real SDK client and the real ManagedIdentityCredential, over HTTPS to the loopback emulator,
// with the token from the loopback App Service identity endpoint.

const MAX_RETRIES = 2;
let identity: IdentityEndpoint;
let emulator: ArmEmulator;
let credential: TokenCredential;
let gateway: RegistryGateway;
const savedEnv = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };

function makeGateway(overrides: Partial<ArmRegistryGatewayOptions> = {}): RegistryGateway {
  return createArmRegistryGateway({
    credential,
    endpoint: emulator.url,
    operationTimeoutMs: 10_000,
    pollIntervalMs: 5,
    requestTimeoutMs: 5_000,
    retryOptions: { maxRetries: MAX_RETRIES, retryDelayInMs: 2, maxRetryDelayInMs: 10 },
    userAgentPrefix: "acr-allowlist-sync-test",
    ...overrides,
  });
}

let counter = 0;
function addRegistry(spec: Partial<RegistrySpec> = {}): RegistryRef {
  counter += 1;
  return parseRegistryId(
    emulator.addRegistry({
      name: `gwreg${counter}`,
      location: "japaneast",
      sku: "Premium",
      defaultAction: "Deny",
      ...spec,
    }),
  );
}

const requestsFor = (ref: RegistryRef) =>
  emulator.requests.filter((r) => r.registryId?.toLowerCase() === ref.id.toLowerCase());

async function failure(promise: Promise<unknown>): Promise<AllowlistSyncError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AllowlistSyncError);
  return error as AllowlistSyncError;
}

beforeAll(async () => {
  identity = await startIdentityEndpoint();
  // MSAL reads these on the first token request and keeps them for the process.
  Object.assign(process.env, identity.env());
  emulator = await startArmEmulator({ acceptToken: identity.tokenValidator() });
  credential = new ManagedIdentityCredential();
  gateway = makeGateway();
});

afterAll(async () => {
  await emulator.close();
  await identity.close();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
});

beforeEach(() => {
  emulator.clearFaults();
  emulator.configure({ patchResponse: "async", pollsBeforeDone: 1, retryAfterSeconds: 0, replicationsPageSize: 100 });
});

describe("reading a registry", () => {
  it("reads location, SKU, rules, bypass flags, the rule limit from listUsages and the replica locations", async () => {
    const ref = addRegistry({
      ipRules: ["20.42.66.0/24", "203.0.113.9"],
      networkRuleBypassOptions: "AzureServices",
      networkRuleBypassAllowedForTasks: false,
      replicaLocations: ["japaneast", "japanwest"],
    });
    const snapshot = await gateway.read(ref, { includeReplicas: true });
    expect(snapshot).toEqual({
      ref,
      location: "japaneast",
      sku: "Premium",
      provisioningState: "Succeeded",
      publicNetworkAccess: "Enabled",
      defaultAction: "Deny",
      ipRules: ["20.42.66.0/24", "203.0.113.9"],
      ruleLimit: 100,
      ruleLimitSource: "listUsages",
      networkRuleBypassOptions: "AzureServices",
      networkRuleBypassAllowedForTasks: false,
      replicaLocations: ["japaneast", "japanwest"],
      legacyVirtualNetworkRules: 0,
      armTime: expect.stringMatching(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/),
    });
    expect(requestsFor(ref).map((r) => r.op)).toEqual(["get", "usages", "replications"]);
  });

  it("takes the limit ARM reports, and falls back to the documented 100 when listUsages has no IPRules entry", async () => {
    const china = await gateway.read(addRegistry({ ruleLimit: 200 }));
    const unknown = await gateway.read(addRegistry({ ruleLimit: null }));
    expect([china.ruleLimit, china.ruleLimitSource]).toEqual([200, "listUsages"]);
    expect([unknown.ruleLimit, unknown.ruleLimitSource]).toEqual([100, "default"]);
  });

  it("keeps rule values exactly as ARM returns them, bare or with /32", async () => {
    const ref = addRegistry();
    emulator.setIpRules(ref.id, ["198.51.100.7", "198.51.100.8/32", "10.0.0.0/8"]);
    expect((await gateway.read(ref)).ipRules).toEqual(["198.51.100.7", "198.51.100.8/32", "10.0.0.0/8"]);
  });

  it("reads a non-Premium registry as firewall off, without asking for replications", async () => {
    const ref = addRegistry({ sku: "Standard", publicNetworkAccess: undefined });
    const snapshot = await gateway.read(ref);
    expect(snapshot).toMatchObject({
      sku: "Standard",
      defaultAction: "Allow",
      ipRules: [],
      replicaLocations: [],
      publicNetworkAccess: undefined,
    });
    expect(requestsFor(ref).map((r) => r.op)).toEqual(["get", "usages"]);
  });

  it("does not ask for replications unless told to, so the least-privilege role needs no replications/read", async () => {
    const ref = addRegistry({ replicaLocations: ["japaneast", "japanwest"] });
    expect((await gateway.read(ref)).replicaLocations).toEqual([]);
    expect(requestsFor(ref).map((r) => r.op)).toEqual(["get", "usages"]);
  });

  it("re-reads with one GET when given an earlier snapshot, keeping its limit, legacy VNet rules and replicas", async () => {
    const ref = addRegistry({
      ruleLimit: 200,
      legacyVirtualNetworkRules: 2,
      replicaLocations: ["japaneast", "japanwest"],
    });
    const full = await gateway.read(ref, { includeReplicas: true });
    emulator.setIpRules(ref.id, ["198.51.100.7"]);
    const before = requestsFor(ref).length;
    const again = await gateway.read(ref, { includeReplicas: true, limitsFrom: full });
    expect(
      requestsFor(ref)
        .slice(before)
        .map((r) => r.op),
    ).toEqual(["get"]);
    expect(again).toEqual({ ...full, ipRules: ["198.51.100.7"], armTime: expect.any(String) });
    expect([again.ruleLimit, again.legacyVirtualNetworkRules, again.replicaLocations]).toEqual([
      200,
      2,
      ["japaneast", "japanwest"],
    ]);
  });

  it("follows nextLink through every page of replications", async () => {
    emulator.configure({ replicationsPageSize: 1 });
    const ref = addRegistry({ replicaLocations: ["eastus", "westus", "northeurope"] });
    expect((await gateway.read(ref, { includeReplicas: true })).replicaLocations).toEqual([
      "eastus",
      "westus",
      "northeurope",
    ]);
    expect(requestsFor(ref).filter((r) => r.op === "replications")).toHaveLength(3);
  });
});

describe("replacing the IP rules", () => {
  it("sends one PATCH with only networkRuleSet, polls the operation to Succeeded and leaves the rest unchanged", async () => {
    emulator.configure({ pollsBeforeDone: 2 });
    const ref = addRegistry({
      ipRules: ["1.1.1.1"],
      publicNetworkAccess: "Enabled",
      networkRuleBypassOptions: "None",
      networkRuleBypassAllowedForTasks: true,
    });
    await gateway.replaceIpRules(ref, { ipRules: ["20.42.66.0/24", "203.0.113.9"], defaultAction: "Deny" });
    expect(emulator.patchBodies(ref.id)).toEqual([
      {
        properties: {
          networkRuleSet: {
            defaultAction: "Deny",
            ipRules: [
              { action: "Allow", value: "20.42.66.0/24" },
              { action: "Allow", value: "203.0.113.9" },
            ],
          },
        },
      },
    ]);
    expect(requestsFor(ref).map((r) => `${r.op} ${String(r.status)}`)).toEqual([
      "patch 201",
      "poll 200",
      "poll 200",
      "poll 200",
      "get 200",
    ]);
    expect(emulator.registry(ref.id)).toMatchObject({
      ipRules: ["20.42.66.0/24", "203.0.113.9"],
      defaultAction: "Deny",
      publicNetworkAccess: "Enabled",
      networkRuleBypassOptions: "None",
      networkRuleBypassAllowedForTasks: true,
    });
  });

  it("finishes on a 200 answer without polling", async () => {
    emulator.configure({ patchResponse: "sync" });
    const ref = addRegistry();
    await gateway.replaceIpRules(ref, { ipRules: ["4.4.4.0/24"], defaultAction: "Deny" });
    expect(requestsFor(ref).map((r) => r.op)).toEqual(["patch"]);
    expect(emulator.registry(ref.id).ipRules).toEqual(["4.4.4.0/24"]);
  });

  it("sends the registry's defaultAction unchanged, Allow included", async () => {
    const ref = addRegistry({ defaultAction: "Allow" });
    await gateway.replaceIpRules(ref, { ipRules: ["5.5.5.5"], defaultAction: "Allow" });
    const [body] = emulator.patchBodies(ref.id);
    expect(body).toEqual({
      properties: { networkRuleSet: { defaultAction: "Allow", ipRules: [{ action: "Allow", value: "5.5.5.5" }] } },
    });
    expect(emulator.registry(ref.id).defaultAction).toBe("Allow");
  });

  it("replaces the whole list: a rule someone added between the read and the PATCH is gone (last writer wins)", async () => {
    const ref = addRegistry({ ipRules: ["1.1.1.1"] });
    emulator.injectFault({
      op: "patch",
      fault: {
        kind: "concurrent-writer",
        when: "before",
        write: (e, id) => {
          e.setIpRules(id, ["1.1.1.1", "192.0.2.1"]);
        },
      },
    });
    await gateway.replaceIpRules(ref, { ipRules: ["1.1.1.1", "2.2.2.2"], defaultAction: "Deny" });
    expect((await gateway.read(ref)).ipRules).toEqual(["1.1.1.1", "2.2.2.2"]);
  });

  it("shows a write made right after ours applied on the next read", async () => {
    const ref = addRegistry();
    emulator.injectFault({
      op: "patch",
      fault: {
        kind: "concurrent-writer",
        when: "after",
        write: (e, id) => {
          e.setIpRules(id, [...e.registry(id).ipRules, "192.0.2.2"]);
        },
      },
    });
    await gateway.replaceIpRules(ref, { ipRules: ["3.3.3.3"], defaultAction: "Deny" });
    expect((await gateway.read(ref)).ipRules).toEqual(["3.3.3.3", "192.0.2.2"]);
  });
});

describe("credentials", () => {
  it("gets one managed identity token from IDENTITY_ENDPOINT and reuses it for every request", async () => {
    const ref = addRegistry();
    await gateway.read(ref);
    await gateway.replaceIpRules(ref, { ipRules: ["6.6.6.6"], defaultAction: "Deny" });
    await makeGateway().read(ref);
    const armTokens = identity.requests.filter(
      (r) => r.status === 200 && r.resource === "https://management.azure.com",
    );
    expect(armTokens).toHaveLength(1);
  });

  it("asks for a token for the configured cloud's audience even when the endpoint is elsewhere", async () => {
    const ref = addRegistry();
    // The emulator only accepts Public-cloud ARM tokens, so a China token is refused.
    const error = await failure(makeGateway({ cloud: "China" }).read(ref));
    expect(identity.requests.at(-1)).toEqual({ resource: "https://management.chinacloudapi.cn", status: 200 });
    expect(error).toBeInstanceOf(RegistryAccessDeniedError);
    expect(error.details).toMatchObject({ statusCode: 401, armCode: "InvalidAuthenticationToken" });
  });

  it("works with DefaultAzureCredential through the same endpoint", async () => {
    const ref = addRegistry({ ipRules: ["7.7.7.7"] });
    const snapshot = await makeGateway({ credential: new DefaultAzureCredential() }).read(ref);
    expect(snapshot.ipRules).toEqual(["7.7.7.7"]);
  });

  it("reports a credential that cannot get a token as access denied, without calling ARM", async () => {
    const ref = addRegistry();
    const broken: TokenCredential = {
      getToken: () => Promise.reject(new CredentialUnavailableError("ManagedIdentityCredential: no identity")),
    };
    const error = await failure(makeGateway({ credential: broken }).read(ref));
    expect(error).toBeInstanceOf(RegistryAccessDeniedError);
    expect(error.details).toMatchObject({ reason: "credential", operation: "get", registryId: ref.id });
    expect(requestsFor(ref)).toHaveLength(0);
  });
});

interface FaultCase {
  readonly name: string;
  readonly spec?: Partial<RegistrySpec>;
  /** The registry is not in the emulator at all. */
  readonly missing?: boolean;
  readonly faults?: readonly Omit<FaultRule, "registryId">[];
  readonly action: "read" | "write";
  readonly rules?: readonly string[];
  readonly expected: new (...args: never[]) => AllowlistSyncError;
  readonly details: Record<string, unknown>;
  /** Requests the emulator saw for the registry (shows what was retried). */
  readonly requests?: number;
}

const always = Number.POSITIVE_INFINITY;
const attempts = MAX_RETRIES + 1;

const faultCases: readonly FaultCase[] = [
  {
    name: "404 for a registry that does not exist",
    missing: true,
    action: "read",
    expected: RegistryNotFoundError,
    details: { statusCode: 404, armCode: "ResourceNotFound", operation: "get" },
  },
  {
    name: "403 when the role lacks registries/read",
    spec: { deniedActions: ["Microsoft.ContainerRegistry/registries/read"] },
    action: "read",
    expected: RegistryAccessDeniedError,
    details: { statusCode: 403, armCode: "AuthorizationFailed" },
    requests: 1,
  },
  {
    name: "403 when the role lacks listUsages",
    spec: { deniedActions: ["Microsoft.ContainerRegistry/registries/listUsages/read"] },
    action: "read",
    expected: RegistryAccessDeniedError,
    details: { statusCode: 403, operation: "listUsages" },
  },
  {
    name: "401 from ARM",
    faults: [{ op: "get", fault: { kind: "status", status: 401 } }],
    action: "read",
    expected: RegistryAccessDeniedError,
    details: { statusCode: 401, armCode: "InvalidAuthenticationToken" },
  },
  {
    name: "429 with Retry-After on every attempt",
    faults: [{ op: "get", times: always, fault: { kind: "status", status: 429, retryAfterSeconds: 0 } }],
    action: "read",
    expected: RegistryRequestError,
    details: { statusCode: 429 },
    requests: attempts,
  },
  {
    name: "429 without Retry-After (not retried)",
    faults: [{ op: "get", times: always, fault: { kind: "status", status: 429 } }],
    action: "read",
    expected: RegistryRequestError,
    details: { statusCode: 429, armCode: "TooManyRequests" },
    requests: 1,
  },
  {
    name: "500 on every attempt",
    faults: [{ op: "get", times: always, fault: { kind: "status", status: 500 } }],
    action: "read",
    expected: RegistryRequestError,
    details: { statusCode: 500 },
    requests: attempts,
  },
  {
    name: "503 on every replications page attempt",
    faults: [{ op: "replications", times: always, fault: { kind: "status", status: 503 } }],
    action: "read",
    expected: RegistryRequestError,
    details: { statusCode: 503, operation: "listReplications" },
    requests: 2 + attempts,
  },
  {
    name: "connection reset on every attempt",
    faults: [{ op: "get", times: always, fault: { kind: "reset" } }],
    action: "read",
    expected: RegistryRequestError,
    details: { reason: "network", errorCode: "ECONNRESET" },
    requests: attempts,
  },
  {
    name: "a registry document without sku",
    faults: [
      { op: "get", fault: { kind: "status", status: 200, body: { id: "x", location: "japaneast", properties: {} } } },
    ],
    action: "read",
    expected: RegistryStateInvalidError,
    details: { operation: "get" },
  },
  {
    name: "a defaultAction ARM does not define",
    faults: [
      {
        op: "get",
        fault: {
          kind: "status",
          status: 200,
          body: {
            location: "japaneast",
            sku: { name: "Premium" },
            properties: { provisioningState: "Succeeded", networkRuleSet: { defaultAction: "Block", ipRules: [] } },
          },
        },
      },
    ],
    action: "read",
    expected: RegistryStateInvalidError,
    details: { reason: "schema" },
  },
  {
    name: "a rule value that is not a string",
    faults: [
      {
        op: "get",
        fault: {
          kind: "status",
          status: 200,
          body: {
            location: "japaneast",
            sku: { name: "Premium" },
            properties: {
              provisioningState: "Succeeded",
              networkRuleSet: { defaultAction: "Deny", ipRules: [{ action: "Allow", value: 42 }] },
            },
          },
        },
      },
    ],
    action: "read",
    expected: RegistryStateInvalidError,
    details: { reason: "schema" },
  },
  {
    name: "an IPRules usage with a negative limit",
    faults: [
      {
        op: "usages",
        fault: {
          kind: "status",
          status: 200,
          body: { value: [{ name: "IPRules", limit: -1, currentValue: 0, unit: "Count" }] },
        },
      },
    ],
    action: "read",
    expected: RegistryStateInvalidError,
    details: { reason: "limit" },
  },
  {
    name: "network rules on a Basic registry",
    spec: { sku: "Basic" },
    action: "write",
    expected: NetworkRulesNotSupportedError,
    details: { statusCode: 400, armCode: "NetworkRuleNotSupported", operation: "update" },
    requests: 1,
  },
  {
    name: "more rules than the quota",
    action: "write",
    rules: Array.from({ length: 101 }, (_, i) => `10.1.${i}.0/24`),
    expected: RuleQuotaExceededError,
    details: {
      statusCode: 400,
      armMessage: "The requested feature IP rule exceeds allowed quota 100 for the SKU Premium.",
    },
    requests: 1,
  },
  {
    name: "an IPv6 rule",
    action: "write",
    rules: ["2603:1000::/40"],
    expected: RegistryRequestError,
    details: { statusCode: 400, armCode: "InvalidIpRule" },
    requests: 1,
  },
  {
    name: "403 when the role lacks registries/write",
    spec: { deniedActions: ["Microsoft.ContainerRegistry/registries/write"] },
    action: "write",
    expected: RegistryAccessDeniedError,
    details: { statusCode: 403 },
  },
  {
    name: "403 when the role lacks operationStatuses/read",
    spec: { deniedActions: ["Microsoft.ContainerRegistry/registries/operationStatuses/read"] },
    action: "write",
    expected: RegistryAccessDeniedError,
    details: { statusCode: 403 },
  },
  {
    name: "409 on the PATCH",
    faults: [{ op: "patch", fault: { kind: "status", status: 409 } }],
    action: "write",
    expected: RegistryRequestError,
    details: { statusCode: 409, armCode: "Conflict" },
    requests: 1,
  },
  {
    name: "a long-running operation that ends Failed",
    faults: [
      { op: "patch", fault: { kind: "lro-failed", code: "InternalServerError", message: "Registry update failed." } },
    ],
    action: "write",
    expected: RegistryOperationError,
    details: { reason: "operation-failed", armCode: "InternalServerError", armMessage: "Registry update failed." },
  },
  {
    name: "500 on every poll",
    faults: [{ op: "poll", times: always, fault: { kind: "status", status: 500 } }],
    action: "write",
    expected: RegistryRequestError,
    details: { statusCode: 500, operation: "update" },
    requests: 1 + attempts,
  },
];

describe("failures map to named errors", () => {
  it.each(faultCases)("$name → $expected.name", async (testCase) => {
    const ref =
      testCase.missing === true
        ? parseRegistryId(registryResourceId("00000000-0000-0000-0000-000000000001", "rg-registry", "ghostregistry"))
        : addRegistry(testCase.spec);
    const rules = { ipRules: testCase.rules ?? ["8.8.8.0/24"], defaultAction: "Deny" as const };
    for (const rule of testCase.faults ?? []) emulator.injectFault({ ...rule, registryId: ref.id });
    const error = await failure(
      testCase.action === "read" ? gateway.read(ref, { includeReplicas: true }) : gateway.replaceIpRules(ref, rules),
    );
    expect(error).toBeInstanceOf(testCase.expected);
    expect(error.details).toMatchObject({ registryId: ref.id, registry: ref.name, ...testCase.details });
    expect(error.message).toContain(ref.name);
    expect(error.remedy).toBeTruthy();
    expect(JSON.stringify(error.toJSON())).not.toMatch(/mi-[A-Za-z0-9_-]{16}/);
    if (testCase.requests !== undefined) expect(requestsFor(ref)).toHaveLength(testCase.requests);
  });

  it("names the custom role's actions when access is denied", async () => {
    const ref = addRegistry({ deniedActions: ["Microsoft.ContainerRegistry/registries/write"] });
    const error = await failure(gateway.replaceIpRules(ref, { ipRules: ["1.2.3.4"], defaultAction: "Deny" }));
    for (const action of [
      "registries/read",
      "registries/write",
      "registries/operationStatuses/read",
      "registries/listUsages/read",
    ]) {
      expect(error.remedy).toContain(`Microsoft.ContainerRegistry/${action}`);
    }
  });

  it("recovers from one 429 with Retry-After, one 500 and one reset through the SDK's retries", async () => {
    const ref = addRegistry({ ipRules: ["9.9.9.9"] });
    emulator.injectFault({
      op: "get",
      registryId: ref.id,
      fault: { kind: "status", status: 429, retryAfterSeconds: 0 },
    });
    emulator.injectFault({ op: "usages", registryId: ref.id, fault: { kind: "status", status: 500 } });
    emulator.injectFault({ op: "replications", registryId: ref.id, fault: { kind: "reset" } });
    expect((await gateway.read(ref, { includeReplicas: true })).ipRules).toEqual(["9.9.9.9"]);
    expect(requestsFor(ref).map((r) => `${r.op} ${String(r.status)}`)).toEqual([
      "get 429",
      "get 200",
      "usages 500",
      "usages 200",
      "replications reset",
      "replications 200",
    ]);
  });

  it("stops waiting for an operation stuck InProgress at the deadline and says it may still complete", async () => {
    const ref = addRegistry();
    emulator.injectFault({ op: "patch", registryId: ref.id, fault: { kind: "lro-stuck" } });
    const error = await failure(
      makeGateway({ operationTimeoutMs: 600, pollIntervalMs: 10 }).replaceIpRules(ref, {
        ipRules: ["1.2.3.4"],
        defaultAction: "Deny",
      }),
    );
    expect(error).toBeInstanceOf(RegistryOperationError);
    expect(error.details).toMatchObject({ reason: "deadline", timeoutMs: 600, operation: "update" });
    expect(error.message).toContain("may still complete");
    expect(requestsFor(ref).filter((r) => r.op === "poll").length).toBeGreaterThan(1);
  });

  it("ends a request ARM never answers with a timeout error, on reads and on the PATCH", async () => {
    const ref = addRegistry();
    const impatient = makeGateway({ requestTimeoutMs: 200 });
    emulator.injectFault({ op: "get", registryId: ref.id, fault: { kind: "hang" } });
    emulator.injectFault({ op: "patch", registryId: ref.id, fault: { kind: "hang" } });
    const readError = await failure(impatient.read(ref));
    const writeError = await failure(impatient.replaceIpRules(ref, { ipRules: ["1.2.3.4"], defaultAction: "Deny" }));
    expect(readError).toBeInstanceOf(RegistryRequestError);
    expect(readError.details).toMatchObject({ reason: "timeout", timeoutMs: 200, operation: "get" });
    expect(writeError).toBeInstanceOf(RegistryRequestError);
    expect(writeError.message).toContain("may or may not have been applied");
  });

  it("reports a cancelled update as possibly still applying", async () => {
    const ref = addRegistry();
    emulator.injectFault({ op: "patch", registryId: ref.id, fault: { kind: "lro-stuck" } });
    const controller = new AbortController();
    const pending = gateway.replaceIpRules(
      ref,
      { ipRules: ["1.2.3.4"], defaultAction: "Deny" },
      { signal: controller.signal },
    );
    while (!requestsFor(ref).some((r) => r.op === "poll")) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    const error = await failure(pending);
    expect(error).toBeInstanceOf(RegistryOperationError);
    expect(error.details).toMatchObject({ reason: "cancelled" });
  });
});
