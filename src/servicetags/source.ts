import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { ConfigError, ServiceTagsValidationError } from "../errors.js";
import { DETAILS_PAGE_URLS, findServiceTagsDownloadLink } from "./details-page.js";
import { classifyExplicitSource } from "./explicit-source.js";
import { DEFAULT_USER_AGENT, httpGet, type HttpGetResult } from "./http.js";
import { parseServiceTags } from "./parse.js";
import {
  CLOUDS,
  type Cloud,
  type ServiceTagsDocument,
  type ServiceTagsFile,
  type ServiceTagsOrigin,
} from "./schema.js";
import {
  ServiceTagsFetchError,
  ServiceTagsUnavailableError,
  type ServiceTagsSourceKind,
  type SourceAttemptFailure,
  type SourceFailureReason,
} from "./source-errors.js";

/**
 * Stable alias of the newest file. Not documented by Microsoft, so it is only the last resort and
 * what it returns is validated like everything else. No alias is known for the sovereign clouds.
 */
export const LATEST_ALIAS_URLS: Readonly<Partial<Record<Cloud, string>>> = {
  Public:
    "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/ServiceTags_Public_Latest.json",
};

/** Hosts a details-page link may point to, besides the host of the details page itself. */
const TRUSTED_DOWNLOAD_HOSTS = ["download.microsoft.com"];

export const SOURCE_DEFAULTS = {
  timeoutMs: 30_000,
  // The full Public file is 4+ MB and growing; 20 MiB leaves room without accepting anything.
  maxBytes: 20 * 1024 * 1024,
  retries: 2,
  retryDelayMs: 1_000,
  /** A Retry-After longer than this is not waited for (the run would rather fall back). */
  maxRetryAfterMs: 60_000,
  minAcrTags: 1,
} as const;

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface ServiceTagsSourceOptions {
  readonly cloud: Cloud;
  /** An https URL, a `file:` URL or a local path: when set, the only source. */
  readonly serviceTagsUrl?: string | undefined;
  /** Download Center details page; undefined = the cloud's default, null = skip this source. */
  readonly detailsPageUrl?: string | null | undefined;
  /** The `_Latest` alias; undefined = the cloud's default (Public only), null = skip this source. */
  readonly latestAliasUrl?: string | null | undefined;
  /** Per request, covering the whole response including a slow body. Default 30 000. */
  readonly timeoutMs?: number | undefined;
  /** Default 20 MiB. */
  readonly maxBytes?: number | undefined;
  /** Extra tries per request for transient failures (network, timeout, 5xx, 429). Default 2. */
  readonly retries?: number | undefined;
  /** First backoff delay; doubles with each retry. Default 1 000. */
  readonly retryDelayMs?: number | undefined;
  /** Default: a browser-like User-Agent (the download site's bot protection answers 403 without one). */
  readonly userAgent?: string | undefined;
  /** A file with fewer `AzureContainerRegistry*` tags is rejected. Default 1. */
  readonly minAcrTags?: number | undefined;
  /** Injectable for fast tests of the backoff. */
  readonly sleep?: Sleep | undefined;
  /** Injectable clock for `origin.retrievedAt`. */
  readonly now?: (() => Date) | undefined;
}

export interface ServiceTagsSource {
  /** Tries the sources in order; returns the first valid file or throws `ServiceTagsUnavailableError`. */
  fetch(options?: { readonly signal?: AbortSignal | undefined }): Promise<ServiceTagsDocument>;
}

const optionsSchema = z.object({
  cloud: z.enum(CLOUDS),
  serviceTagsUrl: z.string().trim().min(1).optional(),
  detailsPageUrl: z.string().trim().min(1).nullable().optional(),
  latestAliasUrl: z.string().trim().min(1).nullable().optional(),
  timeoutMs: z.number().int().positive().optional(),
  maxBytes: z.number().int().positive().optional(),
  retries: z.number().int().min(0).max(10).optional(),
  retryDelayMs: z.number().int().min(0).optional(),
  userAgent: z.string().min(1).optional(),
  minAcrTags: z.number().int().min(0).optional(),
});

interface Settings {
  readonly cloud: Cloud;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly userAgent: string;
  readonly minAcrTags: number;
  readonly sleep: Sleep;
  readonly now: () => Date;
  /** The last answer per file URL with its validators, for conditional requests (one process, one entry per URL). */
  readonly validated: Map<string, ValidatedAnswer>;
}

interface ValidatedAnswer {
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  readonly document: ServiceTagsDocument;
}

interface Step {
  readonly kind: ServiceTagsSourceKind;
  readonly location: string;
  run(signal: AbortSignal | undefined): Promise<ServiceTagsDocument>;
}

/** A failure carrying where it happened and how many requests it took. */
class StepFailure extends Error {
  constructor(
    readonly error: ServiceTagsFetchError,
    readonly location: string,
    readonly tries: number,
  ) {
    super(error.message);
  }
}

/**
 * The chain of service-tags sources: the explicit URL or file alone when one is given; otherwise the
 * Download Center details page of the cloud, then the `_Latest` alias. Each answer must pass `parseServiceTags` for the configured
 * cloud; the first that does wins. Throws `ConfigError` for invalid options.
 */
export function createServiceTagsSource(options: ServiceTagsSourceOptions): ServiceTagsSource {
  const checked = optionsSchema.safeParse({ ...options, sleep: undefined, now: undefined });
  if (!checked.success) {
    const issues = checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid service-tags source options: ${issues.join("; ")}.`, {
      details: { issues },
      remedy: "Fix the service-tags settings (cloud, URLs, timeouts, sizes).",
    });
  }
  const settings: Settings = {
    cloud: options.cloud,
    timeoutMs: options.timeoutMs ?? SOURCE_DEFAULTS.timeoutMs,
    maxBytes: options.maxBytes ?? SOURCE_DEFAULTS.maxBytes,
    retries: options.retries ?? SOURCE_DEFAULTS.retries,
    retryDelayMs: options.retryDelayMs ?? SOURCE_DEFAULTS.retryDelayMs,
    userAgent: options.userAgent ?? DEFAULT_USER_AGENT,
    minAcrTags: options.minAcrTags ?? SOURCE_DEFAULTS.minAcrTags,
    sleep: options.sleep ?? ((ms, signal) => delay(ms, undefined, signal === undefined ? undefined : { signal })),
    now: options.now ?? (() => new Date()),
    validated: new Map(),
  };

  const steps: Step[] = [];
  const explicit = checked.data.serviceTagsUrl;
  // Explicit means explicit: a source the operator named is the only one, so a wrong one fails
  // loudly instead of being replaced by the Download Center file (issue 9, contract point 3).
  if (explicit !== undefined) steps.push(explicitStep(explicit, settings));
  const page =
    checked.data.detailsPageUrl === undefined ? DETAILS_PAGE_URLS[settings.cloud] : checked.data.detailsPageUrl;
  if (explicit === undefined && page !== undefined && page !== null) steps.push(detailsPageStep(page, settings));
  const alias =
    checked.data.latestAliasUrl === undefined ? LATEST_ALIAS_URLS[settings.cloud] : checked.data.latestAliasUrl;
  if (explicit === undefined && alias !== undefined && alias !== null)
    steps.push(urlStep("latest-alias", alias, settings));

  return {
    async fetch(fetchOptions = {}) {
      const failures: SourceAttemptFailure[] = [];
      for (const step of steps) {
        fetchOptions.signal?.throwIfAborted();
        try {
          return await step.run(fetchOptions.signal);
        } catch (error) {
          if (!(error instanceof StepFailure)) throw error;
          failures.push({
            source: step.kind,
            location: error.location,
            reason: error.error.reason,
            message: error.error.message,
            status: error.error.status,
            tries: error.tries,
          });
        }
      }
      throw new ServiceTagsUnavailableError(settings.cloud, failures);
    },
  };
}

function explicitStep(value: string, settings: Settings): Step {
  const source = classifyExplicitSource(value);
  if ("problem" in source) {
    throw new ConfigError(`Setting SERVICE_TAGS_URL (--service-tags) is invalid: ${source.problem}.`, {
      details: { setting: "SERVICE_TAGS_URL", value },
      remedy:
        "Give an https URL or the path of a readable service-tags JSON file, or unset it to use the Download Center.",
    });
  }
  if (source.kind === "https") return urlStep("explicit", source.url, settings);
  const path = source.path;
  return {
    kind: "file",
    location: path,
    run: async () => {
      try {
        return await readLocalFile(path, settings);
      } catch (error) {
        if (error instanceof ServiceTagsFetchError) throw new StepFailure(error, path, 1);
        throw error;
      }
    },
  };
}

function urlStep(kind: ServiceTagsSourceKind, url: string, settings: Settings): Step {
  return {
    kind,
    location: url,
    run: async (signal) => {
      const { value } = await withRetries(url, settings, signal, () => downloadFile(kind, url, settings, signal));
      return value;
    },
  };
}

function detailsPageStep(pageUrl: string, settings: Settings): Step {
  return {
    kind: "details-page",
    location: pageUrl,
    run: async (signal) => {
      const { value: page } = await withRetries(pageUrl, settings, signal, () =>
        download(pageUrl, settings, "text/html,application/xhtml+xml", signal),
      );
      const link = findServiceTagsDownloadLink(page.body.toString("utf8"), {
        cloud: settings.cloud,
        pageUrl: page.url,
      });
      if (link === undefined) {
        throw new StepFailure(
          new ServiceTagsFetchError(
            "no-link",
            `The details page has no link to a ServiceTags_${settings.cloud}_YYYYMMDD.json file; its layout may have changed.`,
            {
              status: page.status,
            },
          ),
          pageUrl,
          1,
        );
      }
      const trusted = [...TRUSTED_DOWNLOAD_HOSTS, new URL(page.url).hostname];
      const linkUrl = new URL(link.url);
      if (linkUrl.protocol !== "https:" || !trusted.includes(linkUrl.hostname)) {
        throw new StepFailure(
          new ServiceTagsFetchError(
            "not-https",
            `The details page links to '${link.url}', which is not an https URL on ${trusted.join(" or ")}.`,
          ),
          link.url,
          1,
        );
      }
      const { value } = await withRetries(link.url, settings, signal, () =>
        downloadFile("details-page", link.url, settings, signal),
      );
      return value;
    },
  };
}

/** Runs `operation`, retrying transient failures with exponential backoff (or the server's Retry-After). */
async function withRetries<T>(
  location: string,
  settings: Settings,
  signal: AbortSignal | undefined,
  operation: () => Promise<T>,
): Promise<{ value: T; tries: number }> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return { value: await operation(), tries: attempt + 1 };
    } catch (error) {
      if (!(error instanceof ServiceTagsFetchError)) throw error;
      if (!error.transient || attempt >= settings.retries) throw new StepFailure(error, location, attempt + 1);
      const backoff = settings.retryDelayMs * 2 ** attempt;
      const wait =
        error.retryAfterSeconds === undefined
          ? backoff
          : Math.min(error.retryAfterSeconds * 1000, SOURCE_DEFAULTS.maxRetryAfterMs);
      try {
        await settings.sleep(wait, signal);
      } catch (sleepError) {
        // Report the caller's abort reason rather than the timer's AbortError.
        signal?.throwIfAborted();
        throw sleepError;
      }
    }
  }
}

/**
 * Downloads and validates a service-tags file. When an earlier answer for the same URL carried an
 * ETag or Last-Modified, asks conditionally: a 304 reuses the validated document, so an unchanged
 * 4 MB file costs one small round trip.
 */
async function downloadFile(
  kind: ServiceTagsSourceKind,
  url: string,
  settings: Settings,
  signal: AbortSignal | undefined,
): Promise<ServiceTagsDocument> {
  const previous = settings.validated.get(url);
  const result = await download(url, settings, "application/json", signal, previous);
  if (result.status === 304 && previous !== undefined) {
    const refreshed = { ...previous.document.origin, retrievedAt: settings.now().toISOString() };
    return { ...previous.document, origin: refreshed };
  }
  const document = toDocument(kind, result, settings);
  if (result.etag !== undefined || result.lastModified !== undefined) {
    settings.validated.set(url, { etag: result.etag, lastModified: result.lastModified, document });
  }
  return document;
}

async function download(
  url: string,
  settings: Settings,
  accept: string,
  signal: AbortSignal | undefined,
  validators?: Pick<ValidatedAnswer, "etag" | "lastModified">,
): Promise<HttpGetResult> {
  const result = await httpGet(url, {
    timeoutMs: settings.timeoutMs,
    maxBytes: settings.maxBytes,
    userAgent: settings.userAgent,
    accept,
    signal,
    ifNoneMatch: validators?.etag,
    ifModifiedSince: validators?.etag === undefined ? validators?.lastModified : undefined,
  });
  if (result.status >= 200 && result.status < 300) return result;
  if (result.status === 304 && validators !== undefined) return result;
  const status = result.status;
  if (status === 403 && looksLikeHtml(result)) {
    throw new ServiceTagsFetchError(
      "bot-page",
      `${url} answered 403 with an HTML page (bot protection or access denied).`,
      {
        status,
        remedy: "Keep a browser-like User-Agent, or set SERVICE_TAGS_URL to a copy of the file you can reach.",
      },
    );
  }
  const transient = status === 429 || status === 408 || status >= 500;
  throw new ServiceTagsFetchError("http-status", `${url} answered HTTP ${status}.`, {
    status,
    transient,
    ...(result.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: result.retryAfterSeconds }),
  });
}

function looksLikeHtml(result: HttpGetResult): boolean {
  if (/html/i.test(result.contentType)) return true;
  return /^\s*</.test(
    result.body
      .subarray(0, 512)
      .toString("utf8")
      .replace(/^\uFEFF/, ""),
  );
}

function toDocument(kind: ServiceTagsSourceKind, result: HttpGetResult, settings: Settings): ServiceTagsDocument {
  const file = validate(result.body.toString("utf8"), result.url, settings);
  return {
    file,
    origin: origin(
      kind,
      result.url,
      fileNameOf(result.url),
      file,
      result.body.byteLength,
      settings,
      result.lastModified,
    ),
  };
}

async function readLocalFile(path: string, settings: Settings): Promise<ServiceTagsDocument> {
  let body: Buffer;
  try {
    const info = await stat(path);
    if (info.size > settings.maxBytes) {
      throw new ServiceTagsFetchError(
        "too-large",
        `${path} has ${info.size} bytes, more than the ${settings.maxBytes} allowed.`,
        { details: { maxBytes: settings.maxBytes } },
      );
    }
    body = await readFile(path);
  } catch (error) {
    if (error instanceof ServiceTagsFetchError) throw error;
    const code = (error as { code?: unknown }).code;
    throw new ServiceTagsFetchError(
      "file-unreadable",
      `${path} cannot be read (${typeof code === "string" ? code : String(error)}).`,
      {
        cause: error,
        remedy: "Check the path in SERVICE_TAGS_URL and the file's permissions.",
      },
    );
  }
  const file = validate(body.toString("utf8"), path, settings);
  const modified = (await stat(path)).mtime.toUTCString();
  return { file, origin: origin("file", path, basename(path), file, body.byteLength, settings, modified) };
}

const PARSE_REASONS: Readonly<Record<string, SourceFailureReason>> = {
  html: "html",
  json: "truncated-json",
  schema: "schema",
  cloud: "wrong-cloud",
};

function validate(text: string, location: string, settings: Settings): ServiceTagsFile {
  let file: ServiceTagsFile;
  try {
    file = parseServiceTags(text, { location, expectedCloud: settings.cloud });
  } catch (error) {
    if (!(error instanceof ServiceTagsValidationError)) throw error;
    const reason = PARSE_REASONS[String(error.details.reason)] ?? "schema";
    throw new ServiceTagsFetchError(reason, error.message, {
      cause: error,
      ...(error.remedy === undefined ? {} : { remedy: error.remedy }),
    });
  }
  const acrTags = file.values.filter(
    (tag) => tag.name === "AzureContainerRegistry" || tag.name.startsWith("AzureContainerRegistry."),
  ).length;
  if (acrTags < settings.minAcrTags) {
    throw new ServiceTagsFetchError(
      "too-few-acr-tags",
      `${location} holds ${acrTags} AzureContainerRegistry tag(s), fewer than the ${settings.minAcrTags} required; it is not a usable service-tags file.`,
      { details: { acrTags, minAcrTags: settings.minAcrTags } },
    );
  }
  return file;
}

function origin(
  kind: ServiceTagsSourceKind,
  location: string,
  fileName: string,
  file: ServiceTagsFile,
  bytes: number,
  settings: Settings,
  lastModified?: string,
): ServiceTagsOrigin {
  const retrievedAt = settings.now();
  const published = publicationOf(fileName, lastModified, retrievedAt);
  return {
    kind,
    location,
    fileName,
    changeNumber: file.changeNumber,
    cloud: file.cloud,
    retrievedAt: retrievedAt.toISOString(),
    bytes,
    publishedAt: published.at.toISOString(),
    ageBasis: published.basis,
  };
}

/** The file's date from its name (Microsoft names it after a Monday), else Last-Modified, else now. */
export function publicationOf(
  fileName: string,
  lastModified: string | undefined,
  retrievedAt: Date,
): { readonly at: Date; readonly basis: "file-date" | "last-modified" | "retrieved" } {
  const date = /_(\d{4})(\d{2})(\d{2})(?:\.[a-z]+)*\.json$/i.exec(fileName);
  if (date !== null) {
    const at = new Date(Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3])));
    if (!Number.isNaN(at.getTime()) && at.getTime() <= retrievedAt.getTime()) return { at, basis: "file-date" };
  }
  const modified = lastModified === undefined ? Number.NaN : Date.parse(lastModified);
  if (Number.isFinite(modified) && modified <= retrievedAt.getTime())
    return { at: new Date(modified), basis: "last-modified" };
  return { at: retrievedAt, basis: "retrieved" };
}

function fileNameOf(url: string): string {
  const path = new URL(url).pathname;
  const last = path.slice(path.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}
