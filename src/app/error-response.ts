import type { HttpResponseInit, InvocationContext } from "@azure/functions";
import { AllowlistSyncError, type ErrorCategory } from "../errors.js";

const STATUS: Record<ErrorCategory, number> = {
  usage: 400,
  "not-found": 404,
  config: 500,
  guard: 422,
  input: 422,
  source: 502,
  registry: 502,
  ledger: 503,
  conflict: 409,
  deadline: 504,
};

/** Maps any error to a response: typed errors keep their fields, others say nothing internal. No stack traces. */
export function errorResponse(error: unknown, context: InvocationContext): HttpResponseInit {
  if (error instanceof AllowlistSyncError) {
    context.warn(`${error.name}: ${error.describe()}`);
    return { status: STATUS[error.category], jsonBody: error.toJSON() };
  }
  context.error(`Unexpected error: ${error instanceof Error ? error.message : String(error)}`);
  return {
    status: 500,
    jsonBody: {
      error: "UnexpectedError",
      code: "UnexpectedError",
      message: "The plan could not be computed; see the function logs for the invocation.",
    },
  };
}
