import { z } from "zod";
import {
  CLOUDS,
  serviceTagsFileSchema,
  type Cloud,
  type ServiceTagsDocument,
  type ServiceTagsOrigin,
} from "./schema.js";
import type { SourceStateStore } from "./state-store.js";

/**
 * The last-good copy: the most recent file that validated, with when it was retrieved, kept so a
 * run can still repair drift when every live source fails (used only while it is younger than
 * SERVICE_TAGS_MAX_AGE_DAYS). Also the first time the Discovery API's changeNumber was seen, the
 * only age the API's answer lets us tell. Both are read back through zod: the store is outside.
 */

const originSchema = z.object({
  kind: z.enum(["explicit", "file", "details-page", "latest-alias", "discovery-api", "last-good"]),
  location: z.string().max(2048),
  fileName: z.string().max(500),
  changeNumber: z.number().int().nonnegative(),
  cloud: z.enum(CLOUDS),
  retrievedAt: z.iso.datetime(),
  bytes: z.number().int().nonnegative(),
  publishedAt: z.iso.datetime().optional(),
  ageBasis: z.enum(["file-date", "last-modified", "first-seen", "retrieved"]).optional(),
});

const lastGoodSchema = z.object({
  schemaVersion: z.literal(1),
  origin: originSchema,
  file: serviceTagsFileSchema,
});

const firstSeenSchema = z.object({
  schemaVersion: z.literal(1),
  changeNumber: z.number().int().nonnegative(),
  firstSeenAt: z.iso.datetime(),
});

export interface LastGoodCopy {
  readonly document: ServiceTagsDocument;
  /** When the copy was retrieved from its live source: its age is counted from here. */
  readonly retrievedAt: Date;
}

export interface LastGoodStore {
  /** Undefined when none was kept; throws when the stored record is unreadable or invalid. */
  load(): Promise<LastGoodCopy | undefined>;
  save(document: ServiceTagsDocument): Promise<void>;
  /** When `changeNumber` of the Discovery API was first seen (recorded now when it is new). */
  firstSeen(changeNumber: number, now: Date): Promise<Date>;
  where(): string;
}

export function createLastGoodStore(store: SourceStateStore, cloud: Cloud): LastGoodStore {
  const copyName = `last-good-${cloud.toLowerCase()}.json`;
  const seenName = `api-first-seen-${cloud.toLowerCase()}.json`;
  let saved: string | undefined;
  let seen: { changeNumber: number; at: Date } | undefined;
  return {
    where: () => store.where(copyName),
    async load() {
      const text = await store.read(copyName);
      if (text === undefined) return undefined;
      const parsed = lastGoodSchema.safeParse(JSON.parse(text));
      if (!parsed.success || parsed.data.file.cloud !== cloud) {
        throw new Error(`${store.where(copyName)} is not a valid last-good copy for cloud ${cloud}.`);
      }
      const origin = parsed.data.origin as ServiceTagsOrigin;
      return { document: { file: parsed.data.file, origin }, retrievedAt: new Date(origin.retrievedAt) };
    },
    async save(document) {
      // One write per new file: the same file re-validated (a 304, the next TTL) is not written again.
      const key = `${document.origin.location}#${document.origin.changeNumber}#${document.origin.bytes}`;
      if (key === saved) return;
      const { dataAgeDays: _age, copyOf: _copy, ...origin } = document.origin;
      await store.write(copyName, JSON.stringify({ schemaVersion: 1, origin, file: document.file }));
      saved = key;
    },
    async firstSeen(changeNumber, now) {
      if (seen?.changeNumber === changeNumber) return seen.at;
      const text = await store.read(seenName).catch(() => undefined);
      const parsed = text === undefined ? undefined : firstSeenSchema.safeParse(safeJson(text));
      if (parsed?.success === true && parsed.data.changeNumber === changeNumber) {
        seen = { changeNumber, at: new Date(parsed.data.firstSeenAt) };
        return seen.at;
      }
      seen = { changeNumber, at: now };
      await store
        .write(seenName, JSON.stringify({ schemaVersion: 1, changeNumber, firstSeenAt: now.toISOString() }))
        .catch(() => undefined);
      return now;
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
