import type { ServiceTagsDocument } from "./schema.js";
import type { ServiceTagsSource } from "./source.js";

export interface CachedSourceOptions {
  /** How long a fetched document is reused; 0 turns the cache off. */
  readonly ttlMs: number;
  readonly now?: (() => number) | undefined;
}

/**
 * One fetch per process per TTL: a burst of HTTP dry runs shares one in-flight fetch and then
 * the result, instead of downloading the 4 MB file each. Failures are not kept (the next caller
 * tries again). A caller's abort stops only that caller's wait, never the shared fetch.
 */
export function createCachedSource(inner: ServiceTagsSource, options: CachedSourceOptions): ServiceTagsSource {
  if (options.ttlMs <= 0) return inner;
  const now = options.now ?? Date.now;
  let kept: { readonly document: ServiceTagsDocument; readonly at: number } | undefined;
  let inFlight: Promise<ServiceTagsDocument> | undefined;
  return {
    fetch(fetchOptions = {}) {
      if (kept !== undefined && now() - kept.at < options.ttlMs) return Promise.resolve(kept.document);
      inFlight ??= inner.fetch().then(
        (document) => {
          kept = { document, at: now() };
          inFlight = undefined;
          return document;
        },
        (error: unknown) => {
          inFlight = undefined;
          throw error;
        },
      );
      return untilAborted(inFlight, fetchOptions.signal);
    },
  };
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => {
      signal.removeEventListener("abort", onAbort);
    });
  });
}
