import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Answer, Fault, RegistryState } from "./arm-emulator.js";

/**
 * ACR Tasks in the ARM emulator, as the canary uses them (azure-facts §11), api-version
 * 2019-06-01-preview:
 * - `POST .../scheduleRun` validates an `EncodedTaskRunRequest` and answers, by default, 202 with
 *   `Azure-AsyncOperation` and `Location` (the operation is polled like a PATCH's); `sync` answers
 *   200 with the Run.
 * - A run is `Queued`, then `Running`, then terminal, as time passes (`queuedMs`, `runningMs`).
 * - When it starts, its agent logs in to the registry from an address drawn from the agent pool of
 *   the registry's location (set it from the region's `AzureContainerRegistry.<Region>` tag). The
 *   login is refused unless `defaultAction` is `Allow`, an IP rule holds the address, or
 *   `networkRuleBypassAllowedForTasks` is true; a refused run ends `Failed` and its log carries
 *   `denied: client with IP '<ip>' is not allowed access`.
 * - `POST .../runs/{id}/listLogSasUrl` answers `{logLink, logArtifactLink}`; the log link is a
 *   loopback "blob" on this server, readable with its SAS only and never with a bearer token.
 * The emulator knows nothing of the code under test: constants and parsing here are its own.
 */

export const TASKS_API_VERSION = "2019-06-01-preview";

export interface TasksBehaviour {
  /** How long a run stays `Queued` (default 20 ms). */
  readonly queuedMs?: number;
  /** How long it then stays `Running` before its terminal state (default 30 ms). */
  readonly runningMs?: number;
  /** `async` (default): 202 + Azure-AsyncOperation + Location; `sync`: 200 with the Run. */
  readonly scheduleRunResponse?: "async" | "sync";
}

export type TasksFault =
  /** On scheduleRun: the run ends in this state whatever the firewall says (platform trouble, its own timeout). */
  | { readonly kind: "run-ends"; readonly status: "Timeout" | "Error" | "Canceled"; readonly message?: string }
  /** On scheduleRun: the run never leaves `Running`. */
  | { readonly kind: "run-stuck" }
  /** On listLogSasUrl: the link answers this status (403: SAS refused or expired; 404: blob gone). */
  | { readonly kind: "log-unreadable"; readonly status?: 403 | 404 };

export interface EmulatedRunView {
  readonly runId: string;
  readonly registryId: string;
  readonly agentIp: string;
  readonly status: RunStatus;
  /** Undefined until the run has started and its agent tried to log in. */
  readonly admitted: boolean | undefined;
  /** The decoded task YAML that was sent. */
  readonly task: string;
}

export interface LogRequestRecord {
  readonly path: string;
  /** True when the request carried an Authorization header (it never should: the SAS is the authorisation). */
  readonly authorization: boolean;
  readonly status: number;
}

type RunStatus = "Queued" | "Running" | "Succeeded" | "Failed" | "Canceled" | "Error" | "Timeout";

interface EmulatedRun {
  readonly runId: string;
  readonly registryKey: string;
  readonly registryName: string;
  readonly createdAt: number;
  readonly queuedMs: number;
  readonly runningMs: number;
  readonly agentIp: string;
  readonly task: string;
  readonly timeout: number;
  readonly fault: TasksFault | undefined;
  readonly sig: string;
  admitted: boolean | undefined;
  logUnreadable: 403 | 404 | undefined;
}

interface Host {
  registry(id: string): RegistryState;
  baseUrl(): string;
  addOperation(registryId: string, apply: () => void): string;
}

const LOG_PATH = /^\/logs\/([^/]+)\/([^/]+)\/rawtext\.log$/;
const NO_POOL_ADDRESS = "198.51.100.10";

export class TasksEmulation {
  private behaviour: Required<TasksBehaviour> = { queuedMs: 20, runningMs: 30, scheduleRunResponse: "async" };
  private readonly runsById = new Map<string, EmulatedRun>();
  private readonly pools = new Map<string, readonly string[]>();
  private readonly counters = new Map<string, number>();
  readonly logRequests: LogRequestRecord[] = [];

  constructor(private readonly host: Host) {}

  configure(behaviour: TasksBehaviour): void {
    this.behaviour = { ...this.behaviour, ...behaviour };
  }

  /** The prefixes the agents of a location log in from (e.g. the `AzureContainerRegistry.<Region>` tag's IPv4 ranges). */
  setAgentPool(location: string, prefixes: readonly string[]): void {
    this.pools.set(location.toLowerCase(), [...prefixes]);
  }

  runs(registryId?: string): EmulatedRunView[] {
    return [...this.runsById.values()]
      .filter((run) => registryId === undefined || run.registryKey === registryId.toLowerCase())
      .map((run) => ({
        runId: run.runId,
        registryId: this.host.registry(run.registryKey).id,
        agentIp: run.agentIp,
        status: this.statusOf(run),
        admitted: run.admitted,
        task: run.task,
      }));
  }

  // ---- ARM operations --------------------------------------------------------------------------

  scheduleRun(registry: RegistryState, text: string, fault: Fault | undefined, retryAfterSeconds: number): Answer {
    const request = parseRunRequest(text);
    if ("status" in request) return request;
    const key = registry.id.toLowerCase();
    const count = (this.counters.get(key) ?? 0) + 1;
    this.counters.set(key, count);
    const run: EmulatedRun = {
      // ACR numbers runs per registry: ca1, ca2, ...
      runId: `ca${count}`,
      registryKey: key,
      registryName: registry.name,
      createdAt: Date.now(),
      queuedMs: this.behaviour.queuedMs,
      runningMs: this.behaviour.runningMs,
      agentIp: this.drawAgentAddress(registry.location, count - 1),
      task: request.task,
      timeout: request.timeout,
      fault: isTasksFault(fault) && fault.kind !== "log-unreadable" ? fault : undefined,
      sig: randomBytes(16).toString("base64url"),
      admitted: undefined,
      logUnreadable: undefined,
    };
    this.runsById.set(run.runId + "|" + key, run);
    const runUrl = `${this.host.baseUrl()}${registry.id}/runs/${run.runId}?api-version=${TASKS_API_VERSION}`;
    if (this.behaviour.scheduleRunResponse === "sync") return { status: 200, body: this.runDocument(registry, run) };
    const operationId = this.host.addOperation(registry.id, () => undefined);
    return {
      status: 202,
      headers: {
        "azure-asyncoperation": `${this.host.baseUrl()}${registry.id}/operationStatuses/${operationId}?api-version=${TASKS_API_VERSION}`,
        location: runUrl,
        "retry-after": String(retryAfterSeconds),
      },
    };
  }

  getRun(registry: RegistryState, runId: string): Answer {
    const run = this.runsById.get(runId + "|" + registry.id.toLowerCase());
    if (run === undefined) return notFound(registry, runId);
    return { status: 200, body: this.runDocument(registry, run) };
  }

  listLogSasUrl(registry: RegistryState, runId: string, fault: Fault | undefined): Answer {
    const run = this.runsById.get(runId + "|" + registry.id.toLowerCase());
    if (run === undefined) return notFound(registry, runId);
    if (fault?.kind === "log-unreadable") run.logUnreadable = fault.status ?? 403;
    const expiry = new Date(Date.now() + 60 * 60 * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    const logLink = `${this.host.baseUrl()}/logs/${encodeURIComponent(registry.name.toLowerCase())}/${run.runId}/rawtext.log?sv=2021-08-06&se=${encodeURIComponent(expiry)}&sr=b&sp=r&sig=${encodeURIComponent(run.sig)}`;
    return { status: 200, body: { logLink, logArtifactLink: null } };
  }

  // ---- the log blob ----------------------------------------------------------------------------

  isLogBlob(url: URL): boolean {
    return LOG_PATH.test(url.pathname);
  }

  serveLog(req: IncomingMessage, url: URL): { status: number; headers: Record<string, string>; body: string } {
    const [, registryName = "", runId = ""] = LOG_PATH.exec(url.pathname) ?? [];
    const run = [...this.runsById.values()].find(
      (candidate) => candidate.runId === runId && candidate.registryName.toLowerCase() === registryName,
    );
    const answer = (status: number, code: string | undefined, body: string) => {
      this.logRequests.push({ path: url.pathname, authorization: req.headers.authorization !== undefined, status });
      return {
        status,
        headers: {
          "content-type": status === 200 ? "text/plain; charset=utf-8" : "application/xml",
          ...(status === 200 ? { "x-ms-blob-type": "BlockBlob" } : {}),
          ...(code === undefined ? {} : { "x-ms-error-code": code }),
        },
        body,
      };
    };
    if (run === undefined)
      return answer(404, "BlobNotFound", storageError("BlobNotFound", "The specified blob does not exist."));
    if (run.logUnreadable === 404)
      return answer(404, "BlobNotFound", storageError("BlobNotFound", "The specified blob does not exist."));
    if (run.logUnreadable === 403 || url.searchParams.get("sig") !== run.sig)
      return answer(
        403,
        "AuthenticationFailed",
        storageError(
          "AuthenticationFailed",
          "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        ),
      );
    return answer(200, undefined, this.logOf(run));
  }

  // ---- the run's life --------------------------------------------------------------------------

  private statusOf(run: EmulatedRun): RunStatus {
    const elapsed = Date.now() - run.createdAt;
    if (elapsed < run.queuedMs) return "Queued";
    // The agent logs in when the run starts: the registry's rules of that moment decide.
    run.admitted ??= this.admits(run);
    if (run.fault?.kind === "run-stuck" || elapsed < run.queuedMs + run.runningMs) return "Running";
    if (run.fault?.kind === "run-ends") return run.fault.status;
    return run.admitted ? "Succeeded" : "Failed";
  }

  private admits(run: EmulatedRun): boolean {
    const registry = this.host.registry(run.registryKey);
    if (registry.networkRuleBypassAllowedForTasks) return true;
    if (registry.publicNetworkAccess === "Disabled") return false;
    if (registry.defaultAction === "Allow") return true;
    const address = toNumber(run.agentIp);
    return registry.ipRules.some((rule) => contains(rule, address));
  }

  /** The n-th run of a registry draws the n-th prefix of the pool (round robin): reproducible per registry. */
  private drawAgentAddress(location: string, n: number): string {
    const pool = (this.pools.get(location.toLowerCase()) ?? []).filter((prefix) => !prefix.includes(":"));
    const prefix = pool[n % Math.max(pool.length, 1)];
    if (prefix === undefined) return NO_POOL_ADDRESS;
    const [base = "", lengthText = "32"] = prefix.split("/");
    const length = Number(lengthText);
    const size = 2 ** (32 - length);
    // A host address inside the prefix, not its network or broadcast address (for /31 and /32, the prefix itself).
    const offset = size <= 2 ? 0 : 1 + ((n * 7) % (size - 2));
    return fromNumber(toNumber(base) + offset);
  }

  private runDocument(registry: RegistryState, run: EmulatedRun): unknown {
    const status = this.statusOf(run);
    const started = status !== "Queued";
    const terminal = status !== "Queued" && status !== "Running";
    const iso = (ms: number) => new Date(ms).toISOString();
    const errorMessage =
      run.fault?.kind === "run-ends"
        ? (run.fault.message ?? defaultErrorMessage(run.fault.status))
        : status === "Failed"
          ? "failed during run, err: exit status 1"
          : undefined;
    return {
      id: `${registry.id}/runs/${run.runId}`,
      name: run.runId,
      type: "Microsoft.ContainerRegistry/registries/runs",
      properties: {
        runId: run.runId,
        status,
        lastUpdatedTime: iso(Date.now()),
        runType: "QuickRun",
        createTime: iso(run.createdAt),
        ...(started ? { startTime: iso(run.createdAt + run.queuedMs) } : {}),
        ...(terminal ? { finishTime: iso(run.createdAt + run.queuedMs + run.runningMs) } : {}),
        platform: { os: "linux", architecture: "amd64" },
        agentConfiguration: { cpu: 2 },
        timeout: run.timeout,
        isArchiveEnabled: false,
        provisioningState: "Succeeded",
        ...(terminal && errorMessage !== undefined ? { runErrorMessage: errorMessage } : {}),
      },
    };
  }

  private logOf(run: EmulatedRun): string {
    const status = this.statusOf(run);
    if (status === "Queued") return "";
    const start = run.createdAt + run.queuedMs;
    const at = (offsetMs: number) => logTime(start + offsetMs);
    const login = `${run.registryName.toLowerCase()}.azurecr.io`;
    const lines = [
      `${at(0)} Alias support enabled for version >= 1.1.0, please see https://aka.ms/acr/tasks/task-aliases for more information.`,
      `${at(0)} Creating Docker network: acb_default_network, driver: 'bridge'`,
      `${at(0)} Successfully set up Docker network: acb_default_network`,
      `${at(0)} Setting up Docker configuration...`,
      `${at(1)} Successfully set up Docker configuration`,
      `${at(1)} Logging in to registry: ${login}`,
    ];
    if (run.fault?.kind === "run-ends" && run.fault.status === "Error") {
      lines.push(`${at(2)} failed to start the agent container: internal error`);
    } else if (run.admitted === true) {
      lines.push(
        `${at(2)} Successfully logged into ${login}`,
        `${at(2)} Executing step ID: acb_step_0. Timeout(sec): ${run.timeout}, Working directory: '', Network: 'acb_default_network'`,
        `${at(2)} Launching container with name: acb_step_0`,
        "",
        "Hello from Docker!",
        "This message shows that your installation appears to be working correctly.",
        "",
      );
    } else {
      lines.push(
        `${at(3)} failed to login, ran out of retries: failed to set docker credential: Error response from daemon: Get "https://${login}/v2/": denied: client with IP '${run.agentIp}' is not allowed access. Refer https://aka.ms/acr/firewall to grant access`,
      );
    }
    if (status === "Running") return `${lines.join("\n")}\n`;
    const seconds = Math.max(1, Math.round(run.runningMs / 1000));
    lines.push(
      status === "Succeeded"
        ? `Run ID: ${run.runId} was successful after ${seconds}s`
        : `Run ID: ${run.runId} failed after ${seconds}s. Error: ${status === "Failed" ? "failed during run, err: exit status 1" : run.fault?.kind === "run-ends" ? (run.fault.message ?? defaultErrorMessage(run.fault.status)) : status}`,
    );
    return `${lines.join("\n")}\n`;
  }
}

function isTasksFault(fault: Fault | undefined): fault is TasksFault {
  return fault?.kind === "run-ends" || fault?.kind === "run-stuck" || fault?.kind === "log-unreadable";
}

function defaultErrorMessage(status: "Timeout" | "Error" | "Canceled"): string {
  switch (status) {
    case "Timeout":
      return "the run exceeded its timeout";
    case "Error":
      return "internal error: the run could not be started; please retry";
    case "Canceled":
      return "the run was canceled";
  }
}

function parseRunRequest(text: string): { task: string; timeout: number } | Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return invalid("The request content was invalid and could not be deserialized.");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return invalid("The request body is missing.");
  const request = body as Record<string, unknown>;
  if (request.type !== "EncodedTaskRunRequest")
    return invalid(
      `The run request type '${String(request.type)}' is not supported here; expected EncodedTaskRunRequest.`,
    );
  const content = request.encodedTaskContent;
  if (typeof content !== "string" || content === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(content))
    return invalid("'encodedTaskContent' must be the base64-encoded task file.");
  const task = Buffer.from(content, "base64").toString("utf8");
  if (!/^steps:/m.test(task)) return invalid("The task file has no steps.");
  const platform = request.platform as { os?: unknown } | undefined;
  if (platform?.os !== "Linux" && platform?.os !== "Windows") return invalid("'platform.os' must be Linux or Windows.");
  const timeout = request.timeout ?? 3600;
  // The spec's range for a run timeout, in seconds.
  if (typeof timeout !== "number" || !Number.isInteger(timeout) || timeout < 300 || timeout > 28800)
    return invalid("'timeout' must be a whole number of seconds from 300 to 28800.");
  return { task, timeout };
}

function invalid(message: string): Answer {
  return { status: 400, body: { error: { code: "InvalidRequestContent", message } } };
}

function notFound(registry: RegistryState, runId: string): Answer {
  return {
    status: 404,
    body: {
      error: {
        code: "ResourceNotFound",
        message: `The run '${runId}' was not found in registry '${registry.name}'.`,
      },
    },
  };
}

function storageError(code: string, message: string): string {
  return `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:00000000-0000-0000-0000-000000000000\nTime:${new Date().toISOString()}</Message></Error>`;
}

function logTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

function toNumber(address: string): number {
  return address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
}

function fromNumber(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function contains(rule: string, address: number): boolean {
  const [base = "", lengthText = "32"] = rule.split("/");
  const size = 2 ** (32 - Number(lengthText));
  const start = toNumber(base) - (toNumber(base) % size);
  return address >= start && address < start + size;
}
