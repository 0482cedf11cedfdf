import { HttpRequest, HttpResponse, InvocationContext } from "@azure/functions";
import { DefaultAzureCredential } from "@azure/identity";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { runCli } from "../../src/cli/main.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * `GET /api/plan` through the real handler, the real runtime (SDK over HTTPS to the ARM
 * emulator, managed identity endpoint, source chain, Azurite ledger) and the @azure/functions
 * request and response classes the host uses.
 */

const PEOPLE = ["203.0.113.10", "198.51.100.0/24"];
const JAPAN_EAST_IPV4 = 11;
const suffix = randomBytes(3).toString("hex");
const NAME_A = `plana${suffix}`;
const NAME_B = `planb${suffix}`;

let harness: Harness;
let idA: string;
let idB: string;
let env: Record<string, string | undefined>;
let runtime: Runtime;
let tokenValue: string;

beforeAll(async () => {
  harness = await startHarness();
  idA = harness.addRegistry({ name: NAME_A, ipRules: PEOPLE });
  idB = harness.addRegistry({ name: NAME_B, location: "westeurope", ipRules: [] });
  env = harness.settings({
    TARGET_REGISTRIES: `${idA},${idB}`,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `plan-${randomBytes(6).toString("hex")}`,
  });
  runtime = harness.runtime(env);
  tokenValue = (await new DefaultAzureCredential().getToken("https://management.azure.com/.default")).token;
});
afterAll(async () => {
  await harness.close();
});

interface Answer {
  readonly status: number;
  readonly contentType: string | null;
  readonly text: string;
  readonly logs: readonly string[];
}

/** One request through the handler, answered the way the host turns the result into HTTP. */
async function get(query: string, on: Runtime = runtime): Promise<Answer> {
  const logs: string[] = [];
  const context = new InvocationContext({
    functionName: "allowlistPlan",
    invocationId: randomBytes(8).toString("hex"),
    logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(" ")}`),
  });
  const request = new HttpRequest({ method: "GET", url: `https://func.example/api/plan${query}` });
  const response = new HttpResponse(await createPlanHandler(on)(request, context));
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    text: await response.text(),
    logs,
  };
}

function json(answer: Answer): Record<string, unknown> {
  expect(answer.contentType).toMatch(/^application\/json/);
  return JSON.parse(answer.text) as Record<string, unknown>;
}

/** An error answer: a typed JSON error, with nothing an attacker could use. */
function expectSafeError(answer: Answer, status: number, code: string): Record<string, unknown> {
  expect(answer.status).toBe(status);
  const body = json(answer);
  expect(body.code).toBe(code);
  expect(typeof body.message).toBe("string");
  for (const text of [answer.text, ...answer.logs]) {
    expect(text).not.toMatch(/\bat .+:\d+:\d+\)?/);
    expect(text).not.toMatch(/Bearer/i);
    expect(text).not.toMatch(/mi-[A-Za-z0-9_-]{32}/);
    expect(text).not.toContain(tokenValue);
    expect(text).not.toContain(harness.identity.secret);
  }
  return body;
}

describe("GET /api/plan", () => {
  it("answers the plan of the named registry as JSON by default", async () => {
    const answer = await get(`?registry=${NAME_A}`);
    expect(answer.status).toBe(200);
    const plan = json(answer) as {
      registry: { name: string };
      adds: unknown[];
      kept: { rule: string; owner: string }[];
      source: { kind: string };
    };
    expect(plan.registry.name).toBe(NAME_A);
    expect(plan.adds).toHaveLength(JAPAN_EAST_IPV4);
    expect(plan.kept.map((rule) => rule.rule)).toEqual(expect.arrayContaining(["203.0.113.10/32", "198.51.100.0/24"]));
    expect(plan.source.kind).toBe("service-tags");
  });

  it("answers a readable diff as text/plain with ?format=text", async () => {
    const answer = await get(`?registry=${NAME_A}&format=text`);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe("text/plain; charset=utf-8");
    expect(answer.text).toContain(`Registry ${NAME_A} (japaneast, Premium, defaultAction Deny)`);
    expect(answer.text).toContain("Source: ServiceTags_Public_20251020.json");
    expect(answer.text.split("\n").filter((line) => line.startsWith("  + "))).toHaveLength(JAPAN_EAST_IPV4);
  });

  it("finds the registry by name or resource ID, in any case and with a trailing slash", async () => {
    const reference = json(await get(`?registry=${NAME_B}`)) as { registry: { id: string }; adds: unknown[] };
    expect(reference.adds.length).toBeGreaterThan(0);
    for (const registry of [
      NAME_B.toUpperCase(),
      idB,
      idB.toUpperCase(),
      `${idB.toLowerCase()}/`,
      encodeURIComponent(idB),
    ]) {
      const answer = await get(`?registry=${registry}`);
      expect(answer.status).toBe(200);
      expect((json(answer) as { registry: { id: string } }).registry.id).toBe(reference.registry.id);
    }
  });

  it("answers 404 with a JSON error for a registry that is not configured", async () => {
    const other = idA.replace(NAME_A, "notconfigured1");
    for (const registry of ["notconfigured1", other]) {
      const body = expectSafeError(await get(`?registry=${encodeURIComponent(registry)}`), 404, "TargetNotConfigured");
      expect(body.message).toContain(registry);
      expect(body.category).toBe("not-found");
    }
  });

  it("answers 400 when two registries are configured and none is named", async () => {
    const body = expectSafeError(await get(""), 400, "Usage");
    expect(body.message).toMatch(/2 registries are configured.*\?registry=/);
    expect((body.details as { configured: string[] }).configured).toEqual([NAME_A, NAME_B]);
  });

  it.each([
    ["a source URL", `?registry=${NAME_A}&url=https://evil.example/tags.json`, /'url'|\(url\)/],
    ["a service-tags URL", `?registry=${NAME_A}&serviceTagsUrl=https://evil.example/tags.json`, /serviceTagsUrl/],
    ["a local file", `?registry=${NAME_A}&file=/etc/passwd`, /file/],
    ["a prototype key", `?registry=${NAME_A}&__proto__=x`, /__proto__/],
    ["an unknown format", `?registry=${NAME_A}&format=xml`, /'format'.*json.*text/],
    ["a repeated key", `?registry=${NAME_A}&registry=${NAME_B}`, /'registry' is given 2 times/],
    ["an empty registry", "?registry=", /'registry'/],
    ["a registry longer than 300 characters", `?registry=${"a".repeat(301)}`, /'registry'/],
  ])("answers 400 that says what is wrong for %s", async (_, query, message) => {
    const writes = harness.arm.writes;
    const reads = harness.arm.requests.length;
    const body = expectSafeError(await get(query), 400, "Usage");
    expect(body.message).toMatch(message);
    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.requests.length).toBe(reads);
  });

  it("never writes: neither the registry nor the ledger nor the audit trail", async () => {
    const missing = await driftOnA();
    const rules = harness.arm.registry(idA).ipRules;
    const writes = harness.arm.writes;
    const ledger = await runtime.ports.ledger.read(idA);
    const audit = await runtime.ports.ledger.listAudit(idA);
    expect(ledger?.ownedRules.length).toBe(JAPAN_EAST_IPV4);

    const plan = json(await get(`?registry=${NAME_A}`)) as {
      changed: boolean;
      adds: { rule: string }[];
      drift: string[];
    };
    expect(plan.changed).toBe(true);
    expect(plan.adds.map((add) => add.rule)).toEqual([missing]);
    expect((await get(`?registry=${NAME_A}&format=text`)).status).toBe(200);

    expect(harness.arm.writes).toBe(writes);
    expect(harness.arm.registry(idA).ipRules).toEqual(rules);
    expect(await runtime.ports.ledger.read(idA)).toEqual(ledger);
    expect(await runtime.ports.ledger.listAudit(idA)).toEqual(audit);
  });

  it("answers 502 when no service-tags source can be read and no last-good copy is kept", async () => {
    const broken = harness.runtime({
      ...env,
      // A ledger container of its own: the shared one holds the last-good copy of the earlier runs.
      LEDGER_CONTAINER: `plan-${randomBytes(6).toString("hex")}`,
      SERVICE_TAGS_DETAILS_URL: `${harness.tags.origin}/en-us/download/details.aspx?id=0`,
      SERVICE_TAGS_LATEST_URL: harness.tags.fileUrl("ServiceTags_Public_19990101.json"),
    });
    const writes = harness.arm.writes;
    const body = expectSafeError(await get(`?registry=${NAME_A}`, broken), 502, "ServiceTagsUnavailable");
    expect(body.category).toBe("source");
    expect(body.message).toMatch(/service-tags/i);
    expect(harness.arm.writes).toBe(writes);
  });

  it("answers 422 when a guard stops the plan: no AzureContainerRegistry tag for the registry's region", async () => {
    const idC = harness.addRegistry({ name: `planc${suffix}`, location: "atlantisnorth", ipRules: PEOPLE });
    const guarded = harness.runtime({ ...env, TARGET_REGISTRIES: idC });
    const body = expectSafeError(await get(`?registry=planc${suffix}`, guarded), 422, "ServiceTagMissing");
    expect(body.category).toBe("guard");
    expect(body.message).toMatch(/atlantisnorth/i);
  });

  it("answers 500 naming SYNC_REGIONS for a region that is a typo, not the 422 of the tag-missing guard", async () => {
    const typo = harness.runtime({ ...env, SYNC_REGIONS: "eastuss" });
    const body = expectSafeError(await get(`?registry=${encodeURIComponent(idA)}`, typo), 500, "InvalidConfiguration");
    expect(body.category).toBe("config");
    expect(body.message).toMatch(
      /^Setting SYNC_REGIONS \(--regions\) is invalid: region 'eastuss' \(did you mean eastus/,
    );
  });

  it("produces the same plan as the CLI's 'plan --json' for the same settings and ledger", async () => {
    const missing = await driftOnA();
    const httpPlan = json(await get(`?registry=${idA}`));
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(["plan", "--json", "--registry", idA, "--state", "blob"], {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
      env,
    });
    expect(err.join("")).toBe("");
    expect(code).toBe(0);
    const cliPlan = cliPlanOf(out.join(""));
    expect(withoutRetrievedAt(cliPlan)).toEqual(withoutRetrievedAt(httpPlan));
    // The two runs did read the same changed state: a ledger-owned plan with one rule to restore.
    expect(cliPlan.ownership).toBe("ledger");
    expect((cliPlan.adds as { rule: string }[]).map((add) => add.rule)).toEqual([missing]);
  });

  it("gives the CLI with a file ledger the same plan as HTTP when neither has a ledger yet", async () => {
    const httpPlan = json(await get(`?registry=${NAME_B}`));
    const out: string[] = [];
    const state = join(mkdtempSync(join(tmpdir(), "plan-cli-")), "ledger.json");
    const code = await runCli(["plan", "--json", "--registry", idB, "--state", state], {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: () => undefined },
      env,
    });
    expect(code).toBe(0);
    expect(withoutRetrievedAt(cliPlanOf(out.join("")))).toEqual(withoutRetrievedAt(httpPlan));
  });
});

/** The plan of the first result of the CLI's JSON envelope. */
function cliPlanOf(stdout: string): Record<string, unknown> {
  const plan = (JSON.parse(stdout) as { results: { plan: Record<string, unknown> | null }[] }).results[0]?.plan;
  if (plan === undefined || plan === null) throw new Error(`no plan in the CLI output: ${stdout}`);
  return plan;
}

/**
 * Registry A after an applied sync from which a person then removed one of our rules, so that a
 * plan has work to do and ownership comes from the ledger. Idempotent; returns the missing rule.
 */
async function driftOnA(): Promise<string> {
  if ((await runtime.ports.ledger.read(idA)) === undefined) {
    const [applied] = await runInvocation(runtime.settings, runtime.ports, {
      mode: "apply",
      trigger: "test",
      actor: "test",
      targets: runtime.settings.targets.slice(0, 1),
    });
    expect(applied?.ok).toBe(true);
  }
  const owned = (await runtime.ports.ledger.read(idA))?.ownedRules ?? [];
  const missing = owned.at(-1);
  if (missing === undefined) throw new Error("no owned rule on registry A");
  harness.arm.setIpRules(
    idA,
    harness.arm.registry(idA).ipRules.filter((rule) => rule !== missing),
  );
  return missing;
}

/**
 * The plan with `source.origin.retrievedAt` removed: the one field two fetches may differ in. The
 * HTTP answer's `lastCanary` (the stored canary result, not part of the plan) is left out too.
 */
function withoutRetrievedAt(plan: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(plan) as { source?: { origin?: { retrievedAt?: string } }; lastCanary?: unknown };
  expect(typeof copy.source?.origin?.retrievedAt).toBe("string");
  delete copy.source?.origin?.retrievedAt;
  delete copy.lastCanary;
  return copy;
}
