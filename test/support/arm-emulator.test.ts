import { readFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ARM_API_VERSION,
  quotaExceededMessage,
  startArmEmulator,
  type ArmEmulator,
  type RegistrySpec,
} from "./arm-emulator.js";
import { startIdentityEndpoint, type IdentityEndpoint } from "./identity-endpoint.js";
import { tlsPaths } from "./tls.js";

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
}

const ca = readFileSync(tlsPaths.ca);
let emulator: ArmEmulator;
let identity: IdentityEndpoint;
let token: string;

async function send(
  method: string,
  url: string,
  options: { token?: string | null; body?: unknown; timeoutMs?: number } = {},
): Promise<Reply> {
  const bearer = options.token === undefined ? token : options.token;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        agent: false,
        headers: {
          ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
          "content-type": "application/json",
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            json: text === "" ? undefined : (JSON.parse(text) as unknown),
          });
        });
      },
    );
    req.on("error", reject);
    if (options.timeoutMs !== undefined)
      req.setTimeout(options.timeoutMs, () => req.destroy(new Error("client timeout")));
    req.end(
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body),
    );
  });
}

const api = `api-version=${ARM_API_VERSION}`;
const at = (id: string, suffix = ""): string => `${emulator.url}${id}${suffix}?${api}`;
const rulesOf = (rules: readonly string[]) => ({
  properties: {
    networkRuleSet: { defaultAction: "Deny", ipRules: rules.map((value) => ({ action: "Allow", value })) },
  },
});
const addPremium = (spec: Partial<RegistrySpec> = {}): string =>
  emulator.addRegistry({
    name: `reg${Math.random().toString(36).slice(2, 10)}`,
    location: "japaneast",
    sku: "Premium",
    defaultAction: "Deny",
    ...spec,
  });

async function patchAndWait(id: string, body: unknown): Promise<Reply> {
  const accepted = await send("PATCH", at(id), { body });
  if (accepted.status !== 201) return accepted;
  const operation = String(accepted.headers["azure-asyncoperation"]);
  for (;;) {
    const polled = await send("GET", operation);
    const status = (polled.json as { status: string }).status;
    if (status !== "InProgress") return polled;
  }
}

beforeAll(async () => {
  identity = await startIdentityEndpoint({ secret: "s3cret" });
  emulator = await startArmEmulator({ acceptToken: identity.tokenValidator() });
  const issued = await fetch(`${identity.url}?api-version=2019-08-01&resource=https://management.azure.com`, {
    headers: { "X-IDENTITY-HEADER": "s3cret" },
  });
  token = ((await issued.json()) as { access_token: string }).access_token;
});

afterAll(async () => {
  await emulator.close();
  await identity.close();
});

beforeEach(() => {
  emulator.clearFaults();
  emulator.configure({ patchResponse: "async", pollsBeforeDone: 1, retryAfterSeconds: 0, replicationsPageSize: 100 });
});

describe("identity endpoint", () => {
  it("issues bearer tokens with expires_on in epoch seconds to callers that send the secret header", async () => {
    const before = identity.tokenRequests;
    const reply = await fetch(`${identity.url}?api-version=2019-08-01&resource=https://management.azure.com/`, {
      headers: { "X-IDENTITY-HEADER": "s3cret" },
    });
    const body = (await reply.json()) as Record<string, string>;
    expect(reply.status).toBe(200);
    expect(body).toMatchObject({ resource: "https://management.azure.com/", token_type: "Bearer" });
    expect(body.expires_on).toMatch(/^\d{10}$/);
    expect(Number(body.expires_on) * 1000).toBeGreaterThan(Date.now());
    expect(identity.isIssued(body.access_token ?? "")).toBe(true);
    expect(identity.isIssued(body.access_token ?? "", "https://storage.azure.com")).toBe(false);
    expect(identity.tokenRequests).toBe(before + 1);
  });

  it("refuses a wrong X-IDENTITY-HEADER, a wrong api-version and a missing resource", async () => {
    const wrongSecret = await fetch(`${identity.url}?api-version=2019-08-01&resource=https://management.azure.com`, {
      headers: { "X-IDENTITY-HEADER": "nope" },
    });
    const wrongVersion = await fetch(`${identity.url}?api-version=2017-09-01&resource=https://management.azure.com`, {
      headers: { "X-IDENTITY-HEADER": "s3cret" },
    });
    const noResource = await fetch(`${identity.url}?api-version=2019-08-01`, {
      headers: { "X-IDENTITY-HEADER": "s3cret" },
    });
    expect([wrongSecret.status, wrongVersion.status, noResource.status]).toEqual([401, 400, 400]);
  });
});

describe("ARM emulator: reading", () => {
  it("answers GET with the registry's ARM wire document", async () => {
    const id = addPremium({ ipRules: ["20.42.66.0/24", "203.0.113.7"], networkRuleBypassAllowedForTasks: true });
    const reply = await send("GET", at(id));
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      id,
      location: "japaneast",
      sku: { name: "Premium", tier: "Premium" },
      properties: {
        provisioningState: "Succeeded",
        publicNetworkAccess: "Enabled",
        networkRuleBypassOptions: "AzureServices",
        networkRuleBypassAllowedForTasks: true,
        networkRuleSet: {
          defaultAction: "Deny",
          ipRules: [
            { action: "Allow", value: "20.42.66.0/24" },
            { action: "Allow", value: "203.0.113.7" },
          ],
        },
      },
    });
  });

  it("leaves networkRuleSet out for SKUs that cannot have one", async () => {
    const id = emulator.addRegistry({ name: "standardreg", location: "westeurope", sku: "Standard" });
    const reply = await send("GET", at(id));
    expect((reply.json as { properties: Record<string, unknown> }).properties).not.toHaveProperty("networkRuleSet");
  });

  it("answers 404 ResourceNotFound for an unknown registry", async () => {
    const reply = await send(
      "GET",
      `${emulator.url}/subscriptions/00000000-0000-0000-0000-000000000009/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/ghost?${api}`,
    );
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({
      error: {
        code: "ResourceNotFound",
        message: expect.stringContaining(
          "'Microsoft.ContainerRegistry/registries/ghost' under resource group 'rg' was not found",
        ),
      },
    });
  });

  it("lists usages with the IPRules limit, and without it when the registry has no limit entry", async () => {
    const id = addPremium({ ipRules: ["1.2.3.4"], ruleLimit: 200 });
    const noEntry = addPremium({ ruleLimit: null });
    const usages = (await send("GET", at(id, "/listUsages"))).json as {
      value: { name: string; limit: number; currentValue: number }[];
    };
    const none = (await send("GET", at(noEntry, "/listUsages"))).json as { value: { name: string }[] };
    expect(usages.value.find((u) => u.name === "IPRules")).toEqual({
      name: "IPRules",
      limit: 200,
      currentValue: 1,
      unit: "Count",
    });
    expect(none.value.map((u) => u.name)).not.toContain("IPRules");
  });

  it("pages replications through nextLink", async () => {
    emulator.configure({ replicationsPageSize: 2 });
    const id = addPremium({ replicaLocations: ["japaneast", "eastus", "westeurope"] });
    const first = (await send("GET", at(id, "/replications"))).json as {
      value: { location: string }[];
      nextLink: string;
    };
    const second = (await send("GET", first.nextLink)).json as { value: { location: string }[]; nextLink?: string };
    expect(first.value.map((r) => r.location)).toEqual(["japaneast", "eastus"]);
    expect(second.value.map((r) => r.location)).toEqual(["westeurope"]);
    expect(second.nextLink).toBeUndefined();
  });
});

describe("ARM emulator: authentication and authorization", () => {
  it("answers 401 without a bearer token and for tokens the identity endpoint did not issue", async () => {
    const id = addPremium();
    const missing = await send("GET", at(id), { token: null });
    const forged = await send("GET", at(id), { token: "forged" });
    expect([missing.status, forged.status]).toEqual([401, 401]);
    expect(missing.json).toMatchObject({ error: { code: "AuthenticationFailed" } });
    expect(forged.json).toMatchObject({ error: { code: "InvalidAuthenticationToken" } });
  });

  it("answers 403 AuthorizationFailed for an action the role lacks, and serves the others", async () => {
    const id = addPremium({ deniedActions: ["Microsoft.ContainerRegistry/registries/write"] });
    const read = await send("GET", at(id));
    const write = await send("PATCH", at(id), { body: rulesOf(["1.2.3.4"]) });
    expect(read.status).toBe(200);
    expect(write.status).toBe(403);
    expect(write.json).toMatchObject({
      error: {
        code: "AuthorizationFailed",
        message: expect.stringContaining("'Microsoft.ContainerRegistry/registries/write'"),
      },
    });
  });

  it("refuses requests without the api-version the SDK uses", async () => {
    const id = addPremium();
    const missing = await send("GET", `${emulator.url}${id}`);
    const other = await send("GET", `${emulator.url}${id}?api-version=2019-05-01`);
    expect(missing.json).toMatchObject({ error: { code: "MissingApiVersionParameter" } });
    expect(other.json).toMatchObject({ error: { code: "InvalidApiVersionParameter" } });
  });
});

describe("ARM emulator: PATCH validation like ACR", () => {
  it("refuses network rules on a non-Premium registry with NetworkRuleNotSupported", async () => {
    const id = emulator.addRegistry({ name: "basicreg", location: "eastus", sku: "Basic" });
    const reply = await send("PATCH", at(id), { body: rulesOf(["1.2.3.4"]) });
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: { code: "NetworkRuleNotSupported" } });
  });

  it("refuses IPv6 rules and values that are not IPv4 addresses or ranges", async () => {
    const id = addPremium({ ipRules: ["1.1.1.1"] });
    const ipv6 = await send("PATCH", at(id), { body: rulesOf(["1.2.3.4", "2603:1000::/40"]) });
    const invalid = await send("PATCH", at(id), { body: rulesOf(["300.1.2.3/24"]) });
    const badLength = await send("PATCH", at(id), { body: rulesOf(["10.0.0.0/33"]) });
    expect([ipv6.status, invalid.status, badLength.status]).toEqual([400, 400, 400]);
    expect(ipv6.json).toMatchObject({ error: { message: expect.stringContaining("IPv6") } });
    expect(emulator.registry(id).ipRules).toEqual(["1.1.1.1"]);
  });

  it("refuses more rules than the quota with ACR's message naming the limit and SKU", async () => {
    const id = addPremium();
    const china = addPremium({ ruleLimit: 200 });
    const over = Array.from({ length: 101 }, (_, i) => `10.0.${i}.0/24`);
    const reply = await send("PATCH", at(id), { body: rulesOf(over) });
    const accepted = await send("PATCH", at(china), { body: rulesOf(over) });
    expect(reply.status).toBe(400);
    expect((reply.json as { error: { message: string } }).error.message).toBe(
      "The requested feature IP rule exceeds allowed quota 100 for the SKU Premium.",
    );
    expect(quotaExceededMessage(200, "Premium")).toBe(
      "The requested feature IP rule exceeds allowed quota 200 for the SKU Premium.",
    );
    expect(accepted.status).toBe(201);
  });

  it("replaces the whole list, changes only what the body names, and applies when the operation succeeds", async () => {
    emulator.configure({ pollsBeforeDone: 2, retryAfterSeconds: 3 });
    const id = addPremium({
      ipRules: ["1.1.1.1", "2.2.2.0/24"],
      publicNetworkAccess: "Enabled",
      networkRuleBypassOptions: "None",
    });
    const writes = emulator.writes;
    const accepted = await send("PATCH", at(id), { body: rulesOf(["3.3.3.0/24"]) });
    expect(accepted.status).toBe(201);
    expect(accepted.headers["retry-after"]).toBe("3");
    const operation = String(accepted.headers["azure-asyncoperation"]);
    expect(operation).toMatch(
      new RegExp(`^${emulator.url}${id}/operationStatuses/registries-[0-9a-f-]+\\?api-version=${ARM_API_VERSION}$`),
    );
    const statuses: string[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(((await send("GET", operation)).json as { status: string }).status);
      if (i === 0) expect(emulator.registry(id).ipRules).toEqual(["1.1.1.1", "2.2.2.0/24"]);
    }
    expect(statuses).toEqual(["InProgress", "InProgress", "Succeeded"]);
    expect(emulator.registry(id)).toMatchObject({
      ipRules: ["3.3.3.0/24"],
      defaultAction: "Deny",
      publicNetworkAccess: "Enabled",
      networkRuleBypassOptions: "None",
    });
    expect(emulator.writes).toBe(writes + 1);
    expect(emulator.patchBodies(id)).toEqual([rulesOf(["3.3.3.0/24"])]);
  });

  it("answers 200 with the result when configured to complete synchronously", async () => {
    emulator.configure({ patchResponse: "sync" });
    const id = addPremium();
    const reply = await send("PATCH", at(id), { body: rulesOf(["4.4.4.4"]) });
    expect(reply.status).toBe(200);
    expect(reply.headers["azure-asyncoperation"]).toBeUndefined();
    expect(reply.json).toMatchObject({ properties: { networkRuleSet: { ipRules: [{ value: "4.4.4.4" }] } } });
  });

  it("stores single addresses bare or as /32 when the registry is set up that way", async () => {
    emulator.configure({ patchResponse: "sync" });
    const bare = addPremium({ storeSingleAddressAs: "bare" });
    const cidr = addPremium({ storeSingleAddressAs: "cidr32" });
    await send("PATCH", at(bare), { body: rulesOf(["5.5.5.5/32", "6.6.0.0/16"]) });
    await send("PATCH", at(cidr), { body: rulesOf(["5.5.5.5", "6.6.0.0/16"]) });
    expect(emulator.registry(bare).ipRules).toEqual(["5.5.5.5", "6.6.0.0/16"]);
    expect(emulator.registry(cidr).ipRules).toEqual(["5.5.5.5/32", "6.6.0.0/16"]);
  });
});

describe("ARM emulator: faults", () => {
  it("answers injected statuses with Retry-After and an ARM error body, the given number of times", async () => {
    const id = addPremium();
    emulator.injectFault({ op: "get", times: 2, fault: { kind: "status", status: 429, retryAfterSeconds: 7 } });
    const first = await send("GET", at(id));
    const second = await send("GET", at(id));
    const third = await send("GET", at(id));
    expect([first.status, second.status, third.status]).toEqual([429, 429, 200]);
    expect(first.headers["retry-after"]).toBe("7");
    expect(first.json).toMatchObject({ error: { code: "TooManyRequests" } });
    expect(emulator.pendingFaults).toBe(0);
  });

  it("limits a fault to its operation and registry", async () => {
    const id = addPremium();
    const other = addPremium();
    emulator.injectFault({ op: "usages", registryId: other, fault: { kind: "status", status: 500 } });
    expect((await send("GET", at(id, "/listUsages"))).status).toBe(200);
    expect((await send("GET", at(other))).status).toBe(200);
    expect((await send("GET", at(other, "/listUsages"))).status).toBe(500);
  });

  it("resets the connection without an answer", async () => {
    const id = addPremium();
    emulator.injectFault({ op: "any", fault: { kind: "reset" } });
    await expect(send("GET", at(id))).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(emulator.requests.at(-1)).toMatchObject({ op: "get", status: "reset", fault: "reset" });
  });

  it("hangs until the client gives up, and still closes", async () => {
    const hanging = await startArmEmulator({ acceptToken: () => true });
    const id = hanging.addRegistry({ name: "hangreg", location: "eastus" });
    hanging.injectFault({ op: "get", fault: { kind: "hang" } });
    await expect(send("GET", `${hanging.url}${id}?${api}`, { timeoutMs: 200 })).rejects.toThrow("client timeout");
    hanging.injectFault({ op: "get", fault: { kind: "hang" } });
    const pending = send("GET", `${hanging.url}${id}?${api}`).catch((error: unknown) => error);
    while (hanging.requests.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await hanging.close();
    expect(await pending).toBeInstanceOf(Error);
    expect(hanging.requests.map((r) => r.status)).toEqual(["hang", "hang"]);
  });

  it("ends an operation Failed with the injected error and applies nothing", async () => {
    const id = addPremium({ ipRules: ["1.1.1.1"] });
    emulator.injectFault({ op: "patch", fault: { kind: "lro-failed", code: "InternalServerError", message: "Boom." } });
    const final = await patchAndWait(id, rulesOf(["9.9.9.9"]));
    expect(final.json).toMatchObject({ status: "Failed", error: { code: "InternalServerError", message: "Boom." } });
    expect(emulator.registry(id).ipRules).toEqual(["1.1.1.1"]);
  });

  it("keeps a stuck operation InProgress", async () => {
    const id = addPremium();
    emulator.injectFault({ op: "patch", fault: { kind: "lro-stuck" } });
    const accepted = await send("PATCH", at(id), { body: rulesOf(["9.9.9.9"]) });
    const operation = String(accepted.headers["azure-asyncoperation"]);
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(((await send("GET", operation)).json as { status: string }).status);
    expect(new Set(statuses)).toEqual(new Set(["InProgress"]));
  });

  it("lets a concurrent writer change the registry before a PATCH and right after it applies", async () => {
    const id = addPremium({ ipRules: ["1.1.1.1"] });
    const seen: string[][] = [];
    emulator.injectFault({
      op: "patch",
      fault: {
        kind: "concurrent-writer",
        when: "before",
        write: (e, rid) => {
          e.setIpRules(rid, ["7.7.7.7"]);
        },
      },
    });
    emulator.injectFault({
      op: "patch",
      fault: {
        kind: "concurrent-writer",
        when: "after",
        write: (e, rid) => {
          seen.push([...e.registry(rid).ipRules]);
          e.setIpRules(rid, [...e.registry(rid).ipRules, "8.8.8.8"]);
        },
      },
    });
    await patchAndWait(id, rulesOf(["2.2.2.2"]));
    expect(emulator.registry(id).ipRules).toEqual(["2.2.2.2"]);
    await patchAndWait(id, rulesOf(["3.3.3.3"]));
    expect(seen).toEqual([["3.3.3.3"]]);
    expect(emulator.registry(id).ipRules).toEqual(["3.3.3.3", "8.8.8.8"]);
  });

  it("logs every request with its operation, status and PATCH body", async () => {
    const id = addPremium();
    const from = emulator.requests.length;
    await send("GET", at(id));
    await send("PATCH", at(id), { body: rulesOf(["1.2.3.4"]) });
    expect(emulator.requests.slice(from)).toMatchObject([
      { method: "GET", op: "get", status: 200, registryId: id, body: undefined },
      { method: "PATCH", op: "patch", status: 201, registryId: id, body: JSON.stringify(rulesOf(["1.2.3.4"])) },
    ]);
  });
});
