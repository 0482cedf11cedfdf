import type { DiscoveryApiSource } from "./discovery-api.js";
import { crossCheck } from "./cross-check.js";
import type { LastGoodStore } from "./last-good.js";
import type { Cloud, ServiceTagsDocument, ServiceTagsOrigin } from "./schema.js";
import { ServiceTagsFetchError, ServiceTagsUnavailableError, type SourceAttemptFailure } from "./source-errors.js";
import type { ServiceTagsSource } from "./source.js";

const DAY_MS = 86_400_000;

export interface SourceChainOptions {
  readonly cloud: Cloud;
  /** The file sources: the explicit one alone, or the details page then the `_Latest` alias. */
  readonly files: ServiceTagsSource;
  /** True when SERVICE_TAGS_URL is set: then the file source is the only source. */
  readonly explicit: boolean;
  /** The Discovery API: cross-check of the file, and the next source when the file sources fail. */
  readonly api?: DiscoveryApiSource | undefined;
  /** Where the last-good copy is kept; without it no copy is kept or used. */
  readonly lastGood?: LastGoodStore | undefined;
  /** A last-good copy older than this (since its retrieval) is not used. */
  readonly maxAgeDays: number;
  readonly now?: (() => Date) | undefined;
}

/**
 * The whole chain: explicit source alone; otherwise Download Center page → `_Latest` alias →
 * Discovery API → last-good copy. Whatever serves, the origin says which source and how old its
 * data is (`publishedAt`, `ageBasis`, `dataAgeDays`). A file is cross-checked against the API when
 * the API answers; every validated file becomes the new last-good copy.
 */
export function createSourceChain(options: SourceChainOptions): ServiceTagsSource {
  const now = options.now ?? (() => new Date());
  const memorySeen = new Map<number, Date>();

  const firstSeen = async (changeNumber: number, at: Date): Promise<Date> => {
    if (options.lastGood !== undefined) return options.lastGood.firstSeen(changeNumber, at).catch(() => at);
    const known = memorySeen.get(changeNumber) ?? at;
    memorySeen.set(changeNumber, known);
    return known;
  };

  return {
    async fetch(fetchOptions = {}) {
      const signal = fetchOptions.signal;
      if (options.explicit) return aged(await options.files.fetch({ signal }), now());

      const failures: SourceAttemptFailure[] = [];
      let file: ServiceTagsDocument | undefined;
      try {
        file = await options.files.fetch({ signal });
      } catch (error) {
        if (!(error instanceof ServiceTagsUnavailableError)) throw error;
        failures.push(...error.attempts);
      }

      let api: ServiceTagsDocument | undefined;
      let apiFailure: SourceAttemptFailure | undefined;
      if (options.api !== undefined) {
        try {
          api = await options.api.fetch(signal);
        } catch (error) {
          signal?.throwIfAborted();
          if (!(error instanceof ServiceTagsFetchError)) throw error;
          apiFailure = {
            source: "discovery-api",
            location: options.api.describe(),
            reason: error.reason,
            message: error.message,
            status: error.status,
            tries: 1,
          };
        }
      }

      if (file !== undefined) {
        await options.lastGood?.save(file).catch(() => undefined);
        const checked =
          api !== undefined
            ? crossCheck(file, api)
            : {
                ...file,
                newestChangeNumberSeen: file.file.changeNumber,
                ...(apiFailure === undefined
                  ? {}
                  : {
                      crossCheck: {
                        status: "unavailable" as const,
                        detail: `${apiFailure.reason}: ${apiFailure.message}`,
                      },
                    }),
              };
        return aged(checked, now());
      }
      if (api !== undefined) {
        const at = now();
        const seen = await firstSeen(api.file.changeNumber, new Date(api.origin.retrievedAt));
        const origin: ServiceTagsOrigin = { ...api.origin, publishedAt: seen.toISOString(), ageBasis: "first-seen" };
        return aged({ ...api, origin, newestChangeNumberSeen: api.file.changeNumber }, at);
      }
      if (apiFailure !== undefined) failures.push(apiFailure);

      if (options.lastGood !== undefined) {
        const store = options.lastGood;
        try {
          const copy = await store.load();
          if (copy === undefined) {
            failures.push(lastGoodFailure(store, "no-copy", "No last-good copy has been kept yet."));
          } else {
            const at = now();
            const ageDays = (at.getTime() - copy.retrievedAt.getTime()) / DAY_MS;
            if (ageDays < options.maxAgeDays) {
              const original = copy.document.origin;
              const origin: ServiceTagsOrigin = { ...original, kind: "last-good", copyOf: original.kind };
              const message = `Every live source failed; using the last-good copy ${original.fileName} retrieved ${original.retrievedAt} (${round(ageDays)} day(s) ago, limit ${options.maxAgeDays}).`;
              return aged(
                {
                  ...copy.document,
                  origin,
                  warnings: [{ code: "stale-copy", message }],
                  newestChangeNumberSeen: original.changeNumber,
                },
                at,
              );
            }
            failures.push(
              lastGoodFailure(
                store,
                "copy-too-old",
                `The last-good copy was retrieved ${copy.document.origin.retrievedAt}, ${round(ageDays)} day(s) ago: older than SERVICE_TAGS_MAX_AGE_DAYS (${options.maxAgeDays}).`,
              ),
            );
          }
        } catch (error) {
          failures.push(lastGoodFailure(store, "store-failed", error instanceof Error ? error.message : String(error)));
        }
      }
      throw new ServiceTagsUnavailableError(options.cloud, failures);
    },
  };
}

function lastGoodFailure(
  store: LastGoodStore,
  reason: SourceAttemptFailure["reason"],
  message: string,
): SourceAttemptFailure {
  return { source: "last-good", location: store.where(), reason, message, status: undefined, tries: 1 };
}

/** Stamps the data's age at the moment the chain hands it out. */
function aged(document: ServiceTagsDocument, at: Date): ServiceTagsDocument {
  const published = Date.parse(document.origin.publishedAt ?? document.origin.retrievedAt);
  const dataAgeDays = Number.isFinite(published) ? Math.max(0, round((at.getTime() - published) / DAY_MS)) : undefined;
  return { ...document, origin: { ...document.origin, dataAgeDays } };
}

function round(days: number): number {
  return Math.round(days * 10) / 10;
}
