import { AllowlistSyncError, ServiceTagsSourceError, type AllowlistSyncErrorOptions } from "../errors.js";
import type { ServiceTagsOrigin } from "./schema.js";

/** Which link of the source chain was tried. */
export type ServiceTagsSourceKind = ServiceTagsOrigin["kind"];

/** Why one source failed. Each value names one thing an operator can act on. */
export type SourceFailureReason =
  /** The whole response (headers and body) did not arrive within `timeoutMs`. */
  | "timeout"
  /** The body exceeded `maxBytes`. */
  | "too-large"
  /** A non-2xx answer other than a bot page. */
  | "http-status"
  /** An HTML answer with status 403 (bot protection, usually for a missing browser-like User-Agent). */
  | "bot-page"
  /** HTML with status 2xx where JSON was expected. */
  | "html"
  /** Not valid JSON: usually a download cut short. */
  | "truncated-json"
  /** Valid JSON without the service-tags schema. */
  | "schema"
  /** A service-tags file of another cloud. */
  | "wrong-cloud"
  /** A valid file with fewer `AzureContainerRegistry*` tags than `minAcrTags`. */
  | "too-few-acr-tags"
  /** Connection refused, DNS failure, no route. */
  | "unreachable"
  /** Any other transport failure (reset, TLS, protocol). */
  | "network"
  /** The details page answered but had no recognisable link to the file. */
  | "no-link"
  /** A URL (or redirect target) that is not https, or a link to an untrusted host. */
  | "not-https"
  /** A local file that cannot be read. */
  | "file-unreadable"
  /** No last-good copy was kept yet. */
  | "no-copy"
  /** The last-good copy is older than SERVICE_TAGS_MAX_AGE_DAYS. */
  | "copy-too-old"
  /** The store of the last-good copy failed or holds something invalid. */
  | "store-failed";

/** The failure of one try of one source. `transient` ones are retried with backoff. */
export class ServiceTagsFetchError extends AllowlistSyncError {
  readonly code = "ServiceTagsFetchFailed";
  readonly category = "source";
  readonly reason: SourceFailureReason;
  readonly transient: boolean;
  readonly status: number | undefined;
  /** Seconds from a `Retry-After` header, when the server sent one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    reason: SourceFailureReason,
    message: string,
    options: AllowlistSyncErrorOptions & { transient?: boolean; status?: number; retryAfterSeconds?: number } = {},
  ) {
    super(message, { ...options, details: { reason, status: options.status, ...options.details } });
    this.reason = reason;
    this.transient = options.transient ?? false;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** How one source of the chain failed, after its retries. */
export interface SourceAttemptFailure {
  readonly source: ServiceTagsSourceKind;
  /** The URL or path that failed (the file URL when the details page itself was fine). */
  readonly location: string;
  readonly reason: SourceFailureReason;
  readonly message: string;
  readonly status: number | undefined;
  /** How many requests were made to this source (1 + retries used). */
  readonly tries: number;
}

/**
 * Every source of the chain failed. A `ServiceTagsSourceError` (code `ServiceTagsUnavailable`) whose
 * `attempts` keeps the typed list; `details` carries the same as string lists for telemetry.
 */
export class ServiceTagsUnavailableError extends ServiceTagsSourceError {
  readonly attempts: readonly SourceAttemptFailure[];

  constructor(cloud: string, attempts: readonly SourceAttemptFailure[]) {
    const summary = attempts.map((a) => `${a.source} ${a.location} → ${a.reason}: ${a.message}`);
    const message =
      attempts.length === 0
        ? `No service-tags source is configured for cloud '${cloud}'.`
        : `Could not obtain a valid service-tags file for cloud '${cloud}'; ${attempts.length} source(s) failed: ${summary.join(" | ")}`;
    super(message, {
      details: {
        cloud,
        attempts: summary,
        sources: attempts.map((a) => a.source),
        reasons: attempts.map((a) => a.reason),
        locations: attempts.map((a) => a.location),
      },
      remedy:
        attempts.length === 0
          ? "Set SERVICE_TAGS_URL to the service-tags JSON file (an https URL or a local path)."
          : attempts.every((a) => a.source === "explicit" || a.source === "file")
            ? "SERVICE_TAGS_URL (--service-tags) is the only source when it is set: fix what it names, or unset it to use the Download Center."
            : "The download site may have changed or be blocking automated clients: set SERVICE_TAGS_URL to a reachable copy of the JSON file (https URL or local path) and check the failures listed.",
    });
    this.attempts = attempts;
  }
}
