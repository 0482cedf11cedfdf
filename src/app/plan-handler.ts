import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { z } from "zod";
import { renderCanaryResult, type CanaryResult } from "../canary/result.js";
import { describeError, UsageError } from "../errors.js";
import { findTarget } from "../config/targets.js";
import { runInvocation } from "../sync/invocation.js";
import { renderPlan } from "../sync/render.js";
import { errorResponse } from "./error-response.js";
import type { Runtime } from "./runtime.js";

/**
 * Query of `GET /api/plan`: only these keys, nothing that could point the service at another
 * source or file. `code` is the Functions key, consumed by the host.
 */
const planQuerySchema = z.strictObject({
  registry: z.string().min(1).max(300).optional(),
  format: z.enum(["json", "text"]).default("json"),
  code: z.string().optional(),
});

/**
 * `GET /api/plan`: a dry run for one configured registry. It never writes. The answer also shows
 * the registry's last canary result (`lastCanary`, null when none is stored).
 */
export function createPlanHandler(runtime: Runtime) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const query = parseQuery(request.query);
      const target = findTarget(runtime.settings.targets, query.registry);
      const [outcome] = await runInvocation(runtime.settings, runtime.ports, {
        mode: "plan",
        trigger: "http",
        actor: "http",
        targets: [target],
        // Flex Consumption cuts an HTTP response at 230 s whatever functionTimeout says.
        deadline: { ms: runtime.settings.httpDeadlineMs, setting: "SYNC_HTTP_DEADLINE_MS" },
      });
      if (outcome === undefined) throw new Error("no outcome for the requested registry");
      if (!outcome.ok) throw outcome.error;
      const plan = outcome.result.plan;
      const lastCanary = await lastCanaryOf(runtime, target.ref.id, context);
      if (query.format === "text") {
        const canaryText =
          lastCanary === undefined
            ? target.canary === undefined
              ? ""
              : "\nLast canary: none recorded yet.\n"
            : `\nLast canary:\n${renderCanaryResult(lastCanary)}`;
        return {
          status: 200,
          body: renderPlan(plan) + canaryText,
          headers: { "content-type": "text/plain; charset=utf-8" },
        };
      }
      return { status: 200, jsonBody: { ...plan, lastCanary: lastCanary ?? null } };
    } catch (error) {
      return errorResponse(error, context);
    }
  };
}

/** A report, not part of the plan: a store that cannot be read leaves it out rather than failing the plan. */
async function lastCanaryOf(
  runtime: Runtime,
  registryId: string,
  context: InvocationContext,
): Promise<CanaryResult | undefined> {
  try {
    return await runtime.ports.canary?.results.read(registryId);
  } catch (error) {
    context.warn(`The last canary result of ${registryId} could not be read: ${describeError(error)}`);
    return undefined;
  }
}

function parseQuery(query: URLSearchParams): z.infer<typeof planQuerySchema> {
  // No prototype: `record["__proto__"] = value` on a plain object is swallowed by the setter, so
  // `?__proto__=x` would slip past the strict schema's unknown-key check.
  const record = Object.create(null) as Record<string, string>;
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key);
    if (values.length > 1)
      throw new UsageError(`Query parameter '${key}' is given ${values.length} times.`, {
        details: { parameter: key },
        remedy: "Give it once.",
      });
    record[key] = values[0] ?? "";
  }
  const parsed = planQuerySchema.safeParse(record);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `'${issue.path.join(".")}'` : "the query";
    const unknown = issue?.code === "unrecognized_keys" ? ` (${issue.keys.join(", ")})` : "";
    throw new UsageError(`Invalid query: ${where}${unknown}: ${issue?.message ?? "invalid"}.`, {
      remedy: "Use ?registry=<name or resource ID>&format=json|text.",
    });
  }
  return parsed.data;
}
