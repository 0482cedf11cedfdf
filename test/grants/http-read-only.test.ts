import { HttpRequest, HttpResponse, InvocationContext } from "@azure/functions";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { createGrantId } from "../../src/sync/run.js";
import { startHarness, type Harness } from "../support/harness.js";

/**
 * The HTTP function gains nothing that writes: it shows grants in its dry-run plan, and no query
 * can make, extend or end one (the real handler, runtime and @azure/functions classes).
 */

let harness: Harness;
let runtime: Runtime;
let id: string;
const START = Date.parse("2026-03-02T09:00:00.000Z");

beforeAll(async () => {
  harness = await startHarness();
  harness.arm.setClock(() => new Date(START));
  id = harness.addRegistry({ name: `httpgr${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
  runtime = harness.runtime({
    TARGET_REGISTRIES: id,
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `httpgr-${randomBytes(6).toString("hex")}`,
  });
  const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
    mode: "apply",
    trigger: "cli",
    actor: "cli:alice@laptop",
    grant: {
      kind: "add",
      rule: "192.0.2.7/32",
      ttlMs: 3_600_000,
      reason: "portal access",
      grantedBy: "cli:alice@laptop",
      id: createGrantId(),
    },
  });
  if (outcome?.ok !== true) throw new Error("the grant failed");
});
afterAll(async () => {
  await harness.close();
});

async function get(query: string): Promise<{ status: number; text: string }> {
  const context = new InvocationContext({
    functionName: "allowlistPlan",
    invocationId: randomBytes(8).toString("hex"),
  });
  const request = new HttpRequest({ method: "GET", url: `https://func.example/api/plan${query}` });
  const response = new HttpResponse(await createPlanHandler(runtime)(request, context));
  return { status: response.status, text: await response.text() };
}

describe("the HTTP dry run and temporary grants", () => {
  it("shows the active grant in its plan, and after the expiry the grant that the next run will end", async () => {
    const plan = JSON.parse((await get(`?registry=${encodeURIComponent(id)}`)).text) as {
      grants: { active: { rule: string }[]; expired: { rule: string }[] };
    };
    expect(plan.grants.active.map((g) => g.rule)).toEqual(["192.0.2.7/32"]);
    harness.arm.setClock(() => new Date(START + 2 * 3_600_000));
    try {
      const text = (await get(`?registry=${encodeURIComponent(id)}&format=text`)).text;
      expect(text).toContain("Grant ended: 192.0.2.7/32 (expired 2026-03-02T10:00:00.000Z)");
      expect(text).toMatch(/- 192\.0\.2\.7\/32\s+grant\s+grant by cli:alice@laptop expired/);
    } finally {
      harness.arm.setClock(() => new Date(START));
    }
  });

  it("refuses any query that would grant, revoke or extend, and writes nothing", async () => {
    const writes = harness.arm.writes;
    const before = await runtime.ports.ledger.read(id);
    for (const query of ["&ip=198.51.100.9&ttl=1h&reason=x", "&grant=198.51.100.9", "&revoke=192.0.2.7", "&ttl=7d"]) {
      const answer = await get(`?registry=${encodeURIComponent(id)}${query}`);
      expect(answer.status, query).toBe(400);
    }
    expect(harness.arm.writes).toBe(writes);
    expect(await runtime.ports.ledger.read(id)).toEqual(before);
    expect(harness.arm.registry(id).ipRules).not.toContain("198.51.100.9/32");
  });
});
