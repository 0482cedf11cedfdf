import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { z } from "zod";
import { LedgerError } from "../errors.js";
import type { DiscoveryMemory } from "./types.js";

/**
 * Where the last discovery's registry IDs are kept: a small JSON document beside the ledgers
 * (same container, same permissions) or a file beside the CLI's ledger file. An unreadable
 * document is treated as "nothing remembered": the worst case is one missed "lost the tag" report.
 */
const documentSchema = z.object({ schemaVersion: z.literal(1), registryIds: z.array(z.string()).max(100_000) });

function parse(text: string): readonly string[] | undefined {
  try {
    const parsed = documentSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data.registryIds : undefined;
  } catch {
    return undefined;
  }
}

const body = (ids: readonly string[]): string => JSON.stringify({ schemaVersion: 1, registryIds: [...ids] }, null, 2);

export function createBlobDiscoveryMemory(container: ContainerClient, blobName: string): DiscoveryMemory {
  const blob = container.getBlockBlobClient(blobName);
  return {
    async read() {
      try {
        return parse((await blob.downloadToBuffer()).toString("utf8"));
      } catch (error) {
        if ((error as { statusCode?: unknown }).statusCode === 404) return undefined;
        throw memoryError(`blob '${container.containerName}/${blobName}'`, error);
      }
    },
    async write(ids) {
      const text = body(ids);
      try {
        await container.createIfNotExists();
        await blob.upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: "application/json" } });
      } catch (error) {
        throw memoryError(`blob '${container.containerName}/${blobName}'`, error);
      }
    },
  };
}

export function createFileDiscoveryMemory(path: string): DiscoveryMemory {
  return {
    async read() {
      try {
        return parse(await readFile(path, "utf8"));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw memoryError(`file '${path}'`, error);
      }
    },
    async write(ids) {
      try {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(`${path}.tmp`, body(ids));
        await rename(`${path}.tmp`, path);
      } catch (error) {
        throw memoryError(`file '${path}'`, error);
      }
    },
  };
}

/** One name per tag and scope set, so changing either starts a fresh memory instead of reporting everything as lost. */
export function discoveryMemoryName(tag: { key: string; value: string }, scopes: readonly { id: string }[]): string {
  const slug = `${tag.key}=${tag.value}|${scopes.map((s) => s.id).join(",")}`.toLowerCase();
  return `discovery/${createHash("sha256").update(slug).digest("hex").slice(0, 16)}.json`;
}

function memoryError(where: string, error: unknown): LedgerError {
  return new LedgerError(
    `The discovery memory in ${where} could not be used: ${error instanceof Error ? error.message.slice(0, 200) : String(error)}`,
    {
      details: { where },
      remedy: "Check the ledger storage (the same container or folder as the ledgers).",
    },
  );
}
