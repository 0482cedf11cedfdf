import {
  AllowlistSyncError,
  NetworkRulesNotSupportedError,
  RegistryAccessDeniedError,
  RegistryNotFoundError,
  RegistryOperationError,
  RegistryRequestError,
  RegistryStateInvalidError,
  RuleQuotaExceededError,
  type ErrorDetails,
} from "../errors.js";
import type { RegistryRef } from "./types.js";

/** The ARM calls the gateway makes, as named in error details. */
export type ArmOperation =
  | "get"
  | "listUsages"
  | "listReplications"
  | "update"
  // ACR Tasks, used only by the canary (src/canary/).
  | "scheduleRun"
  | "getRun"
  | "listLogSasUrl";

export interface ErrorContext {
  readonly ref: RegistryRef;
  readonly operation: ArmOperation;
  readonly endpoint: string;
  readonly requestTimeoutMs: number;
  /** Aborted by the caller. */
  readonly callerSignal?: AbortSignal | undefined;
  /** Aborted when the long-running update passed its deadline. */
  readonly deadlineSignal?: AbortSignal | undefined;
  readonly operationTimeoutMs?: number;
}

export const LEAST_PRIVILEGE_ACTIONS = [
  "Microsoft.ContainerRegistry/registries/read",
  "Microsoft.ContainerRegistry/registries/write",
  "Microsoft.ContainerRegistry/registries/operationStatuses/read",
  "Microsoft.ContainerRegistry/registries/listUsages/read",
  // Listing geo-replicas (Premium) is an action of its own.
  "Microsoft.ContainerRegistry/registries/replications/read",
] as const;

/** What the canary needs, granted only on the registries a canary runs on (a task run can push images). */
export const CANARY_ACTIONS = [
  "Microsoft.ContainerRegistry/registries/scheduleRun/action",
  "Microsoft.ContainerRegistry/registries/runs/read",
  "Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action",
] as const;

const TASK_OPERATIONS: ReadonlySet<ArmOperation> = new Set(["scheduleRun", "getRun", "listLogSasUrl"]);

const DOING: Readonly<Record<ArmOperation, string>> = {
  get: "Reading registry",
  listUsages: "Reading the usages (IP rule limit) of registry",
  listReplications: "Listing the replications of registry",
  update: "Updating the network rules of registry",
  scheduleRun: "Scheduling the canary's ACR Tasks run on registry",
  getRun: "Reading the canary's ACR Tasks run on registry",
  listLogSasUrl: "Getting the log link of the canary's ACR Tasks run on registry",
};

const MAY_HAVE_APPLIED =
  "The update may or may not have been applied; the next run re-reads the registry before writing.";

/**
 * The SDK's errors, in the named errors of src/errors.ts. Raw SDK errors are never attached as
 * `cause`: a RestError carries the request, and with it the bearer token.
 */
export function toRegistryError(error: unknown, context: ErrorContext): AllowlistSyncError {
  if (error instanceof AllowlistSyncError) return error;
  const { ref, operation } = context;
  const what = `${DOING[operation]} ${ref.name}`;
  const base = { registryId: ref.id, registry: ref.name, operation };

  if (context.deadlineSignal?.aborted === true) {
    return new RegistryOperationError(
      `${what} did not finish within ${context.operationTimeoutMs ?? "the"} ms; the operation may still complete.`,
      {
        details: { ...base, reason: "deadline", timeoutMs: context.operationTimeoutMs },
        remedy:
          "Nothing to do now: the next run re-reads the registry. If it keeps happening, raise SYNC_OPERATION_TIMEOUT_MS.",
      },
    );
  }
  if (context.callerSignal?.aborted === true) {
    const message = `${what} was cancelled.${operation === "update" ? ` ${MAY_HAVE_APPLIED}` : ""}`;
    return operation === "update"
      ? new RegistryOperationError(message, { details: { ...base, reason: "cancelled" } })
      : new RegistryRequestError(message, { details: { ...base, reason: "cancelled" } });
  }

  if (error instanceof Error && CREDENTIAL_ERRORS.has(error.name)) {
    return new RegistryAccessDeniedError(`${what} failed: no token for Azure Resource Manager (${error.name}).`, {
      details: { ...base, reason: "credential" },
      remedy:
        "Check that the Function App's managed identity is enabled, and AZURE_CLIENT_ID when it is user-assigned; locally, sign in with az login.",
    });
  }
  const rest = asRestError(error);
  if (rest?.statusCode !== undefined) return fromStatus(rest.statusCode, rest, what, base, operation);
  if (rest !== undefined) {
    return new RegistryRequestError(
      `${what} failed: could not reach ARM at ${context.endpoint} (${rest.code ?? "network error"}: ${rest.message}).${operation === "update" ? ` ${MAY_HAVE_APPLIED}` : ""}`,
      {
        details: { ...base, reason: "network", errorCode: rest.code },
        remedy: "Check outbound HTTPS to the ARM endpoint; the next run retries.",
      },
    );
  }
  if (error instanceof Error && error.name === "AbortError") {
    return new RegistryRequestError(
      `${what} failed: ARM did not answer within ${context.requestTimeoutMs} ms.${operation === "update" ? ` ${MAY_HAVE_APPLIED}` : ""}`,
      {
        details: { ...base, reason: "timeout", timeoutMs: context.requestTimeoutMs },
        remedy: "The next run retries; if ARM is slow for long, check https://status.azure.com.",
      },
    );
  }
  const failed = error instanceof Error ? LRO_FAILED.exec(error.message) : null;
  if (failed !== null || (error instanceof Error && LRO_UNFINISHED.test(error.message))) {
    const armCode = failed?.[1];
    const armMessage = failed?.[2];
    return new RegistryOperationError(
      `${what} failed: ARM reports the operation as ${failed === null ? "not succeeded" : "Failed"}${armCode === undefined ? "" : ` (${armCode}: ${armMessage ?? ""})`}.`,
      {
        details: { ...base, reason: "operation-failed", armCode, armMessage },
        remedy:
          "The next run re-reads the registry and tries again; if it keeps failing, check the registry's activity log in the portal.",
        cause: error,
      },
    );
  }
  // The SDK's deserializers throw TypeError on documents missing parts they need (e.g. `sku`).
  if (error instanceof TypeError) {
    return new RegistryStateInvalidError(`${what} failed: ARM's answer could not be read (${error.message}).`, {
      details: { ...base, reason: "unreadable" },
      remedy: "Check ARM_ENDPOINT: it must be Azure Resource Manager (or a faithful emulator).",
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new RegistryRequestError(`${what} failed: ${message}`, {
    details: { ...base, reason: "unknown" },
    cause: error,
  });
}

// @azure/identity's errors: their messages can be long diagnostics, so only the name is used.
const CREDENTIAL_ERRORS = new Set([
  "CredentialUnavailableError",
  "AuthenticationError",
  "AggregateAuthenticationError",
  "AuthenticationRequiredError",
]);

// "The long-running operation has failed. CODE. message" (@azure/core-lro).
const LRO_FAILED = /^The long-running operation has failed(?:\. ([^.]+)\. ([\s\S]*))?$/;
const LRO_UNFINISHED = /^(Operation was canceled|Polling completed without succeeding or failing)/;

interface RestErrorLike {
  readonly message: string;
  readonly statusCode: number | undefined;
  readonly code: string | undefined;
}

/** Duck-typed: RestError comes from a transitive package this project does not depend on directly. */
function asRestError(error: unknown): RestErrorLike | undefined {
  if (!(error instanceof Error) || error.name !== "RestError") return undefined;
  const { statusCode, code } = error as Error & { statusCode?: unknown; code?: unknown };
  return {
    message: error.message,
    statusCode: typeof statusCode === "number" ? statusCode : undefined,
    code: typeof code === "string" ? code : undefined,
  };
}

function fromStatus(
  status: number,
  rest: RestErrorLike,
  what: string,
  base: ErrorDetails,
  operation: ArmOperation,
): AllowlistSyncError {
  const armCode = rest.code;
  const armMessage = rest.message.slice(0, 500);
  const details = { ...base, statusCode: status, armCode, armMessage };
  const answered = `ARM answered ${status}${armCode === undefined ? "" : ` ${armCode}`}: ${armMessage.replace(/\.\s*$/, "")}.`;
  if (status === 404) {
    return new RegistryNotFoundError(`${what} failed: ${answered}`, {
      details,
      remedy:
        "Check the registry's resource ID (az acr show --ids <id>) and that it is in the subscription the identity can see.",
    });
  }
  if (status === 401) {
    return new RegistryAccessDeniedError(`${what} was refused: ${answered}`, {
      details,
      remedy:
        "ARM did not accept the managed identity's token: check that the identity belongs to the registry's tenant and, for a user-assigned identity, that AZURE_CLIENT_ID is its client ID.",
    });
  }
  if (status === 403) {
    return new RegistryAccessDeniedError(`${what} was refused: ${answered}`, {
      details,
      remedy: TASK_OPERATIONS.has(operation)
        ? `Give the service's managed identity the canary role on this registry only (actions ${CANARY_ACTIONS.join(", ")}; the infra's canaryRegistryIds parameter does it), or stop running the canary on it; role assignments can take a few minutes to apply.`
        : `Give the service's managed identity a custom role at the registry scope with the actions ${LEAST_PRIVILEGE_ACTIONS.join(", ")}; role assignments can take a few minutes to apply.`,
    });
  }
  if (status === 400 && armCode === "NetworkRuleNotSupported") {
    return new NetworkRulesNotSupportedError(`${what} failed: ${answered}`, {
      details,
      remedy: "IP rules need the Premium SKU: upgrade the registry (az acr update --sku Premium) or stop syncing it.",
    });
  }
  // The quota answer's code is not documented; its message is (azure-facts §3).
  if (status === 400 && (/quota/i.test(armCode ?? "") || /exceeds allowed quota/i.test(armMessage))) {
    return new RuleQuotaExceededError(`${what} failed: ${answered}`, {
      details,
      remedy:
        "Plan fewer rules than the limit: remove hand-made rules, select fewer regions, or allow shorter prefixes (SYNC_MIN_PREFIX_LENGTH). The limit is re-read from listUsages at every run.",
    });
  }
  const uncertain = operation === "update" && status >= 500 ? ` ${MAY_HAVE_APPLIED}` : "";
  const remedy =
    status === 429
      ? "ARM throttled this identity beyond the SDK's retries (a 429 without Retry-After is not retried); the next run tries again. Check other automation sharing the identity or subscription."
      : status >= 500
        ? "ARM failed after the SDK's retries; the next run tries again. See https://status.azure.com if it persists."
        : "Check the request the service sends and the registry's state; this answer was not expected.";
  return new RegistryRequestError(`${what} failed: ${answered}${uncertain}`, { details, remedy });
}
