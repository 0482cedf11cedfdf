import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { isIPv4, isIPv6, type AddressInfo, type Socket } from "node:net";
import { SERVICE_TAGS_API_PATH, ServiceTagsApiEmulator } from "./service-tags-api.js";
import { setTimeout as delay } from "node:timers/promises";
import { serverTlsOptions } from "./tls.js";
import { TASKS_API_VERSION, TasksEmulation, type TasksBehaviour, type TasksFault } from "./arm-tasks.js";

/**
 * A local Azure Resource Manager for `Microsoft.ContainerRegistry/registries`, served over HTTPS
 * because the SDK refuses bearer tokens over http. It speaks the wire format of api-version
 * 2025-11-01 (the default of @azure/arm-containerregistry 12.x): GET/PATCH of a registry, the
 * Azure-AsyncOperation polling of a PATCH, `listUsages` and the paged replications list. It
 * validates PATCHes like ACR (Premium only, IPv4 only, the IP rule quota) and injects faults on
 * demand. It also answers Azure Resource Graph queries for tagged registries (paged with
 * `$skipToken`, with the per-user quota headers), can throttle registry calls per subscription like
 * ARM's token buckets (429 + Retry-After) and can add latency to every answer (azure-facts §8, §9).
 * No test-framework imports: the offline demo runs it from dist/.
 *
 * ACR Tasks (api-version 2019-06-01-preview, used by the canary) live in `./arm-tasks.ts`:
 * `scheduleRun` as a long-running operation, runs whose state moves over time, `listLogSasUrl`
 * pointing at a log blob served here, and agents refused unless the registry's rules admit them.
 */

export const ARM_API_VERSION = "2025-11-01";
export const RESOURCE_GRAPH_API_VERSION = "2024-04-01";
export const RESOURCE_GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources";
export const REGISTRY_ACTIONS = {
  get: "Microsoft.ContainerRegistry/registries/read",
  patch: "Microsoft.ContainerRegistry/registries/write",
  poll: "Microsoft.ContainerRegistry/registries/operationStatuses/read",
  usages: "Microsoft.ContainerRegistry/registries/listUsages/read",
  replications: "Microsoft.ContainerRegistry/registries/replications/read",
  scheduleRun: "Microsoft.ContainerRegistry/registries/scheduleRun/action",
  getRun: "Microsoft.ContainerRegistry/registries/runs/read",
  listLogSasUrl: "Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action",
} as const;

export type ArmOp = keyof typeof REGISTRY_ACTIONS;
export type Sku = "Basic" | "Standard" | "Premium";
export type SingleAddressStorage = "as-sent" | "bare" | "cidr32";

export interface RegistrySpec {
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
  readonly name: string;
  readonly location: string;
  readonly sku?: Sku;
  readonly defaultAction?: "Allow" | "Deny";
  readonly ipRules?: readonly string[];
  /** `undefined` leaves the property out of GET answers (older registries). */
  readonly publicNetworkAccess?: "Enabled" | "Disabled";
  readonly networkRuleBypassOptions?: "AzureServices" | "None";
  readonly networkRuleBypassAllowedForTasks?: boolean;
  readonly provisioningState?: string;
  /** Replica locations as `replications.list` returns them (include the home location to be faithful). */
  readonly replicaLocations?: readonly string[];
  /** IP rule quota. `null` keeps enforcing 100 but leaves `IPRules` out of `listUsages`. Default 100. */
  readonly ruleLimit?: number | null;
  /** How a single address is stored: ACR is reported to do both (azure-facts §3). Default as sent. */
  readonly storeSingleAddressAs?: SingleAddressStorage;
  /** Actions the caller's role lacks on this registry: answered 403 `AuthorizationFailed`. */
  readonly deniedActions?: readonly string[];
  /** ARM resource tags (names case-insensitive, values as given). */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Legacy (service-endpoint) virtual-network rules on the registry: invisible in the 2025-11-01
   * documents, counted by `listUsages` as `VNetRules`. Default 0.
   */
  readonly legacyVirtualNetworkRules?: number;
}

/** The emulator's view of a registry (a copy; change it with the emulator's methods). */
export interface RegistryState {
  readonly id: string;
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly name: string;
  readonly location: string;
  readonly sku: Sku;
  readonly defaultAction: "Allow" | "Deny";
  readonly ipRules: readonly string[];
  readonly publicNetworkAccess: "Enabled" | "Disabled" | undefined;
  readonly networkRuleBypassOptions: "AzureServices" | "None";
  readonly networkRuleBypassAllowedForTasks: boolean;
  readonly provisioningState: string;
  readonly replicaLocations: readonly string[];
  readonly ruleLimit: number | null;
  readonly storeSingleAddressAs: SingleAddressStorage;
  readonly deniedActions: readonly string[];
  readonly tags: Readonly<Record<string, string>>;
  readonly legacyVirtualNetworkRules: number;
}

type MutableRegistry = { -readonly [K in keyof RegistryState]: RegistryState[K] };

export type Fault =
  /** An HTTP answer with an ARM error body (or `body` verbatim, e.g. a malformed 200 document). */
  | {
      readonly kind: "status";
      readonly status: number;
      readonly code?: string;
      readonly message?: string;
      readonly retryAfterSeconds?: number;
      readonly body?: unknown;
    }
  /** The socket is destroyed without an answer. */
  | { readonly kind: "reset" }
  /** No answer at all until the client gives up (closed by `close()`). */
  | { readonly kind: "hang" }
  /** The normal answer, `ms` later (a slow ARM); nothing is answered if the client gave up meanwhile. */
  | { readonly kind: "delay"; readonly ms: number }
  /** On a PATCH: accepted (201), then the operation ends `Failed`; nothing is applied. */
  | { readonly kind: "lro-failed"; readonly code?: string; readonly message?: string }
  /** On a PATCH: accepted (201), then the operation stays `InProgress` forever. */
  | { readonly kind: "lro-stuck" }
  /**
   * Someone else writes: `before` the matched request is handled (e.g. between our read and our
   * PATCH), or `after` it (for a PATCH: right after its change is applied).
   */
  | {
      readonly kind: "concurrent-writer";
      readonly when: "before" | "after";
      readonly write: (emulator: ArmEmulator, registryId: string) => void;
    }
  /** ACR Tasks only (see `./arm-tasks.ts`): how a scheduled run ends, or an unreadable log. */
  | TasksFault;

export interface FaultRule {
  /** `query` is a Resource Graph query. */
  readonly op: ArmOp | "query" | "any";
  /** How many matching requests it hits (default 1; `Infinity` for all). */
  readonly times?: number;
  /** Only requests for this registry (any spelling of the ID). */
  readonly registryId?: string;
  readonly fault: Fault;
}

export interface ArmRequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly op: ArmOp | "query" | "unknown";
  readonly registryId: string | undefined;
  /** The HTTP status answered, or how the request ended without one. */
  status: number | "reset" | "hang";
  readonly fault: Fault["kind"] | undefined;
  /** The raw request body (PATCH and POST: Resource Graph queries, Tasks runs). */
  readonly body: string | undefined;
  /** The latency added before the answer, in ms. */
  readonly latencyMs: number;
}

export interface ArmEmulatorBehaviour {
  /** Answer PATCH with 201 + Azure-AsyncOperation (`async`, default) or 200 with the result (`sync`). */
  readonly patchResponse?: "async" | "sync";
  /** `InProgress` answers before an operation succeeds (default 1). */
  readonly pollsBeforeDone?: number;
  /** `Retry-After` on 201 and on `InProgress` polls, in seconds (default 0: the SDK's own interval). */
  readonly retryAfterSeconds?: number;
  /** Replications per page; more are reached through `nextLink` (default 100). */
  readonly replicationsPageSize?: number;
  /** Added before every answer, in ms (default 0): a stand-in for the round trip to ARM. */
  readonly latencyMs?: number;
  /**
   * Per-subscription token buckets for registry calls, like ARM's (reads 250 then 25/s, writes 200
   * then 10/s in the public cloud). Beyond them: 429 `SubscriptionRequestsThrottled` + Retry-After.
   * `null` (default) never throttles.
   */
  readonly throttle?: ThrottleLimits | null;
  /** Resource Graph queries per window and the window (default 15 per 5 s, the documented example). */
  readonly resourceGraphQuota?: { readonly queries: number; readonly windowMs: number };
  /** ACR Tasks timing and answers (see `./arm-tasks.ts`). */
  readonly tasks?: TasksBehaviour;
  /**
   * api-versions the registry API answers (default: 2025-11-01 only). A sovereign cloud that has
   * not got the newest yet: `["2023-07-01"]` (same wire shape for what the emulator serves).
   */
  readonly registryApiVersions?: readonly string[];
  /** How an unsupported version is refused (both are documented ARM answers). Default InvalidApiVersionParameter. */
  readonly unsupportedApiVersionCode?: "InvalidApiVersionParameter" | "NoRegisteredProviderFound";
}

export interface ThrottleLimits {
  readonly reads: { readonly capacity: number; readonly refillPerSecond: number };
  readonly writes: { readonly capacity: number; readonly refillPerSecond: number };
}

export interface ArmEmulatorOptions extends ArmEmulatorBehaviour {
  /** Decides whether a bearer token is valid, e.g. `identity.tokenValidator()`. */
  readonly acceptToken: (token: string) => boolean;
}

interface Operation {
  readonly id: string;
  readonly registryKey: string;
  readonly apply: () => void;
  outcome: "succeeded" | { readonly code: string; readonly message: string } | "stuck";
  pollsLeft: number;
  finished: boolean;
}

interface Bucket {
  tokens: number;
  at: number;
}

export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

const REGISTRY_PATH =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerRegistry\/registries\/([^/]+)(?:\/(listUsages|replications|operationStatuses\/([^/]+)|scheduleRun|runs\/[^/]+(?:\/listLogSasUrl)?))?\/?$/i;
const DEFAULT_RULE_LIMIT = 100;
const MAX_BODY_BYTES = 1024 * 1024;
const PRINCIPAL_ID = "9f3c2b1a-0000-4000-8000-00000000c0de";

export function quotaExceededMessage(limit: number, sku: string): string {
  return `The requested feature IP rule exceeds allowed quota ${limit} for the SKU ${sku}.`;
}

export function registryResourceId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.ContainerRegistry/registries/${name}`;
}

export class ArmEmulator {
  readonly requests: ArmRequestRecord[] = [];
  /** `Microsoft.Network/locations/{location}/serviceTags` (its requests are logged there, not in `requests`). */
  readonly serviceTagsApi = new ServiceTagsApiEmulator();
  private appliedWrites = 0;
  private readonly registries = new Map<string, MutableRegistry>();
  private readonly operations = new Map<string, Operation>();
  private readonly faults: { rule: FaultRule; left: number }[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly managementGroups = new Map<string, string[]>();
  private readonly buckets = new Map<string, Bucket>();
  private graphWindow: number[] = [];
  private throttledAnswers = 0;
  private behaviour: Required<Omit<ArmEmulatorBehaviour, "tasks">> = {
    patchResponse: "async",
    pollsBeforeDone: 1,
    retryAfterSeconds: 0,
    replicationsPageSize: 100,
    registryApiVersions: [ARM_API_VERSION],
    unsupportedApiVersionCode: "InvalidApiVersionParameter",
    latencyMs: 0,
    throttle: null,
    resourceGraphQuota: { queries: 15, windowMs: 5_000 },
  };
  private readonly server = createServer(serverTlsOptions(), (req, res) => {
    // A client that gives up mid-request must not crash the emulator.
    this.handle(req, res).catch(() => req.socket.destroy());
  });
  private baseUrl = "";
  /** ACR Tasks: runs, agents and log blobs. */
  readonly tasks = new TasksEmulation({
    registry: (id) => this.find(id),
    baseUrl: () => this.baseUrl,
    addOperation: (registryId, apply) => this.addOperation(registryId, apply),
  });

  constructor(private readonly options: ArmEmulatorOptions) {
    this.configure(options);
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** PATCH changes applied to a registry (accepted and, when asynchronous, succeeded). */
  get writes(): number {
    return this.appliedWrites;
  }

  /** `https://127.0.0.1:<port>`: pass it as the SDK's `endpoint`. */
  get url(): string {
    return this.baseUrl;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        resolve();
      });
    });
    this.baseUrl = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Closes the server and every connection, hanging ones included. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  configure(behaviour: ArmEmulatorBehaviour): void {
    const current = this.behaviour;
    this.behaviour = {
      patchResponse: behaviour.patchResponse ?? current.patchResponse,
      pollsBeforeDone: behaviour.pollsBeforeDone ?? current.pollsBeforeDone,
      retryAfterSeconds: behaviour.retryAfterSeconds ?? current.retryAfterSeconds,
      replicationsPageSize: behaviour.replicationsPageSize ?? current.replicationsPageSize,
      registryApiVersions: behaviour.registryApiVersions ?? current.registryApiVersions,
      unsupportedApiVersionCode: behaviour.unsupportedApiVersionCode ?? current.unsupportedApiVersionCode,
      latencyMs: behaviour.latencyMs ?? current.latencyMs,
      throttle: behaviour.throttle === undefined ? current.throttle : behaviour.throttle,
      resourceGraphQuota: behaviour.resourceGraphQuota ?? current.resourceGraphQuota,
    };
    if (behaviour.tasks !== undefined) this.tasks.configure(behaviour.tasks);
    this.buckets.clear();
  }

  /** 429 answers sent by the subscription buckets and the Resource Graph quota (not injected faults). */
  get throttled(): number {
    return this.throttledAnswers;
  }

  /** A management group holding these subscriptions, for Resource Graph queries scoped to it. */
  addManagementGroup(name: string, subscriptionIds: readonly string[]): void {
    this.managementGroups.set(
      name.toLowerCase(),
      subscriptionIds.map((s) => s.toLowerCase()),
    );
  }

  /** Adds a registry and returns its resource ID. */
  addRegistry(spec: RegistrySpec): string {
    const subscriptionId = spec.subscriptionId ?? "00000000-0000-0000-0000-000000000001";
    const resourceGroup = spec.resourceGroup ?? "rg-registry";
    const id = registryResourceId(subscriptionId, resourceGroup, spec.name);
    this.registries.set(id.toLowerCase(), {
      id,
      subscriptionId,
      resourceGroup,
      name: spec.name,
      location: spec.location,
      sku: spec.sku ?? "Premium",
      defaultAction: spec.defaultAction ?? "Allow",
      ipRules: [...(spec.ipRules ?? [])],
      publicNetworkAccess: "publicNetworkAccess" in spec ? spec.publicNetworkAccess : "Enabled",
      networkRuleBypassOptions: spec.networkRuleBypassOptions ?? "AzureServices",
      networkRuleBypassAllowedForTasks: spec.networkRuleBypassAllowedForTasks ?? false,
      provisioningState: spec.provisioningState ?? "Succeeded",
      replicaLocations: [...(spec.replicaLocations ?? [spec.location])],
      ruleLimit: spec.ruleLimit === undefined ? DEFAULT_RULE_LIMIT : spec.ruleLimit,
      storeSingleAddressAs: spec.storeSingleAddressAs ?? "as-sent",
      deniedActions: [...(spec.deniedActions ?? [])],
      tags: { ...spec.tags },
      legacyVirtualNetworkRules: spec.legacyVirtualNetworkRules ?? 0,
    });
    return id;
  }

  registry(id: string): RegistryState {
    const registry = this.find(id);
    return {
      ...registry,
      ipRules: [...registry.ipRules],
      replicaLocations: [...registry.replicaLocations],
      deniedActions: [...registry.deniedActions],
      tags: { ...registry.tags },
    };
  }

  /** Someone else replaced the rules (portal, az CLI): not counted in `writes`. */
  setIpRules(id: string, ipRules: readonly string[]): void {
    this.find(id).ipRules = [...ipRules];
  }

  /** Changes any other part of a registry's state directly. */
  updateRegistry(
    id: string,
    changes: Partial<Omit<RegistryState, "id" | "subscriptionId" | "resourceGroup" | "name">>,
  ): void {
    Object.assign(this.find(id), changes);
  }

  injectFault(rule: FaultRule): void {
    this.faults.push({ rule, left: rule.times ?? 1 });
  }

  /** Faults injected but not yet used up. */
  get pendingFaults(): number {
    return this.faults.filter((entry) => entry.left > 0).length;
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** The parsed bodies of the PATCHes received (for one registry, or all). */
  patchBodies(registryId?: string): unknown[] {
    return this.requests
      .filter(
        (r) =>
          r.method === "PATCH" &&
          (registryId === undefined || r.registryId?.toLowerCase() === registryId.toLowerCase()),
      )
      .map((r) => JSON.parse(r.body ?? "null") as unknown);
  }

  // ---- request handling ------------------------------------------------------------------------

  private find(id: string): MutableRegistry {
    const registry = this.registries.get(id.toLowerCase());
    if (registry === undefined) throw new Error(`ARM emulator: no registry ${id}`);
    return registry;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    if (SERVICE_TAGS_API_PATH.test(url.pathname)) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      this.serviceTagsApi.handle(req, res, url, token !== undefined && this.options.acceptToken(token), this.baseUrl);
      return;
    }
    // Run logs are blobs behind a SAS, not ARM: no bearer token, no api-version.
    if (this.tasks.isLogBlob(url)) {
      const blob = this.tasks.serveLog(req, url);
      res.writeHead(blob.status, blob.headers);
      res.end(blob.body);
      return;
    }
    const match = REGISTRY_PATH.exec(url.pathname);
    const method = req.method ?? "GET";
    const isQuery =
      method === "POST" && url.pathname.replace(/\/+$/, "").toLowerCase() === RESOURCE_GRAPH_PATH.toLowerCase();
    const op = isQuery ? "query" : classify(method, match);
    const target = match === null ? undefined : targetOf(match);
    const registryId = target?.id;
    const body = method === "PATCH" || method === "POST" ? await readBody(req) : undefined;
    const latencyMs = this.behaviour.latencyMs;
    if (latencyMs > 0) await delay(latencyMs);
    const fault = op === "unknown" ? undefined : this.takeFault(op, registryId);
    const record: ArmRequestRecord = {
      method,
      path: url.pathname,
      query: url.search,
      op,
      registryId,
      status: 0,
      fault: fault?.kind,
      body,
      latencyMs,
    };
    this.requests.push(record);

    if (fault?.kind === "hang") {
      record.status = "hang";
      return;
    }
    if (fault?.kind === "reset") {
      record.status = "reset";
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "delay") {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, fault.ms);
        timer.unref();
        req.socket.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (req.socket.destroyed) {
        record.status = "hang";
        return;
      }
    }
    if (fault?.kind === "concurrent-writer" && fault.when === "before" && registryId !== undefined)
      fault.write(this, registryId);
    const throttled = fault === undefined && op !== "unknown" ? this.throttle(op, target, req) : undefined;
    const answer =
      fault?.kind === "status"
        ? statusFault(fault)
        : (throttled ??
          (op === "query" ? this.query(req, url, body ?? "") : this.answer(req, url, op, target, body, fault)));
    if (fault?.kind === "concurrent-writer" && fault.when === "after" && op !== "patch" && registryId !== undefined)
      fault.write(this, registryId);
    record.status = answer.status;
    res.writeHead(answer.status, {
      "content-type": "application/json; charset=utf-8",
      "x-ms-request-id": randomUUID(),
      ...answer.headers,
    });
    res.end(
      answer.body === undefined
        ? undefined
        : typeof answer.body === "string"
          ? answer.body
          : JSON.stringify(answer.body),
    );
  }

  private takeFault(op: ArmOp | "query", registryId: string | undefined): Fault | undefined {
    const entry = this.faults.find(
      ({ rule, left }) =>
        left > 0 &&
        (rule.op === "any" || rule.op === op) &&
        (rule.registryId === undefined || rule.registryId.toLowerCase() === registryId?.toLowerCase()),
    );
    if (entry === undefined) return undefined;
    entry.left -= 1;
    return entry.rule.fault;
  }

  /** ARM's per-subscription buckets (registry calls) and Resource Graph's per-user window (queries). */
  private throttle(op: ArmOp | "query", target: Target | undefined, req: IncomingMessage): Answer | undefined {
    if (req.headers.authorization === undefined) return undefined;
    const now = Date.now();
    if (op === "query") {
      const { queries, windowMs } = this.behaviour.resourceGraphQuota;
      this.graphWindow = this.graphWindow.filter((at) => at > now - windowMs);
      const resetsAfterMs = this.graphWindow.length === 0 ? windowMs : (this.graphWindow[0] ?? now) + windowMs - now;
      const resets = hhmmss(resetsAfterMs);
      if (this.graphWindow.length >= queries) {
        this.throttledAnswers += 1;
        return armError(429, "RateLimiting", "Please provide below info when asking for support: too many requests.", {
          "retry-after": String(Math.ceil(resetsAfterMs / 1000)),
          "x-ms-user-quota-remaining": "0",
          "x-ms-user-quota-resets-after": resets,
        });
      }
      this.graphWindow.push(now);
      return undefined;
    }
    const limits = this.behaviour.throttle;
    if (limits === null || target === undefined) return undefined;
    const kind = op === "patch" || req.method === "POST" ? "writes" : "reads";
    const { capacity, refillPerSecond } = limits[kind];
    const subscription = target.id.split("/")[2]?.toLowerCase() ?? "";
    const key = `${subscription}:${kind}`;
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * refillPerSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) {
      this.throttledAnswers += 1;
      const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerSecond));
      return armError(
        429,
        "SubscriptionRequestsThrottled",
        `Number of ${kind === "reads" ? "read" : "write"} requests for subscription '${subscription}' exceeded the limit. Please try again after '${retryAfter}' seconds.`,
        { "retry-after": String(retryAfter), [`x-ms-ratelimit-remaining-subscription-${kind}`]: "0" },
      );
    }
    bucket.tokens -= 1;
    return undefined;
  }

  /**
   * Resource Graph: understands the one query shape discovery sends (registries whose tag, name
   * compared case-insensitively, has a value) and refuses any other, so a changed query cannot
   * pass against this emulator by accident.
   */
  private query(req: IncomingMessage, url: URL, text: string): Answer {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (token === undefined || !this.options.acceptToken(token))
      return armError(401, "InvalidAuthenticationToken", "The access token is invalid.");
    if (url.searchParams.get("api-version") !== RESOURCE_GRAPH_API_VERSION)
      return armError(
        400,
        "InvalidApiVersionParameter",
        `The api-version '${url.searchParams.get("api-version") ?? ""}' is invalid. The supported versions are '${RESOURCE_GRAPH_API_VERSION}'.`,
      );
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return armError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.");
    }
    if (!isObject(body) || typeof body.query !== "string")
      return armError(400, "InvalidRequestContent", "The request content was invalid: 'query' is required.");
    const shape = REGISTRY_QUERY.exec(body.query.replace(/\s+/g, " ").trim());
    if (shape === null) return armError(400, "InvalidQuery", "Query validation error: this emulator knows one query.");
    const [, tagKey = "", tagValue = ""] = shape;
    const options = isObject(body.options) ? body.options : {};
    const top = typeof options.$top === "number" ? options.$top : 100;
    if (!Number.isInteger(top) || top < 1 || top > 1000)
      return armError(400, "BadRequest", "The $top value must be between 1 and 1000.");
    const scopeSubscriptions = new Set<string>();
    for (const s of Array.isArray(body.subscriptions) ? body.subscriptions : [])
      if (typeof s === "string") scopeSubscriptions.add(s.toLowerCase());
    for (const g of Array.isArray(body.managementGroups) ? body.managementGroups : []) {
      const members = typeof g === "string" ? this.managementGroups.get(g.toLowerCase()) : undefined;
      if (members === undefined)
        return armError(403, "AuthorizationFailed", `No access to management group '${String(g)}'.`);
      for (const s of members) scopeSubscriptions.add(s);
    }
    const scoped = Array.isArray(body.subscriptions) || Array.isArray(body.managementGroups);
    const rows = [...this.registries.values()]
      .filter((r) => !scoped || scopeSubscriptions.has(r.subscriptionId.toLowerCase()))
      .filter((r) =>
        Object.entries(r.tags).some(
          ([k, v]) => k.toLowerCase() === tagKey.toLowerCase() && v.toLowerCase() === tagValue.toLowerCase(),
        ),
      )
      .sort((a, b) => (a.id.toLowerCase() < b.id.toLowerCase() ? -1 : 1));
    let offset = 0;
    if (typeof options.$skipToken === "string") {
      const decoded = Number(
        Buffer.from(options.$skipToken, "base64")
          .toString("utf8")
          .replace(/^offset:/, ""),
      );
      if (!Number.isInteger(decoded) || decoded < 0)
        return armError(400, "BadRequest", "The $skipToken is invalid or expired.");
      offset = decoded;
    }
    const page = rows.slice(offset, offset + top).map((r) => ({
      id: r.id,
      name: r.name,
      location: r.location,
      sku: r.sku,
      tags: { ...r.tags },
      subscriptionId: r.subscriptionId,
      resourceGroup: r.resourceGroup.toLowerCase(),
    }));
    const next = offset + top < rows.length ? Buffer.from(`offset:${offset + top}`).toString("base64") : undefined;
    const { queries, windowMs } = this.behaviour.resourceGraphQuota;
    const oldest = this.graphWindow[0] ?? Date.now();
    return {
      status: 200,
      body: {
        totalRecords: rows.length,
        count: page.length,
        resultTruncated: "false",
        ...(next === undefined ? {} : { $skipToken: next }),
        data: page,
      },
      headers: {
        "x-ms-user-quota-remaining": String(Math.max(0, queries - this.graphWindow.length)),
        "x-ms-user-quota-resets-after": hhmmss(oldest + windowMs - Date.now()),
      },
    };
  }

  private answer(
    req: IncomingMessage,
    url: URL,
    op: ArmOp | "unknown",
    target: Target | undefined,
    body: string | undefined,
    fault: Fault | undefined,
  ): Answer {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (token === undefined)
      return armError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.");
    if (!this.options.acceptToken(token))
      return armError(401, "InvalidAuthenticationToken", "The access token is invalid.");
    const apiVersion = url.searchParams.get("api-version");
    if (apiVersion === null)
      return armError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
      );
    // Tasks answer only on their preview version; a poll URL carries the version of the operation it follows.
    const versions =
      op === "scheduleRun" || op === "getRun" || op === "listLogSasUrl"
        ? [TASKS_API_VERSION]
        : op === "poll"
          ? [...this.behaviour.registryApiVersions, TASKS_API_VERSION]
          : this.behaviour.registryApiVersions;
    if (!versions.includes(apiVersion) && this.behaviour.unsupportedApiVersionCode === "NoRegisteredProviderFound") {
      return armError(
        400,
        "NoRegisteredProviderFound",
        `No registered resource provider found for location 'japaneast' and API version '${apiVersion}' for type 'registries'. The supported api-versions are '${versions.join(", ")}'. The supported locations are 'japaneast, eastus, westeurope'.`,
      );
    }
    if (!versions.includes(apiVersion)) {
      return armError(
        400,
        "InvalidApiVersionParameter",
        `The api-version '${apiVersion}' is invalid. The supported versions are '${versions.join("', '")}'.`,
      );
    }
    if (op === "unknown" || target === undefined)
      return armError(404, "NotFound", `No HTTP resource was found that matches the request URI '${url.pathname}'.`);
    const registry = this.registries.get(target.id.toLowerCase());
    if (registry?.deniedActions.includes(REGISTRY_ACTIONS[op])) {
      return armError(
        403,
        "AuthorizationFailed",
        `The client '${PRINCIPAL_ID}' with object id '${PRINCIPAL_ID}' does not have authorization to perform action '${REGISTRY_ACTIONS[op]}' over scope '${registry.id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    }
    if (registry === undefined) {
      return armError(
        404,
        "ResourceNotFound",
        `The Resource 'Microsoft.ContainerRegistry/registries/${target.name}' under resource group '${target.resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
      );
    }
    switch (op) {
      case "get":
        return { status: 200, body: registryDocument(registry) };
      case "patch":
        return this.patch(registry, body ?? "", fault, apiVersion);
      case "poll":
        return this.poll(registry, decodeURIComponent(url.pathname.split("/").pop() ?? ""));
      case "usages":
        return { status: 200, body: usagesDocument(registry) };
      case "replications":
        return this.replications(registry, url);
      case "scheduleRun":
        return this.tasks.scheduleRun(registry, body ?? "", fault, this.behaviour.retryAfterSeconds);
      case "getRun":
        return this.tasks.getRun(registry, runIdOf(url.pathname));
      case "listLogSasUrl":
        return this.tasks.listLogSasUrl(registry, runIdOf(url.pathname), fault);
    }
  }

  /** A long-running operation followed through `operationStatuses` (PATCH and scheduleRun share them). */
  private addOperation(registryId: string, apply: () => void): string {
    const operation: Operation = {
      id: `registries-${randomUUID()}`,
      registryKey: registryId.toLowerCase(),
      apply,
      outcome: "succeeded",
      pollsLeft: this.behaviour.pollsBeforeDone,
      finished: false,
    };
    this.operations.set(operation.id, operation);
    return operation.id;
  }

  private patch(registry: MutableRegistry, text: string, fault: Fault | undefined, apiVersion: string): Answer {
    const parsed = parsePatch(registry, text);
    if ("status" in parsed) return parsed;
    const apply = (): void => {
      Object.assign(registry, parsed.changes);
      this.appliedWrites += 1;
      if (fault?.kind === "concurrent-writer" && fault.when === "after") fault.write(this, registry.id);
    };
    const lroFault = fault?.kind === "lro-failed" || fault?.kind === "lro-stuck";
    if (this.behaviour.patchResponse === "sync" && !lroFault) {
      apply();
      return { status: 200, body: registryDocument(registry) };
    }
    const operation: Operation = {
      id: `registries-${randomUUID()}`,
      registryKey: registry.id.toLowerCase(),
      apply,
      outcome:
        fault?.kind === "lro-failed"
          ? {
              code: fault.code ?? "InternalServerError",
              message: fault.message ?? "The operation failed; please retry later.",
            }
          : fault?.kind === "lro-stuck"
            ? "stuck"
            : "succeeded",
      pollsLeft: this.behaviour.pollsBeforeDone,
      finished: false,
    };
    this.operations.set(operation.id, operation);
    const previousState = registry.provisioningState;
    registry.provisioningState = "Updating";
    const document = registryDocument(registry);
    registry.provisioningState = previousState;
    return {
      status: 201,
      body: document,
      headers: {
        // The operation URL carries the version of the request that started it, as ARM's do.
        "azure-asyncoperation": `${this.baseUrl}${registry.id}/operationStatuses/${operation.id}?api-version=${apiVersion}`,
        "retry-after": String(this.behaviour.retryAfterSeconds),
      },
    };
  }

  private poll(registry: MutableRegistry, operationId: string): Answer {
    const operation = this.operations.get(operationId);
    if (operation?.registryKey !== registry.id.toLowerCase()) {
      return armError(404, "OperationNotFound", `The operation '${operationId}' was not found.`);
    }
    const status = {
      id: `${registry.id}/operationStatuses/${operation.id}`,
      name: operation.id,
      startTime: new Date().toISOString(),
    };
    if (operation.outcome === "stuck" || operation.pollsLeft > 0) {
      operation.pollsLeft -= 1;
      return {
        status: 200,
        body: { ...status, status: "InProgress" },
        headers: { "retry-after": String(this.behaviour.retryAfterSeconds) },
      };
    }
    if (operation.outcome !== "succeeded")
      return { status: 200, body: { ...status, status: "Failed", error: operation.outcome } };
    if (!operation.finished) {
      operation.finished = true;
      operation.apply();
    }
    return { status: 200, body: { ...status, status: "Succeeded" } };
  }

  private replications(registry: MutableRegistry, url: URL): Answer {
    const skip = Number(url.searchParams.get("$skipToken") ?? "0");
    const size = this.behaviour.replicationsPageSize;
    const page = registry.replicaLocations.slice(skip, skip + size).map((location) => ({
      id: `${registry.id}/replications/${location}`,
      name: location,
      type: "Microsoft.ContainerRegistry/registries/replications",
      location,
      properties: {
        provisioningState: "Succeeded",
        status: { displayStatus: "Ready" },
        regionEndpointEnabled: true,
        zoneRedundancy: "Disabled",
      },
    }));
    const more = skip + size < registry.replicaLocations.length;
    const nextLink = `${this.baseUrl}${registry.id}/replications?api-version=${ARM_API_VERSION}&$skipToken=${skip + size}`;
    return { status: 200, body: more ? { value: page, nextLink } : { value: page } };
  }
}

export async function startArmEmulator(options: ArmEmulatorOptions): Promise<ArmEmulator> {
  return new ArmEmulator(options).listen();
}

// ---- wire documents ----------------------------------------------------------------------------

// What src/discovery/query.ts sends (whitespace folded): registries, the tag by name =~ and value =~.
const REGISTRY_QUERY =
  /^Resources \| where type =~ 'microsoft\.containerregistry\/registries' \| mv-expand bagexpansion=array tag = tags \| where tostring\(tag\[0\]\) =~ '([^']*)' and tostring\(tag\[1\]\) =~ '([^']*)' \| project id, name, location, sku = tostring\(sku\.name\), tags, subscriptionId, resourceGroup \| order by id asc$/;

function hhmmss(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${pad(Math.floor(total / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
}

interface Target {
  readonly id: string;
  readonly resourceGroup: string;
  readonly name: string;
}

function targetOf(match: RegExpExecArray): Target {
  const [subscriptionId = "", resourceGroup = "", name = ""] = match
    .slice(1, 4)
    .map((part) => decodeURIComponent(part));
  return { id: registryResourceId(subscriptionId, resourceGroup, name), resourceGroup, name };
}

function classify(method: string, match: RegExpExecArray | null): ArmOp | "unknown" {
  if (match === null) return "unknown";
  const sub = match[4]?.toLowerCase();
  if (sub === undefined) return method === "GET" ? "get" : method === "PATCH" ? "patch" : "unknown";
  if (sub === "schedulerun") return method === "POST" ? "scheduleRun" : "unknown";
  if (sub.startsWith("runs/")) {
    if (sub.endsWith("/listlogsasurl")) return method === "POST" ? "listLogSasUrl" : "unknown";
    return method === "GET" ? "getRun" : "unknown";
  }
  if (method !== "GET") return "unknown";
  return sub === "listusages" ? "usages" : sub === "replications" ? "replications" : "poll";
}

function runIdOf(pathname: string): string {
  const parts = pathname.split("/");
  const index = parts.findIndex((part) => part.toLowerCase() === "runs");
  return decodeURIComponent(parts[index + 1] ?? "");
}

function registryDocument(registry: RegistryState): unknown {
  return {
    id: registry.id,
    name: registry.name,
    type: "Microsoft.ContainerRegistry/registries",
    location: registry.location,
    tags: { ...registry.tags },
    sku: { name: registry.sku, tier: registry.sku },
    properties: {
      loginServer: `${registry.name.toLowerCase()}.azurecr.io`,
      creationDate: "2024-05-06T07:08:09.1234567Z",
      provisioningState: registry.provisioningState,
      adminUserEnabled: false,
      // ARM leaves networkRuleSet out for SKUs that cannot have one.
      ...(registry.sku === "Premium"
        ? {
            networkRuleSet: {
              defaultAction: registry.defaultAction,
              ipRules: registry.ipRules.map((value) => ({ action: "Allow", value })),
            },
          }
        : {}),
      ...(registry.publicNetworkAccess === undefined ? {} : { publicNetworkAccess: registry.publicNetworkAccess }),
      networkRuleBypassOptions: registry.networkRuleBypassOptions,
      networkRuleBypassAllowedForTasks: registry.networkRuleBypassAllowedForTasks,
      zoneRedundancy: "Disabled",
      anonymousPullEnabled: false,
    },
  };
}

function usagesDocument(registry: RegistryState): unknown {
  const ipRules =
    registry.ruleLimit === null
      ? []
      : [{ name: "IPRules", limit: registry.ruleLimit, currentValue: registry.ipRules.length, unit: "Count" }];
  return {
    value: [
      { name: "Size", limit: 536_870_912_000, currentValue: 1_234_567, unit: "Bytes" },
      { name: "Webhooks", limit: 500, currentValue: 0, unit: "Count" },
      ...ipRules,
      { name: "VNetRules", limit: 100, currentValue: registry.legacyVirtualNetworkRules, unit: "Count" },
    ],
  };
}

function armError(status: number, code: string, message: string, headers?: Record<string, string>): Answer {
  return { status, body: { error: { code, message } }, ...(headers === undefined ? {} : { headers }) };
}

const DEFAULT_CODES: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "InvalidAuthenticationToken",
  403: "AuthorizationFailed",
  404: "ResourceNotFound",
  409: "Conflict",
  429: "TooManyRequests",
  500: "InternalServerError",
  502: "BadGateway",
  503: "ServiceUnavailable",
};

function statusFault(fault: Extract<Fault, { kind: "status" }>): Answer {
  const headers =
    fault.retryAfterSeconds === undefined ? undefined : { "retry-after": String(fault.retryAfterSeconds) };
  if (fault.body !== undefined)
    return { status: fault.status, body: fault.body, ...(headers === undefined ? {} : { headers }) };
  const code = fault.code ?? DEFAULT_CODES[fault.status] ?? "Error";
  return armError(fault.status, code, fault.message ?? `Injected ${fault.status} ${code}.`, headers);
}

// ---- PATCH validation, as ACR does it ----------------------------------------------------------

function parsePatch(registry: RegistryState, text: string): { changes: Partial<MutableRegistry> } | Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return armError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.");
  }
  const properties = isObject(body) && isObject(body.properties) ? body.properties : {};
  const changes: Partial<MutableRegistry> = {};
  if ("publicNetworkAccess" in properties) {
    if (properties.publicNetworkAccess !== "Enabled" && properties.publicNetworkAccess !== "Disabled")
      return invalidValue("publicNetworkAccess");
    changes.publicNetworkAccess = properties.publicNetworkAccess;
  }
  if ("networkRuleBypassOptions" in properties) {
    if (properties.networkRuleBypassOptions !== "AzureServices" && properties.networkRuleBypassOptions !== "None")
      return invalidValue("networkRuleBypassOptions");
    changes.networkRuleBypassOptions = properties.networkRuleBypassOptions;
  }
  if ("networkRuleBypassAllowedForTasks" in properties) {
    if (typeof properties.networkRuleBypassAllowedForTasks !== "boolean")
      return invalidValue("networkRuleBypassAllowedForTasks");
    changes.networkRuleBypassAllowedForTasks = properties.networkRuleBypassAllowedForTasks;
  }
  const ruleSet = properties.networkRuleSet;
  if (ruleSet === undefined || ruleSet === null) return { changes };
  if (registry.sku !== "Premium") {
    return armError(
      400,
      "NetworkRuleNotSupported",
      `Network rules are not supported for the SKU '${registry.sku}'. Network rules require the Premium SKU.`,
    );
  }
  if (!isObject(ruleSet) || (ruleSet.defaultAction !== "Allow" && ruleSet.defaultAction !== "Deny"))
    return invalidValue("networkRuleSet.defaultAction");
  const rules = ruleSet.ipRules ?? [];
  if (!Array.isArray(rules)) return invalidValue("networkRuleSet.ipRules");
  const values: string[] = [];
  for (const rule of rules) {
    const value: unknown = isObject(rule) ? rule.value : undefined;
    if (!isObject(rule) || (rule.action !== undefined && rule.action !== "Allow") || typeof value !== "string")
      return invalidValue("networkRuleSet.ipRules");
    const problem = ipv4RuleProblem(value);
    if (problem !== undefined)
      return armError(400, "InvalidIpRule", `The IP rule value '${value}' is invalid: ${problem}`);
    values.push(storeAs(value, registry.storeSingleAddressAs));
  }
  const limit = registry.ruleLimit ?? DEFAULT_RULE_LIMIT;
  // The quota code is not documented; the message is the one ACR answers (azure-facts §3).
  if (values.length > limit) return armError(400, "QuotaExceeded", quotaExceededMessage(limit, registry.sku));
  changes.defaultAction = ruleSet.defaultAction;
  changes.ipRules = values;
  // The PATCH replaces the whole rule set: one without virtualNetworkRules drops the legacy ones.
  if (!Array.isArray(ruleSet.virtualNetworkRules)) changes.legacyVirtualNetworkRules = 0;
  return { changes };
}

function ipv4RuleProblem(value: string): string | undefined {
  const [address = "", length, ...rest] = value.split("/");
  if (isIPv6(address))
    return "IPv6 addresses are not supported; only IPv4 addresses and ranges in CIDR notation are allowed.";
  const lengthOk = length === undefined || (/^\d{1,2}$/.test(length) && Number(length) <= 32);
  // isIPv4 accepts only dotted quads without leading zeros, as ACR does.
  if (!isIPv4(address) || !lengthOk || rest.length > 0)
    return "expected an IPv4 address or an IPv4 range in CIDR notation, like 203.0.113.0/24.";
  return undefined;
}

function storeAs(value: string, storage: SingleAddressStorage): string {
  if (storage === "bare" && value.endsWith("/32")) return value.slice(0, -3);
  if (storage === "cidr32" && !value.includes("/")) return `${value}/32`;
  return value;
}

function invalidValue(path: string): Answer {
  return armError(400, "InvalidRequestContent", `The request content was invalid: '${path}' has an invalid value.`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) break;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
