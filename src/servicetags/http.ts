import { ServiceTagsFetchError } from "./source-errors.js";

/**
 * A browser-like User-Agent: the Download Center's bot protection answers 403 with an HTML page
 * to clients that do not send one (observed on the Download Center since 2025).
 */
export const DEFAULT_USER_AGENT =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

const MAX_REDIRECTS = 5;

export interface HttpGetOptions {
  /** Covers the whole exchange: redirects, headers and the complete body. */
  readonly timeoutMs: number;
  /** The body is streamed and the request aborted as soon as it passes this size. */
  readonly maxBytes: number;
  readonly userAgent: string;
  readonly accept: string;
  readonly signal?: AbortSignal | undefined;
  /** Validators from an earlier answer: the server may answer 304 Not Modified without a body. */
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
}

export interface HttpGetResult {
  readonly status: number;
  /** The URL that answered, after redirects. */
  readonly url: string;
  readonly contentType: string;
  readonly body: Buffer;
  readonly retryAfterSeconds: number | undefined;
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
}

/**
 * GETs an https URL with Node's global fetch (which trusts NODE_EXTRA_CA_CERTS, as the tests need).
 * Returns any status; throws `ServiceTagsFetchError` for timeouts, oversized bodies, non-https
 * URLs or redirects, and transport failures. An abort of `options.signal` is rethrown as is.
 */
export async function httpGet(url: string, options: HttpGetOptions): Promise<HttpGetResult> {
  const controller = new AbortController();
  // Set from the timer callback, which control-flow narrowing cannot see.
  let timedOut = false as boolean;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onAbort = (): void => {
    controller.abort();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    options.signal?.throwIfAborted();
    let current = url;
    for (let hop = 0; ; hop += 1) {
      requireHttps(current, hop === 0 ? "URL" : "redirect target");
      const response = await fetch(current, {
        redirect: "manual",
        signal: controller.signal,
        headers: {
          "user-agent": options.userAgent,
          accept: options.accept,
          "accept-language": "en-US,en;q=0.9",
          // Validators only for the URL they came from: a redirect target is another resource.
          ...(hop === 0 && options.ifNoneMatch !== undefined ? { "if-none-match": options.ifNoneMatch } : {}),
          ...(hop === 0 && options.ifModifiedSince !== undefined
            ? { "if-modified-since": options.ifModifiedSince }
            : {}),
        },
      });
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel().catch(() => undefined);
        if (hop >= MAX_REDIRECTS) {
          throw new ServiceTagsFetchError("http-status", `${url} redirected more than ${MAX_REDIRECTS} times.`, {
            status: response.status,
          });
        }
        current = new URL(location, current).toString();
        continue;
      }
      const body = await readLimited(response, current, options.maxBytes, controller);
      return {
        status: response.status,
        url: current,
        contentType: response.headers.get("content-type") ?? "",
        body,
        retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after")),
        etag: response.headers.get("etag") ?? undefined,
        lastModified: response.headers.get("last-modified") ?? undefined,
      };
    }
  } catch (error) {
    if (error instanceof ServiceTagsFetchError) throw error;
    if (timedOut) {
      throw new ServiceTagsFetchError("timeout", `${url} did not answer completely within ${options.timeoutMs} ms.`, {
        transient: true,
        cause: error,
      });
    }
    if (options.signal?.aborted === true) throw options.signal.reason;
    throw transportError(url, error);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

export function requireHttps(url: string, what: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new ServiceTagsFetchError("not-https", `${what} '${url}' is not a valid URL.`);
  }
  if (protocol !== "https:") {
    throw new ServiceTagsFetchError(
      "not-https",
      `${what} '${url}' is not https; the service-tags file is only fetched over https.`,
    );
  }
}

async function readLimited(
  response: Response,
  url: string,
  maxBytes: number,
  controller: AbortController,
): Promise<Buffer> {
  const tooLarge = (): ServiceTagsFetchError =>
    new ServiceTagsFetchError("too-large", `${url} sent more than ${maxBytes} bytes; the download was stopped.`, {
      status: response.status,
      details: { maxBytes },
    });
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  // A compressed body's Content-Length is not the size we will hold, so only trust it uncompressed.
  if (Number.isFinite(declared) && declared > maxBytes && response.headers.get("content-encoding") === null) {
    controller.abort();
    throw tooLarge();
  }
  if (response.body === null) return Buffer.alloc(0);
  // lib.dom types fetch bodies as ReadableStream<any>; undici yields bytes.
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      controller.abort();
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

/** fetch reports transport failures as `TypeError("fetch failed")` with the system error as `cause`. */
function transportError(url: string, error: unknown): ServiceTagsFetchError {
  const code = errorCode(error);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new ServiceTagsFetchError("unreachable", `${new URL(url).host} is unreachable (${code}).`, {
      transient: true,
      cause: error,
      details: { errorCode: code },
    });
  }
  const text = code ?? describeCause(error);
  return new ServiceTagsFetchError("network", `The connection to ${new URL(url).host} failed (${text}).`, {
    transient: true,
    cause: error,
    ...(code === undefined ? {} : { details: { errorCode: code } }),
  });
}

function errorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    if (typeof current === "object") {
      const code = (current as { code?: unknown }).code;
      if (typeof code === "string" && /^[A-Z][A-Z0-9_]+$/.test(code)) return code;
      const errors = (current as { errors?: unknown }).errors;
      if (Array.isArray(errors) && errors.length > 0) {
        const inner = errorCode(errors[0]);
        if (inner !== undefined) return inner;
      }
      current = (current as { cause?: unknown }).cause;
    } else {
      break;
    }
  }
  return undefined;
}

function describeCause(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
