import { app } from "@azure/functions";
import { createPoisonHandler, createQueueHandler } from "../app/queue-handler.js";
import { functionsRuntime } from "../app/runtime.js";
import { POISON_QUEUE_NAME, QUEUE_NAME } from "../fanout/message.js";

const runtime = functionsRuntime();

// One registry per message (SYNC_FANOUT=true). The connection is AzureWebJobsStorage: identity-based
// in Azure (__queueServiceUri + managedidentity), a connection string locally. Retries, their spacing
// and the poison threshold are host.json's extensions.queues.
app.storageQueue("allowlistSyncRegistry", {
  queueName: QUEUE_NAME,
  connection: "AzureWebJobsStorage",
  handler: createQueueHandler(runtime),
});

// The host moves a message here after maxDequeueCount failed deliveries: report it (and alert).
app.storageQueue("allowlistSyncPoisoned", {
  queueName: POISON_QUEUE_NAME,
  connection: "AzureWebJobsStorage",
  handler: createPoisonHandler(runtime),
});
