import type { InvocationContext as Context } from "@azure/functions";
import { createRequire } from "node:module";
import type { QueueClient } from "@azure/storage-queue";
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";

// @azure/functions is CommonJS: a named value import crashes plain Node (bench runs this from dist/).
const { InvocationContext } = createRequire(import.meta.url)("@azure/functions") as typeof import("@azure/functions");
type InvocationContext = Context;

/**
 * A stand-in for the Functions host's queue trigger (azure-facts §9), so the real queue handler is
 * driven from a real Azurite queue: it receives batches, decodes base64 and JSON as the host does,
 * passes `dequeueCount` & co. in `triggerMetadata`, deletes a message when the handler returns,
 * makes it visible again after `visibilityTimeoutSeconds` when the handler throws, and after
 * `maxDequeueCount` failed deliveries moves it to `<queue>-poison` (where the poison handler runs).
 * Only the host is emulated; the handlers under test are the production ones.
 */

export type QueueFunction = (message: unknown, context: InvocationContext) => Promise<void>;

export interface QueueHostOptions {
  readonly queue: QueueClient;
  readonly poison: QueueClient;
  readonly handler: QueueFunction;
  readonly poisonHandler: QueueFunction;
  /** host.json maxDequeueCount. */
  readonly maxDequeueCount: number;
  /** Messages handled at the same time (host: batchSize + newBatchThreshold per instance, times instances). */
  readonly concurrency: number;
  /** host.json visibilityTimeout between retries, in seconds (Azurite's granularity). */
  readonly visibilityTimeoutSeconds?: number;
  /** How long a received message stays invisible while its handler runs. Default 120 s. */
  readonly leaseSeconds?: number;
}

export interface QueueHostStats {
  /** Handler invocations, poison handler included. */
  deliveries: number;
  succeeded: number;
  failedDeliveries: number;
  poisoned: number;
  /** Highest dequeueCount seen. */
  maxDequeueCountSeen: number;
}

function hostDecode(text: string): unknown {
  // messageEncoding base64: the host decodes; a JSON payload reaches a Node function parsed.
  const decoded = Buffer.from(text, "base64").toString("utf8");
  try {
    return JSON.parse(decoded) as unknown;
  } catch {
    return decoded;
  }
}

function contextFor(
  functionName: string,
  message: { messageId: string; dequeueCount: number; insertedOn: Date; popReceipt: string },
  logs: string[],
): InvocationContext {
  return new InvocationContext({
    functionName,
    invocationId: randomBytes(8).toString("hex"),
    triggerMetadata: {
      dequeueCount: message.dequeueCount,
      id: message.messageId,
      insertionTime: message.insertedOn.toISOString(),
      popReceipt: message.popReceipt,
    },
    logHandler: (level, ...args) => {
      if (logs.length < 10_000) logs.push(`${level}: ${args.map(String).join(" ")}`);
    },
  });
}

/** Runs until both queues are empty (no visible and no invisible message) and nothing is in flight. */
export async function drainQueues(options: QueueHostOptions, logs: string[] = []): Promise<QueueHostStats> {
  const stats: QueueHostStats = {
    deliveries: 0,
    succeeded: 0,
    failedDeliveries: 0,
    poisoned: 0,
    maxDequeueCountSeen: 0,
  };
  const lease = options.leaseSeconds ?? 120;
  const retryAfter = options.visibilityTimeoutSeconds ?? 0;
  const inFlight = new Set<Promise<void>>();

  const handleOne = async (
    queue: QueueClient,
    handler: QueueFunction,
    functionName: string,
    message: { messageId: string; popReceipt: string; messageText: string; dequeueCount: number; insertedOn: Date },
    isPoisonQueue: boolean,
  ): Promise<void> => {
    stats.deliveries += 1;
    stats.maxDequeueCountSeen = Math.max(stats.maxDequeueCountSeen, message.dequeueCount);
    try {
      await handler(hostDecode(message.messageText), contextFor(functionName, message, logs));
      stats.succeeded += 1;
      await queue.deleteMessage(message.messageId, message.popReceipt);
    } catch {
      stats.failedDeliveries += 1;
      if (!isPoisonQueue && message.dequeueCount >= options.maxDequeueCount) {
        await options.poison.sendMessage(message.messageText);
        await queue.deleteMessage(message.messageId, message.popReceipt);
        stats.poisoned += 1;
      } else {
        await queue.updateMessage(message.messageId, message.popReceipt, undefined, retryAfter);
      }
    }
  };

  const pull = async (queue: QueueClient, handler: QueueFunction, name: string, isPoison: boolean): Promise<number> => {
    const room = options.concurrency - inFlight.size;
    if (room <= 0) return 0;
    const { receivedMessageItems } = await queue.receiveMessages({
      numberOfMessages: Math.min(32, room),
      visibilityTimeout: lease,
    });
    for (const item of receivedMessageItems) {
      const work = handleOne(queue, handler, name, item, isPoison).finally(() => inFlight.delete(work));
      inFlight.add(work);
    }
    return receivedMessageItems.length;
  };

  for (;;) {
    const got =
      (await pull(options.queue, options.handler, "allowlistSyncRegistry", false)) +
      (await pull(options.poison, options.poisonHandler, "allowlistSyncPoisoned", true));
    if (got > 0) continue;
    if (inFlight.size > 0) {
      await Promise.race(inFlight);
      continue;
    }
    const [main, poison] = await Promise.all([options.queue.getProperties(), options.poison.getProperties()]);
    if ((main.approximateMessagesCount ?? 0) === 0 && (poison.approximateMessagesCount ?? 0) === 0) return stats;
    // Messages waiting for their retry visibility.
    await delay(100);
  }
}
