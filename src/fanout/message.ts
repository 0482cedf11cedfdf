import { z } from "zod";
import { TARGET_OVERRIDES_SCHEMA, type TargetConfig, type TargetOverrideValues } from "../config/settings.js";
import { FanoutMessageError } from "../errors.js";

/**
 * One fan-out message: one registry of one scheduled run. The queue trigger expects base64 text
 * (host.json `messageEncoding: base64`, azure-facts §9), so `encodeMessage` encodes it; the host
 * decodes it and hands the function the parsed JSON. The message carries the registry's resolved
 * configuration, so a worker never re-runs discovery for it.
 */
export const QUEUE_NAME = "allowlist-sync";
/** The host moves a message here after `maxDequeueCount` failed deliveries. */
export const POISON_QUEUE_NAME = `${QUEUE_NAME}-poison`;
/** Must equal host.json `extensions.queues.maxDequeueCount` (a test keeps them equal). */
export const MAX_DEQUEUE_COUNT = 5;

const SERVICE_TAGS_BLOB = /^servicetags\/[0-9a-f]{64}\.json$/;

export const fanoutMessageSchema = z.strictObject({
  schemaVersion: z.literal(1),
  runId: z.string().regex(/^[\w.:-]{1,80}$/, "expected a run ID"),
  registryId: z.string().min(1).max(400),
  serviceTagsBlob: z.string().regex(SERVICE_TAGS_BLOB, "expected servicetags/<sha256>.json"),
  trigger: z.string().regex(/^[a-z-]{1,20}$/, "expected a trigger name"),
  target: TARGET_OVERRIDES_SCHEMA,
  /** CANARY_REGISTRIES / CANARY_ON_TARGETS as the scheduler resolved them: the worker runs the after-change canary. */
  canary: z.enum(["dedicated", "target"]).optional(),
});
export type FanoutMessage = z.infer<typeof fanoutMessageSchema>;

/** The message of one target: the registry's resolved values travel with it. */
export function messageFor(
  runId: string,
  target: TargetConfig,
  serviceTagsBlob: string,
  trigger: string,
): FanoutMessage {
  const { policy } = target;
  const values: TargetOverrideValues = {
    ...(target.regions === undefined ? {} : { regions: [...target.regions] }),
    includeReplicas: target.includeReplicas,
    pinnedRules: [...target.pinnedRules],
    headroom: policy.headroom,
    minPrefixLength: policy.minPrefixLength,
    ...(policy.maxExtraAddresses === undefined ? {} : { maxExtraAddresses: policy.maxExtraAddresses }),
    ...(policy.maxExtraRatio === undefined ? {} : { maxExtraRatio: policy.maxExtraRatio }),
    maxRemovalShare: policy.maxRemovalShare,
    writeWhenDefaultAllow: policy.writeWhenDefaultAllow,
  };
  return {
    schemaVersion: 1,
    runId,
    registryId: target.ref.id,
    serviceTagsBlob,
    trigger,
    target: values,
    ...(target.canary === undefined ? {} : { canary: target.canary }),
  };
}

export function encodeMessage(message: FanoutMessage): string {
  return Buffer.from(JSON.stringify(message), "utf8").toString("base64");
}

/**
 * What the queue trigger hands over: the host's parsed JSON object, or text (JSON, or base64 of
 * JSON when the host did not decode it). Anything else is a `FanoutMessageError`.
 */
export function decodeMessage(input: unknown): FanoutMessage {
  let value: unknown = input;
  if (typeof value === "string") {
    const text = value.trim();
    const json = text.startsWith("{") ? text : Buffer.from(text, "base64").toString("utf8");
    try {
      value = JSON.parse(json);
    } catch {
      throw invalid("it is neither JSON nor base64 of JSON");
    }
  }
  const parsed = fanoutMessageSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined || issue.path.length === 0 ? "(root)" : issue.path.join(".");
    throw invalid(`${path}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

function invalid(problem: string): FanoutMessageError {
  return new FanoutMessageError(`A message on the ${QUEUE_NAME} queue is not a fan-out message: ${problem}.`, {
    details: { queue: QUEUE_NAME },
    remedy: "Only the scheduler (the timer with SYNC_FANOUT=true) should write to this queue; the message is dropped.",
  });
}
