import { HttpRequest, HttpResponse, InvocationContext } from "@azure/functions";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPlanHandler } from "../../src/app/plan-handler.js";
import type { Runtime } from "../../src/app/runtime.js";
import { startHarness, type Harness } from "../support/harness.js";
import { HANG_MS, PROTOTYPE_KEYS, expectPrototypeUntouchedAfterAll } from "./hostile.js";

/**
 * The query of `GET /api/plan` is the one input an HTTP caller controls. Whatever it is, the
 * handler answers 200 with a plan, 400 naming what is wrong, or 404 for a registry that is not
 * configured; never 500, never a write. The expected status is computed independently here.
 */

const suffix = randomBytes(3).toString("hex");
const NAMES = [`fuzzqa${suffix}`, `fuzzqb${suffix}`];
const ALLOWED = new Set(["registry", "format", "code"]);

let harness: Harness;
let runtime: Runtime;
let ids: string[];
let dir: string;
const statuses: number[] = [];

expectPrototypeUntouchedAfterAll();

beforeAll(async () => {
  harness = await startHarness();
  ids = NAMES.map((name) => harness.addRegistry({ name, ipRules: ["203.0.113.10"] }));
  dir = mkdtempSync(join(tmpdir(), "fuzz-plan-query-"));
  runtime = harness.runtime(
    { TARGET_REGISTRIES: ids.join(",") },
    { ledger: { kind: "file", path: join(dir, "ledger.json") } },
  );
});
afterAll(async () => {
  await harness.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the handler must answer for this query, decided without its code. */
function expectedStatus(query: URLSearchParams): number {
  const keys = [...query.keys()];
  if (new Set(keys).size !== keys.length) return 400;
  if (keys.some((key) => !ALLOWED.has(key))) return 400;
  const format = query.get("format");
  if (format !== null && format !== "json" && format !== "text") return 400;
  const registry = query.get("registry");
  if (registry === null || registry.length === 0 || registry.length > 300) return 400;
  const wanted = registry.trim().toLowerCase().replace(/\/+$/, "");
  const configured = [...ids, ...NAMES].map((value) => value.toLowerCase());
  return configured.includes(wanted) ? 200 : 404;
}

const key = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("registry", "format", "code") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "url",
      "serviceTagsUrl",
      "file",
      "Registry",
      "FORMAT",
      "registry ",
      "",
      "toString",
      "hasOwnProperty",
      ...PROTOTYPE_KEYS,
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 10 }) },
);
const value = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.constantFrom(...NAMES, "json", "text", "JSON", "", " ", "/", "..", "https://evil.example/x.json"),
  },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 280, max: 320 }).map((n) => "a".repeat(n)) },
);
/** A configured registry in another spelling: upper case, padded, trailing slashes. */
const configuredSpelling = fc
  .tuple(fc.nat(), fc.boolean(), fc.constantFrom("", " ", "/", "//"), fc.boolean())
  .map(([index, byId, tail, upper]) => {
    const base = byId ? (ids[index % ids.length] ?? "") : (NAMES[index % NAMES.length] ?? "");
    return `${upper ? base.toUpperCase() : base}${tail}`;
  });

const query = fc.oneof(
  fc.array(fc.tuple(key, value), { maxLength: 4 }),
  // Just a registry: mostly one that is not configured.
  value.map((registry): [string, string][] => [["registry", registry]]),
  // A good query plus one more pair: an extra key must spoil it even when everything else is right.
  fc.tuple(configuredSpelling, key, value).map(([registry, k, v]): [string, string][] => [
    ["registry", registry],
    [k, v],
  ]),
  fc
    .tuple(configuredSpelling, fc.option(fc.constantFrom("json", "text", "xml"), { nil: undefined }))
    .map(([registry, format]): [string, string][] =>
      format === undefined
        ? [["registry", registry]]
        : [
            ["registry", registry],
            ["format", format],
          ],
    ),
);

async function ask(pairs: readonly (readonly [string, string])[]) {
  const search = new URLSearchParams();
  for (const [k, v] of pairs) search.append(k, v);
  const request = new HttpRequest({ method: "GET", url: `https://func.example/api/plan?${search.toString()}` });
  const context = new InvocationContext({ functionName: "allowlistPlan", logHandler: () => undefined });
  const started = performance.now();
  const response = new HttpResponse(await createPlanHandler(runtime)(request, context));
  const elapsed = performance.now() - started;
  if (elapsed > HANG_MS)
    throw new Error(`One request took ${Math.round(elapsed)} ms (> ${HANG_MS} ms): treated as a hang.`);
  return {
    expected: expectedStatus(request.query),
    status: response.status,
    contentType: response.headers.get("content-type"),
    text: await response.text(),
  };
}

describe("GET /api/plan on hostile queries", () => {
  it("answers 200, 400 or 404 exactly as the query deserves, with a JSON error naming the problem, and never writes", async () => {
    const writes = harness.arm.writes;
    await fc.assert(
      fc.asyncProperty(query, async (pairs) => {
        const answer = await ask(pairs);
        statuses.push(answer.status);
        expect(answer.status).toBe(answer.expected);
        if (answer.status === 200) {
          expect(answer.contentType).toMatch(/^(application\/json|text\/plain)/);
          return;
        }
        const body = JSON.parse(answer.text) as { code: string; message: string };
        expect(body.code).toBe(answer.status === 400 ? "Usage" : "TargetNotConfigured");
        expect(body.message.length).toBeGreaterThan(0);
        expect(answer.text).not.toMatch(/\bat .+:\d+:\d+\)?/);
      }),
      { numRuns: 150 },
    );
    expect(harness.arm.writes).toBe(writes);
  });

  it("ends up answering 200, 400 and 404 (the generators reach every branch)", () => {
    expect(new Set(statuses)).toEqual(new Set([200, 400, 404]));
  });
});
