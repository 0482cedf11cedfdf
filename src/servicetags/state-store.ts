import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { writeFileAtomically } from "../ledger/atomic-file.js";

/**
 * Where the source chain keeps what it must remember across processes: the last-good copy of
 * the file and when the Discovery API's changeNumber was first seen. Next to the ledger: a blob
 * folder in the ledger container (Azure), or files beside the ledger file (CLI). Plain text in,
 * plain text out; the records are validated by their readers.
 */
export interface SourceStateStore {
  /** Undefined when nothing was stored under `name`. */
  read(name: string): Promise<string | undefined>;
  write(name: string, text: string): Promise<void>;
  /** Where `name` lives, for messages. */
  where(name: string): string;
}

/** Files `servicetags-<name>` in `directory` (the ledger file's folder), written atomically. */
export function createFileStateStore(directory: string): SourceStateStore {
  const pathOf = (name: string): string => join(directory, `servicetags-${name}`);
  return {
    where: pathOf,
    async read(name) {
      try {
        return await readFile(pathOf(name), "utf8");
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") return undefined;
        throw error;
      }
    },
    write(name, text) {
      return writeFileAtomically(pathOf(name), text);
    },
  };
}

/** Blobs `servicetags/<name>` in the ledger container. */
export function createBlobStateStore(container: ContainerClient): SourceStateStore {
  const blobOf = (name: string): string => `servicetags/${name}`;
  let ready: Promise<unknown> | undefined;
  const ensureContainer = (): Promise<unknown> => {
    ready ??= container.createIfNotExists().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
  return {
    where: (name) => `blob '${container.containerName}/${blobOf(name)}'`,
    async read(name) {
      await ensureContainer();
      try {
        return (await container.getBlobClient(blobOf(name)).downloadToBuffer()).toString("utf8");
      } catch (error) {
        if ((error as { statusCode?: unknown }).statusCode === 404) return undefined;
        throw error;
      }
    },
    async write(name, text) {
      await ensureContainer();
      await container.getBlockBlobClient(blobOf(name)).upload(text, Buffer.byteLength(text), {
        blobHTTPHeaders: { blobContentType: "application/json" },
      });
    },
  };
}
