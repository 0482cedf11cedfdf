/**
 * Named error classes with structured fields. Every error the service raises on purpose is an
 * `AllowlistSyncError`: it carries a stable `code` (used as the `errorType` of telemetry), a
 * `category` that the entry points map to exit codes and HTTP statuses, structured `details`
 * (what failed, for which registry), and a `remedy` that tells the operator what to do.
 * Messages never contain tokens, connection strings or stack traces.
 */

export type ErrorCategory =
  /** Bad CLI usage or bad HTTP query: exit 2, HTTP 400. */
  | "usage"
  /** Invalid or missing setting: exit 2, HTTP 500 (the service is misconfigured, not the caller). */
  | "config"
  /** The service-tags file could not be obtained or is not trustworthy. */
  | "source"
  /** Bad prefix input (service-tags, prefixes file, registry rule). */
  | "input"
  /** Azure Resource Manager refused or failed a request. */
  | "registry"
  /** A safety guard stopped the run before any write. */
  | "guard"
  /** The ledger/audit store failed or holds something unreadable. */
  | "ledger"
  /** Another writer holds the registry, or wrote between our read and our write. */
  | "conflict"
  /** The requested target is not configured: HTTP 404. */
  | "not-found"
  /** The invocation's time budget ran out before the host's limit: HTTP 504. */
  | "deadline";

export type DetailValue = string | number | boolean | null | readonly string[] | readonly number[];
export type ErrorDetails = Readonly<Record<string, DetailValue | undefined>>;

export interface AllowlistSyncErrorOptions {
  details?: ErrorDetails;
  remedy?: string;
  cause?: unknown;
}

export abstract class AllowlistSyncError extends Error {
  abstract readonly code: string;
  abstract readonly category: ErrorCategory;
  readonly details: ErrorDetails;
  readonly remedy: string | undefined;

  constructor(message: string, options: AllowlistSyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? {};
    this.remedy = options.remedy;
  }

  /** One line for stderr, logs and telemetry: the message, then what to do. */
  describe(): string {
    return this.remedy === undefined ? this.message : `${this.message} ${this.remedy}`;
  }

  toJSON(): {
    error: string;
    code: string;
    category: ErrorCategory;
    message: string;
    remedy?: string;
    details: ErrorDetails;
  } {
    return {
      error: this.name,
      code: this.code,
      category: this.category,
      message: this.message,
      ...(this.remedy === undefined ? {} : { remedy: this.remedy }),
      details: this.details,
    };
  }
}

// ---- usage and configuration -------------------------------------------------------------------

export class UsageError extends AllowlistSyncError {
  readonly code = "Usage";
  readonly category = "usage";
}

export class ConfigError extends AllowlistSyncError {
  readonly code = "InvalidConfiguration";
  readonly category = "config";
}

export class TargetNotConfiguredError extends AllowlistSyncError {
  readonly code = "TargetNotConfigured";
  readonly category = "not-found";
}

// ---- prefixes ----------------------------------------------------------------------------------

export class InvalidPrefixError extends AllowlistSyncError {
  readonly code = "InvalidPrefix";
  readonly category = "input";
}

/** ACR IP rules are IPv4 only; callers skip IPv6 service-tag prefixes and count them. */
export class IPv6PrefixError extends AllowlistSyncError {
  readonly code = "IPv6Prefix";
  readonly category = "input";
}

/** No cover with at most `maxPrefixes` prefixes exists under the prefix-length floor. */
export class CoverInfeasibleError extends AllowlistSyncError {
  readonly code = "CoverInfeasible";
  readonly category = "guard";
}

/** The best cover within the budget admits more extra addresses than the configured cap. */
export class ExtraAddressCapError extends AllowlistSyncError {
  readonly code = "ExtraAddressCapExceeded";
  readonly category = "guard";
}

// ---- service tags ------------------------------------------------------------------------------

/** Every configured source failed; `details.attempts` says how each one failed. */
export class ServiceTagsSourceError extends AllowlistSyncError {
  readonly code = "ServiceTagsUnavailable";
  readonly category = "source";
}

/** A source answered, but with something that is not a trustworthy service-tags file. */
export class ServiceTagsValidationError extends AllowlistSyncError {
  readonly code = "ServiceTagsInvalid";
  readonly category = "source";
}

/** A selected `AzureContainerRegistry.<Region>` tag is not in the file: never "allow nothing". */
export class TagNotFoundError extends AllowlistSyncError {
  readonly code = "ServiceTagMissing";
  readonly category = "guard";
}

// ---- registry (ARM) ----------------------------------------------------------------------------

export class RegistryNotFoundError extends AllowlistSyncError {
  readonly code = "RegistryNotFound";
  readonly category = "registry";
}

export class RegistryAccessDeniedError extends AllowlistSyncError {
  readonly code = "RegistryAccessDenied";
  readonly category = "registry";
}

/** Network rules need the Premium SKU (ARM code `NetworkRuleNotSupported`). */
export class NetworkRulesNotSupportedError extends AllowlistSyncError {
  readonly code = "NetworkRuleNotSupported";
  readonly category = "registry";
}

/** ARM rejected the rule list for the IP rule quota. */
export class RuleQuotaExceededError extends AllowlistSyncError {
  readonly code = "RuleQuotaExceeded";
  readonly category = "registry";
}

/** Any other ARM failure: throttling after retries, 5xx, connection errors, timeouts. */
export class RegistryRequestError extends AllowlistSyncError {
  readonly code = "RegistryRequestFailed";
  readonly category = "registry";
}

/** The long-running update ended `Failed`, or did not finish before its deadline. */
export class RegistryOperationError extends AllowlistSyncError {
  readonly code = "RegistryOperationFailed";
  readonly category = "registry";
}

/** ARM answered with a registry document we cannot trust (schema validation failed). */
export class RegistryStateInvalidError extends AllowlistSyncError {
  readonly code = "RegistryStateInvalid";
  readonly category = "registry";
}

// ---- canary (ACR Tasks) ------------------------------------------------------------------------

/**
 * The canary run's log could not be read (expired or refused SAS, blob missing, network). The
 * canary then reports "inconclusive", never "refused": without the log nobody can tell.
 */
export class CanaryLogUnreadableError extends AllowlistSyncError {
  readonly code = "CanaryLogUnreadable";
  readonly category = "registry";
}

// ---- guards ------------------------------------------------------------------------------------

export type GuardName =
  | "tag-missing"
  | "source-too-small"
  | "stale-source"
  | "mass-removal"
  | "budget"
  | "sku"
  | "provisioning-state"
  | "public-network-disabled"
  | "default-action-allow"
  | "empty-deny-list"
  | "legacy-vnet-rules";

export class GuardError extends AllowlistSyncError {
  readonly code = "GuardTripped";
  readonly category = "guard";
  readonly guard: GuardName;
  /** The refused plan, when the guard ran on one: the CLI shows what would have been written. */
  readonly plan: object | undefined;

  constructor(guard: GuardName, message: string, options: AllowlistSyncErrorOptions & { plan?: object } = {}) {
    super(message, { ...options, details: { guard, ...options.details } });
    this.guard = guard;
    this.plan = options.plan;
  }
}

// ---- temporary grants ---------------------------------------------------------------------------

/** A grant that does not fit the registry's budget: nothing is written; the message gives the figures. */
export class GrantRefusedError extends AllowlistSyncError {
  readonly code = "GrantNoRoom";
  readonly category = "guard";
}

/** The "what is my IP" endpoint did not answer with one public IPv4 address. */
export class MyIpLookupError extends AllowlistSyncError {
  readonly code = "MyIpLookupFailed";
  readonly category = "source";
}

// ---- ledger and concurrency --------------------------------------------------------------------

export class LedgerError extends AllowlistSyncError {
  readonly code = "LedgerUnavailable";
  readonly category = "ledger";
}

export class LedgerCorruptError extends AllowlistSyncError {
  readonly code = "LedgerCorrupt";
  readonly category = "ledger";
}

/** Another run holds the registry's lease or lock file. */
export class LockHeldError extends AllowlistSyncError {
  readonly code = "LockHeld";
  readonly category = "conflict";
}

/** After the write, the registry did not hold the planned list, even after one re-plan. */
export class ConvergenceError extends AllowlistSyncError {
  readonly code = "NotConverged";
  readonly category = "conflict";
}

// ---- discovery and fan-out ---------------------------------------------------------------------

/** A discovered registry's override tag (`acr-allowlist-sync.*`) has a bad value: that registry is skipped. */
export class InvalidRegistryTagError extends AllowlistSyncError {
  readonly code = "InvalidRegistryTag";
  readonly category = "config";
}

/** The Resource Graph query failed (refused, throttled beyond retries, unreadable answer). */
export class DiscoveryError extends AllowlistSyncError {
  readonly code = "DiscoveryFailed";
  readonly category = "registry";
}

/** A fan-out message failed on every delivery the host allows and was moved to the poison queue. */
export class MessagePoisonedError extends AllowlistSyncError {
  readonly code = "Poisoned";
  readonly category = "registry";
}

/** A fan-out message is not one the scheduler sends, or its service-tags blob is gone or altered. */
export class FanoutMessageError extends AllowlistSyncError {
  readonly code = "InvalidFanoutMessage";
  readonly category = "input";
}

/** The fan-out queue or the service-tags blob could not be written or read. */
export class FanoutStorageError extends AllowlistSyncError {
  readonly code = "FanoutStorageUnavailable";
  readonly category = "ledger";
}

/** What to do when an error carries no remedy of its own: every error an operator sees names a next step. */
const CATEGORY_REMEDIES: Readonly<Record<ErrorCategory, string>> = {
  usage: "Run 'acr-allowlist-sync <command> --help' for the flags it takes.",
  config: "Fix the setting named in the message; the README's configuration table lists every setting.",
  source: "Check the service-tags source (--service-tags / SERVICE_TAGS_URL) and retry; the rules were not changed.",
  input: "Fix the input named in the message and run again.",
  registry: "Check the registry and your access to it (az acr show --ids <registry>), then run again.",
  guard: "Read the plan (acr-allowlist-sync plan), fix what the guard names, or re-run with --force where it allows.",
  ledger:
    "Check the ledger store (--state / AzureWebJobsStorage) and run again; the rules were not changed by this step.",
  conflict: "Another run is working on this registry: wait for it to finish, then run again.",
  "not-found": "Add the registry to TARGET_REGISTRIES (--registry) or ask for a configured one.",
  deadline:
    "The run stopped before the host's time limit; the next run continues. Sync fewer registries per run if it repeats.",
};

/** The error's remedy, or its category's; an untyped error gets the generic one. */
export function remedyOf(error: unknown): string {
  if (error instanceof AllowlistSyncError) return error.remedy ?? CATEGORY_REMEDIES[error.category];
  return "This is unexpected: run again, and report it with the command line if it persists.";
}

/**
 * The invocation's time budget (below the host's functionTimeout, or the 230 s of an HTTP
 * response) ran out: the run stopped on its own instead of being killed, and reported it.
 */
export class DeadlineExceededError extends AllowlistSyncError {
  readonly code = "DeadlineExceeded";
  readonly category = "deadline";
}

/** The ledger blob changed since this run read it (ETag mismatch): another writer won the race. */
export class LedgerConflictError extends AllowlistSyncError {
  readonly code = "LedgerConflict";
  readonly category = "conflict";
}

/** The lease on the registry's lock could not be renewed: another run may hold the registry now. */
export class LockLostError extends AllowlistSyncError {
  readonly code = "LockLost";
  readonly category = "conflict";
}

export function isAllowlistSyncError(error: unknown): error is AllowlistSyncError {
  return error instanceof AllowlistSyncError;
}

/** A safe one-line description of any thrown value (no stack, no secrets we know of). */
/** A guard stopped it and nothing was written: a refusal, not a failure. */
export function isRefusal(error: unknown): boolean {
  return error instanceof AllowlistSyncError && error.category === "guard";
}

export function describeError(error: unknown): string {
  if (error instanceof AllowlistSyncError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}
