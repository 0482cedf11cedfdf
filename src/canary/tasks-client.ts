import { setTimeout as delay } from "node:timers/promises";
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
  RestError,
  type HttpClient,
  type HttpMethods,
  type Pipeline,
  type PipelineResponse,
} from "@azure/core-rest-pipeline";
import type { z } from "zod";
import { CanaryLogUnreadableError, RegistryOperationError, RegistryStateInvalidError } from "../errors.js";
import { createArmClient, DEFAULT_REQUEST_TIMEOUT_MS, type ArmClientOptions } from "../registry/arm-client.js";
import { toRegistryError, type ArmOperation } from "../registry/arm-errors.js";
import { parseArm } from "../registry/arm-schema.js";
import { ARM_ENDPOINTS } from "../registry/clouds.js";
import type { RegistryRef } from "../registry/types.js";
import {
  asyncOperationSchema,
  encodedTaskRunRequest,
  logLinkSchema,
  runDocumentSchema,
  TASKS_API_VERSION,
  toCanaryRun,
  type CanaryRun,
} from "./tasks-schema.js";

/** The ACR Tasks calls the canary makes. Implementations map failures to the named errors of src/errors.ts. */
export interface TasksGateway {
  /** `scheduleRun` (long-running) of the canary's quick run; resolves with the scheduled run (usually `Queued`). */
  scheduleRun(ref: RegistryRef, options?: { signal?: AbortSignal }): Promise<CanaryRun>;
  getRun(ref: RegistryRef, runId: string, options?: { signal?: AbortSignal }): Promise<CanaryRun>;
  /** `listLogSasUrl`, then the log blob itself. Throws `CanaryLogUnreadableError` when the log cannot be read. */
  readLog(ref: RegistryRef, runId: string, options?: { signal?: AbortSignal }): Promise<string>;
}

export interface TasksGatewayOptions extends ArmClientOptions {
  /** Poll interval of scheduleRun's long-running operation when ARM sends no Retry-After (default 2 s). */
  readonly pollIntervalMs?: number;
  /** The most of a log that is read (default 1 MiB): the refusal is logged at login, near the start. */
  readonly maxLogBytes?: number;
}

const DEFAULT_POLL_INTERVAL_MS = 2_000;
const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;

/**
 * ACR Tasks over REST. `@azure/arm-containerregistry` 12 dropped `scheduleRun` and `runs`, so the
 * documented REST API is called through the registry client's own pipeline: the same bearer-token
 * policy and scope, retry and throttling policies, per-attempt timeout, user agent and TLS options
 * as every other ARM call of the service. Answers are validated with zod like the rest of registry/.
 *
 * The log blob is read through a second pipeline WITHOUT the credential: the SAS in its URL is the
 * authorisation, and the ARM token must never reach a storage host.
 */
export function createTasksGateway(options: TasksGatewayOptions): TasksGateway {
  const endpoint = (options.endpoint ?? ARM_ENDPOINTS[options.cloud ?? "Public"]).replace(/\/+$/, "");
  const endpointOrigin = new URL(endpoint).origin;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const maxLogBytes = options.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES;
  const httpClient: HttpClient = createDefaultHttpClient();
  const pipelines = new Map<string, Pipeline>();
  const blobPipeline = createPipelineFromOptions({
    retryOptions: { ...options.retryOptions },
    ...(options.trustedCa === undefined ? {} : { tlsOptions: { ca: options.trustedCa } }),
    ...(options.userAgentPrefix === undefined
      ? {}
      : { userAgentOptions: { userAgentPrefix: options.userAgentPrefix } }),
  });

  const pipelineFor = (ref: RegistryRef): Pipeline => {
    let pipeline = pipelines.get(ref.subscriptionId);
    if (pipeline === undefined) {
      pipeline = createArmClient(ref.subscriptionId, options).pipeline;
      pipelines.set(ref.subscriptionId, pipeline);
    }
    return pipeline;
  };

  const registryPath = (ref: RegistryRef): string =>
    `/subscriptions/${encodeURIComponent(ref.subscriptionId)}/resourceGroups/${encodeURIComponent(ref.resourceGroup)}/providers/Microsoft.ContainerRegistry/registries/${encodeURIComponent(ref.name)}`;

  async function send(
    ref: RegistryRef,
    operation: ArmOperation,
    method: HttpMethods,
    url: string,
    signal: AbortSignal | undefined,
    body?: unknown,
  ): Promise<PipelineResponse> {
    try {
      // Only ARM gets the token: a poll URL on another host is refused rather than followed.
      if (new URL(url).origin !== endpointOrigin) {
        throw new RegistryStateInvalidError(
          `ARM's answer to ${operation} for registry ${ref.name} points at another host (${new URL(url).origin}).`,
          {
            details: { registryId: ref.id, registry: ref.name, operation, reason: "foreign-url" },
            remedy: "Check ARM_ENDPOINT; the service sends its token to that endpoint only.",
          },
        );
      }
      const request = createPipelineRequest({
        url,
        method,
        headers: createHttpHeaders({ accept: "application/json", "content-type": "application/json" }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal === undefined ? {} : { abortSignal: signal }),
        timeout: requestTimeoutMs,
      });
      const response = await pipelineFor(ref).sendRequest(httpClient, request);
      if (response.status >= 400) throw restErrorOf(response);
      return response;
    } catch (error) {
      throw toRegistryError(error, { ref, operation, endpoint, requestTimeoutMs, callerSignal: signal });
    }
  }

  function json<T>(schema: z.ZodType<T>, response: PipelineResponse, ref: RegistryRef, operation: ArmOperation): T {
    let value: unknown;
    try {
      value = JSON.parse(response.bodyAsText ?? "");
    } catch {
      value = undefined;
    }
    return parseArm(schema, value, ref, operation);
  }

  const withVersion = (path: string): string => `${endpoint}${path}?api-version=${TASKS_API_VERSION}`;

  return {
    async scheduleRun(ref, callOptions = {}) {
      const signal = callOptions.signal;
      const first = await send(
        ref,
        "scheduleRun",
        "POST",
        withVersion(`${registryPath(ref)}/scheduleRun`),
        signal,
        encodedTaskRunRequest(),
      );
      if (first.status === 200 || (first.status === 201 && hasBody(first)))
        return toCanaryRun(json(runDocumentSchema, first, ref, "scheduleRun"));
      // 202: ARM's asynchronous pattern. Azure-AsyncOperation tells when it is done; Location
      // (or, without Azure-AsyncOperation, polling Location itself) gives the Run.
      const asyncUrl = first.headers.get("azure-asyncoperation");
      const location = first.headers.get("location");
      if (asyncUrl === undefined && location === undefined) {
        throw new RegistryStateInvalidError(
          `ARM accepted the canary run on registry ${ref.name} (${first.status}) without saying where to follow it.`,
          {
            details: { registryId: ref.id, registry: ref.name, operation: "scheduleRun", reason: "no-poll-url" },
            remedy: "Report it: scheduleRun answered neither a Run nor an Azure-AsyncOperation or Location header.",
          },
        );
      }
      let waitMs = retryAfterMs(first) ?? pollIntervalMs;
      for (;;) {
        await delay(waitMs, undefined, signal === undefined ? undefined : { signal });
        if (asyncUrl !== undefined) {
          const poll = await send(ref, "scheduleRun", "GET", asyncUrl, signal);
          const status = json(asyncOperationSchema, poll, ref, "scheduleRun");
          waitMs = retryAfterMs(poll) ?? pollIntervalMs;
          if (/^(Succeeded)$/i.test(status.status)) break;
          if (/^(Failed|Canceled)$/i.test(status.status)) {
            const code = status.error?.code ?? undefined;
            const message = status.error?.message ?? undefined;
            throw new RegistryOperationError(
              `Scheduling the canary's ACR Tasks run on registry ${ref.name} failed: ARM reports the operation as ${status.status}${code === undefined ? "" : ` (${code}: ${message ?? ""})`}.`,
              {
                details: {
                  registryId: ref.id,
                  registry: ref.name,
                  operation: "scheduleRun",
                  reason: "operation-failed",
                  armCode: code,
                  armMessage: message,
                },
                remedy:
                  "The next canary tries again; if it keeps failing, check ACR Tasks in the registry's portal page.",
              },
            );
          }
          continue;
        }
        const poll = await send(ref, "scheduleRun", "GET", location ?? "", signal);
        if (poll.status === 202) {
          waitMs = retryAfterMs(poll) ?? pollIntervalMs;
          continue;
        }
        return toCanaryRun(json(runDocumentSchema, poll, ref, "scheduleRun"));
      }
      if (location === undefined) {
        throw new RegistryStateInvalidError(
          `The canary run on registry ${ref.name} was scheduled, but ARM gave no Location to read it from.`,
          {
            details: { registryId: ref.id, registry: ref.name, operation: "scheduleRun", reason: "no-location" },
            remedy: "Report it: without the Run the canary cannot follow it.",
          },
        );
      }
      const final = await send(ref, "scheduleRun", "GET", location, signal);
      return toCanaryRun(json(runDocumentSchema, final, ref, "scheduleRun"));
    },

    async getRun(ref, runId, callOptions = {}) {
      const response = await send(
        ref,
        "getRun",
        "GET",
        withVersion(`${registryPath(ref)}/runs/${encodeURIComponent(runId)}`),
        callOptions.signal,
      );
      return toCanaryRun(json(runDocumentSchema, response, ref, "getRun"));
    },

    async readLog(ref, runId, callOptions = {}) {
      const signal = callOptions.signal;
      const response = await send(
        ref,
        "listLogSasUrl",
        "POST",
        withVersion(`${registryPath(ref)}/runs/${encodeURIComponent(runId)}/listLogSasUrl`),
        signal,
      );
      const { logLink } = json(logLinkSchema, response, ref, "listLogSasUrl");
      // The SAS is a secret: messages name the blob, never the query.
      const shown = withoutQuery(logLink);
      const unreadable = (why: string, extra: Record<string, string | number> = {}): CanaryLogUnreadableError =>
        new CanaryLogUnreadableError(
          `The log of canary run ${runId} on registry ${ref.name} could not be read from ${shown}: ${why}.`,
          {
            details: { registryId: ref.id, registry: ref.name, runId, blob: shown, reason: why, ...extra },
            remedy: `Read it with 'az acr task logs --registry ${ref.name} --run-id ${runId}'; the next canary tries again.`,
          },
        );
      let blob: PipelineResponse;
      try {
        blob = await blobPipeline.sendRequest(
          httpClient,
          createPipelineRequest({
            url: logLink,
            method: "GET",
            ...(signal === undefined ? {} : { abortSignal: signal }),
            timeout: requestTimeoutMs,
          }),
        );
      } catch (error) {
        const code = error instanceof RestError ? (error.code ?? "network error") : "network error";
        throw unreadable(`the log blob did not answer (${code})`);
      }
      if (blob.status !== 200) {
        const code = blob.headers.get("x-ms-error-code");
        throw unreadable(`the log blob answered ${blob.status}${code === undefined ? "" : ` ${code}`}`, {
          statusCode: blob.status,
        });
      }
      const text = blob.bodyAsText ?? "";
      return text.length > maxLogBytes ? text.slice(0, maxLogBytes) : text;
    },
  };
}

function hasBody(response: PipelineResponse): boolean {
  return (response.bodyAsText ?? "").trim() !== "";
}

function retryAfterMs(response: PipelineResponse): number | undefined {
  const header = response.headers.get("retry-after");
  if (header === undefined) return undefined;
  const seconds = Number(header);
  // 0 (or garbage) means "your own interval", as the SDK's pollers read it.
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

/** ARM's error body as a RestError (the pipeline returns error answers instead of throwing). */
function restErrorOf(response: PipelineResponse): RestError {
  let code: string | undefined;
  let message = `HTTP ${response.status}`;
  try {
    const body = JSON.parse(response.bodyAsText ?? "") as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // Not JSON: keep the status line.
  }
  return new RestError(message, { statusCode: response.status, ...(code === undefined ? {} : { code }) });
}

function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}
