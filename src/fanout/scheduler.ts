import { randomBytes } from "node:crypto";
import type { Settings } from "../config/settings.js";
import { resolveRunTargets, type DiscoveryPorts, type RunTargets } from "../discovery/discover.js";
import type { LedgerStore } from "../ledger/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { forEachBounded, interleaveByKey } from "../sync/bounded.js";
import { checkRegionsOrThrow, reportOutcome, type ServiceTagsSource, type TargetOutcome } from "../sync/invocation.js";
import { messageFor } from "./message.js";
import type { FanoutQueue } from "./queue.js";
import type { FanoutStore } from "./tags-store.js";

export interface SchedulerPorts extends DiscoveryPorts {
  readonly serviceTags: ServiceTagsSource;
  readonly fanoutStore: FanoutStore;
  readonly queue: FanoutQueue;
  /** Read only to tell a typo in a region from a region that was synced before (`region-names.ts`). */
  readonly ledger: Pick<LedgerStore, "read">;
}

export interface ScheduledRun {
  readonly runId: string;
  readonly serviceTagsBlob: string | undefined;
  /** Registries with a message on the queue. */
  readonly enqueued: readonly string[];
  /** Registries that could not run: skipped by discovery, or the file could not be fetched, or the enqueue failed. */
  readonly failures: readonly TargetOutcome[];
  readonly targets: RunTargets | undefined;
}

// Enough parallel sends to enqueue a thousand messages in seconds, few enough to be gentle on the account.
const SEND_CONCURRENCY = 16;

/**
 * The timer with SYNC_FANOUT=true: fetch and validate the service-tags file once, store it under
 * its content hash, find the registries (TARGET_REGISTRIES plus discovery), and enqueue one message
 * per registry. The sync itself happens in the queue-triggered function, one registry per message.
 * A failed file fetch is reported for every registry (as the in-process path does) and nothing is
 * enqueued; a failed discovery still enqueues the explicit registries and is thrown afterwards.
 */
export async function scheduleRun(
  settings: Settings,
  ports: SchedulerPorts,
  options: { readonly trigger: string; readonly runId?: string },
): Promise<ScheduledRun> {
  const started = Date.now();
  const runId = options.runId ?? `${new Date().toISOString().replace(/[-:.]/g, "")}-${randomBytes(3).toString("hex")}`;
  const failures: TargetOutcome[] = [];
  let discoveryError: { readonly error: unknown } | undefined;
  let targets: RunTargets | undefined;
  try {
    try {
      targets = await resolveRunTargets(settings, ports, { trigger: options.trigger, dryRun: false });
      failures.push(...targets.skipped);
    } catch (error) {
      discoveryError = { error };
    }
    // Sent round-robin over subscriptions: see interleaveByKey.
    const toRun = interleaveByKey(targets?.targets ?? settings.targets, (target) =>
      target.ref.subscriptionId.toLowerCase(),
    );
    let blob: string;
    let document: ServiceTagsDocument;
    try {
      document = await ports.serviceTags.fetch();
      blob = await ports.fanoutStore.putServiceTags(document);
      // What the chain said about the file this time (lags, a stale copy): every worker's plan says it too.
      await ports.fanoutStore.putRunSource(runId, {
        lags: document.lags,
        crossCheck: document.crossCheck,
        warnings: document.warnings,
        newestChangeNumberSeen: document.newestChangeNumberSeen,
      });
    } catch (error) {
      for (const target of toRun) {
        const outcome: TargetOutcome = { target, ok: false, error, durationMs: Date.now() - started };
        reportOutcome(ports.telemetry, outcome, options.trigger, false);
        failures.push(outcome);
      }
      return { runId, serviceTagsBlob: undefined, enqueued: [], failures, targets };
    }
    // A setting naming a region that is none throws here: the timer fails naming it, nothing is enqueued.
    const refusedByRegion = await checkRegionsOrThrow(toRun, document, ports, options.trigger, false);
    const enqueued: string[] = [];
    await forEachBounded(
      toRun,
      { concurrency: SEND_CONCURRENCY, perKey: SEND_CONCURRENCY, keyOf: () => "queue" },
      async (target, index) => {
        const refused = refusedByRegion.get(index);
        if (refused !== undefined) {
          const outcome: TargetOutcome = { target, ok: false, error: refused, durationMs: 0 };
          reportOutcome(ports.telemetry, outcome, options.trigger, false);
          failures.push(outcome);
          return;
        }
        try {
          await ports.queue.send(messageFor(runId, target, blob, options.trigger));
          enqueued.push(target.ref.id);
        } catch (error) {
          const outcome: TargetOutcome = { target, ok: false, error, durationMs: 0 };
          reportOutcome(ports.telemetry, outcome, options.trigger, false);
          failures.push(outcome);
        }
      },
    );
    ports.telemetry.fanoutScheduled({
      runId,
      registries: enqueued.length,
      skipped: targets?.skipped.length ?? 0,
      discovered: targets?.discovered ?? 0,
      serviceTagsBlob: blob,
      durationMs: Date.now() - started,
      trigger: options.trigger,
    });
    // The explicit registries are on the queue; now the discovery failure fails the invocation.
    if (discoveryError !== undefined) throw discoveryError.error as Error;
    return { runId, serviceTagsBlob: blob, enqueued, failures, targets };
  } finally {
    await ports.telemetry.flush();
  }
}
