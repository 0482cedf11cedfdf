import type { TokenCredential } from "@azure/identity";
import { QueueServiceClient, type QueueClient } from "@azure/storage-queue";
import { ConfigError, FanoutStorageError } from "../errors.js";
import { encodeMessage, QUEUE_NAME, type FanoutMessage } from "./message.js";

/** Where the scheduler puts one message per registry. */
export interface FanoutQueue {
  send(message: FanoutMessage): Promise<void>;
}

export interface QueueSettings {
  readonly connectionString: string | undefined;
  readonly queueServiceUri: string | undefined;
  readonly credential: TokenCredential;
  readonly queueName?: string;
}

/**
 * The queue client: a connection string (Azurite, local runs) or the identity-based
 * `AzureWebJobsStorage__queueServiceUri` with the managed identity, the same connection the
 * trigger uses (azure-facts §9). Nothing is contacted until the first send.
 */
export function queueClientFromSettings(settings: QueueSettings): QueueClient {
  const name = settings.queueName ?? QUEUE_NAME;
  const connectionString = settings.connectionString?.trim();
  if (connectionString !== undefined && connectionString !== "")
    return QueueServiceClient.fromConnectionString(connectionString).getQueueClient(name);
  const uri = settings.queueServiceUri?.trim();
  if (uri !== undefined && uri !== "") return new QueueServiceClient(uri, settings.credential).getQueueClient(name);
  throw new ConfigError("Fan-out (SYNC_FANOUT=true) needs the queue service of AzureWebJobsStorage.", {
    details: { setting: "AzureWebJobsStorage__queueServiceUri" },
    remedy:
      "Set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__queueServiceUri, or set SYNC_FANOUT=false.",
  });
}

export function createFanoutQueue(client: QueueClient): FanoutQueue {
  let ready: Promise<unknown> | undefined;
  return {
    async send(message) {
      try {
        ready ??= client.createIfNotExists().catch((error: unknown) => {
          ready = undefined;
          throw error;
        });
        await ready;
        // The trigger expects base64; storage-queue sends the text as given (azure-facts §9).
        await client.sendMessage(encodeMessage(message));
      } catch (error) {
        throw new FanoutStorageError(
          `Enqueueing ${message.registryId} on queue '${client.name}' failed: ${error instanceof Error ? error.message.slice(0, 200) : String(error)}`,
          {
            details: { queue: client.name, registry: message.registryId },
            remedy:
              "Check the identity's Storage Queue Data Contributor role on the storage account; the next run enqueues again.",
          },
        );
      }
    },
  };
}
