import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { APP_SETTINGS } from "../../src/config/settings.js";
import { MessagePoisonedError } from "../../src/errors.js";
import {
  canaryCompletedRecord,
  canaryMetricPoints,
  completedRecord,
  driftDetectedRecord,
  failedRecord,
  grantAddedRecord,
  grantExpiredRecord,
  grantOverdueRecord,
  fanoutScheduledRecord,
  guardTrippedRecord,
  registryUntaggedRecord,
} from "../../src/telemetry/records.js";
import { EVENT_NAMES, METRIC_DIMENSIONS, METRIC_NAMES } from "../../src/telemetry/types.js";
import {
  arrayItems,
  at,
  callArguments,
  callName,
  descendants,
  infraDir,
  loadInfraFiles,
  modules,
  objectProperties,
  parameters,
  parseBicep,
  resolve,
  resources,
  stringLiteral,
  stringText,
  syntaxProblems,
  variables,
  type BicepFile,
  type Node,
} from "./bicep-ast.js";

const files = loadInfraFiles();
const file = (name: string): BicepFile => {
  const found = files.find((f) => f.name === name);
  if (found === undefined) throw new Error(`infra/${name} is missing`);
  return found;
};
const resourcesOfType = (prefix: string) =>
  files.flatMap((f) =>
    resources(f.root)
      .filter((r) => r.type.toLowerCase().startsWith(prefix.toLowerCase() + "@"))
      .map((r) => ({ ...r, file: f })),
  );

// ---- what the code emits, computed from the code itself ----------------------------------------

const GRANT_EVENT = { registry: "r", rule: "", grantId: "", grantedBy: "", reason: "", expiresAt: "", trigger: "" };
const CANARY_EVENT = {
  registry: "r",
  region: "",
  ok: false,
  verdict: "refused",
  refusedIp: "",
  containingTags: [],
  runId: "",
  durationMs: 0,
  summary: "",
  advice: "",
  trigger: "",
};
const KNOWN_NAMES = new Set<string>([...Object.values(EVENT_NAMES), ...Object.values(METRIC_NAMES)]);
const EMITTED_PROPERTIES = new Set<string>([
  ...Object.keys(
    completedRecord({
      registry: "r",
      dryRun: false,
      adds: 0,
      removes: 0,
      rulesUsed: 0,
      ruleLimit: 0,
      extraAddresses: 0,
      tagChangeNumbers: "",
      sourceFile: "",
      durationMs: 0,
      trigger: "",
      sourceKind: "",
      dataAgeDays: 0,
      newestChangeNumber: 0,
    }).properties,
  ),
  ...Object.keys(
    failedRecord({ registry: "r", dryRun: false, errorType: "", message: "", durationMs: 0, trigger: "" }).properties,
  ),
  ...Object.keys(guardTrippedRecord({ registry: "r", dryRun: false, guard: "", message: "", trigger: "" }).properties),
  ...Object.keys(driftDetectedRecord({ registry: "r", missingOwnedRules: [], trigger: "" }).properties),
  ...Object.keys(grantAddedRecord({ ...GRANT_EVENT, createdAt: "" }).properties),
  ...Object.keys(grantExpiredRecord({ ...GRANT_EVENT, endedAt: "", revokedBy: "" }).properties),
  ...Object.keys(grantOverdueRecord({ ...GRANT_EVENT, overdueMinutes: 0 }).properties),
  ...Object.keys(registryUntaggedRecord({ registry: "r", trigger: "" }).properties),
  ...Object.keys(
    fanoutScheduledRecord({
      runId: "",
      registries: 0,
      skipped: 0,
      discovered: 0,
      serviceTagsBlob: "",
      durationMs: 0,
      trigger: "",
    }).properties,
  ),
  ...Object.keys(canaryCompletedRecord(CANARY_EVENT).properties),
  ...canaryMetricPoints(CANARY_EVENT).flatMap((point) => Object.keys(point.dimensions)),
  ...Object.values(METRIC_DIMENSIONS),
]);

/** Checks a KQL query against the telemetry contract; returns the event/metric names it uses. */
function contractNames(query: string): { names: string[]; unknownNames: string[]; unknownProperties: string[] } {
  const names = [...query.matchAll(/\b(Allowlist[A-Z][A-Za-z]+|allowlist_[a-z_]+)\b/g)].map((m) => m[1] ?? "");
  const properties = [...query.matchAll(/customDimensions\.([A-Za-z_]+)/g)].map((m) => m[1] ?? "");
  return {
    names,
    unknownNames: names.filter((n) => !KNOWN_NAMES.has(n)),
    unknownProperties: properties.filter((p) => !EMITTED_PROPERTIES.has(p)),
  };
}

// ---- the app settings the infra sets ----------------------------------------------------------

/** Settings the platform needs that the code does not read (so they are not in APP_SETTINGS). */
const PLATFORM_SETTINGS = new Set([
  "AzureWebJobsStorage__queueServiceUri",
  "AzureWebJobsStorage__tableServiceUri",
  "AzureWebJobsStorage__credential",
  "AzureWebJobsStorage__clientId",
  "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
]);

function appModuleSyncSettings(): Map<string, Node> {
  const appModule = modules(file("main.bicep").root).find((m) => m.path === "app.bicep");
  return objectProperties(at(appModule?.body, "params", "syncAppSettings"));
}

function appSettingsResourceSettings(): Map<string, Node> {
  const config = resources(file("app.bicep").root).find(
    (r) => r.type === "config" && stringLiteral(at(r.body, "name")) === "appsettings",
  );
  const value = at(config?.body, "properties");
  // `union(syncAppSettings, { ...platform settings... })`: collect every object literal argument.
  const objects =
    callName(value) === "union"
      ? callArguments(value).filter((a) => a.type === "object")
      : value === undefined
        ? []
        : [value];
  return new Map(objects.flatMap((o) => [...objectProperties(o)]));
}

const infraSettings = new Map([...appModuleSyncSettings(), ...appSettingsResourceSettings()]);

describe("infra templates", () => {
  it("has the templates azd deploys", () => {
    expect(files.map((f) => f.name)).toEqual(
      expect.arrayContaining(["main.bicep", "app.bicep", "alerts.bicep", "workbook.bicep", "registry-access.bicep"]),
    );
  });

  it.each(files.map((f) => [f.name, f] as const))("%s parses without syntax errors", (_name, bicep) => {
    expect(syntaxProblems(bicep.root)).toEqual([]);
  });

  it("detects a syntax error when there is one (the parse check can fail)", () => {
    expect(
      syntaxProblems(parseBicep("resource broken 'Microsoft.Web/sites@2024-04-01' = {\n  name: 'x'\n  properties: {\n"))
        .length,
    ).toBeGreaterThan(0);
  });

  it("passes every module exactly the parameters its template declares, required ones included", () => {
    for (const f of files) {
      for (const mod of modules(f.root)) {
        const target = file(mod.path);
        const declared = parameters(target.root);
        const given = [...objectProperties(at(mod.body, "params")).keys()];
        expect(
          given.filter((p) => !declared.has(p)),
          `${f.name} → ${mod.path}: unknown params`,
        ).toEqual([]);
        const required = [...declared.values()].filter((p) => p.defaultValue === undefined).map((p) => p.name);
        expect(
          required.filter((p) => !given.includes(p)),
          `${f.name} → ${mod.path}: missing params`,
        ).toEqual([]);
      }
    }
  });
});

describe("app settings", () => {
  it("sets every setting the code reads (except the ones the platform or the operator sets)", () => {
    const expected = APP_SETTINGS.filter((s) => s.setByInfra !== false).map((s) => s.name);
    expect(expected.filter((name) => !infraSettings.has(name))).toEqual([]);
  });

  it("sets no setting the code does not know, apart from the platform's own", () => {
    const known = new Set(APP_SETTINGS.map((s) => s.name));
    expect([...infraSettings.keys()].filter((name) => !known.has(name) && !PLATFORM_SETTINGS.has(name))).toEqual([]);
  });

  it("never sets FUNCTIONS_WORKER_RUNTIME or FUNCTIONS_EXTENSION_VERSION, which Flex Consumption rejects", () => {
    expect([...infraSettings.keys()].filter((k) => k.startsWith("FUNCTIONS_"))).toEqual([]);
  });

  it("keeps the code's defaults: a setting's parameter defaults to '' or to the documented default", () => {
    const mainParams = parameters(file("main.bicep").root);
    const mismatches: string[] = [];
    for (const [name, value] of appModuleSyncSettings()) {
      if (value.type !== "identifier") continue;
      const param = mainParams.get(value.text);
      const info = APP_SETTINGS.find((s) => s.name === name);
      const fallback = stringLiteral(param?.defaultValue);
      if (param?.defaultValue === undefined || info === undefined) continue;
      if (fallback !== "" && fallback !== info.default)
        mismatches.push(
          `${name}: infra default ${JSON.stringify(fallback)} vs code default ${JSON.stringify(info.default)}`,
        );
    }
    expect(mismatches).toEqual([]);
  });

  it("uses identity-based host storage and Entra ID telemetry, no connection string with a key", () => {
    expect(stringLiteral(infraSettings.get("AzureWebJobsStorage__credential"))).toBe("managedidentity");
    expect(infraSettings.has("AzureWebJobsStorage")).toBe(false);
    expect(infraSettings.get("AZURE_CLIENT_ID")?.text).toBe("identity.properties.clientId");
    expect(infraSettings.get("AzureWebJobsStorage__clientId")?.text).toBe("identity.properties.clientId");
    const auth = infraSettings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING");
    expect(auth?.text).toBe("entraIngestion ? 'ClientId=${identity.properties.clientId};Authorization=AAD' : ''");
  });
});

describe("function app", () => {
  const sites = resourcesOfType("Microsoft.Web/sites");

  it("runs on Node 22 through functionAppConfig (Flex Consumption)", () => {
    expect(sites).toHaveLength(1);
    const runtime = at(sites[0]?.body, "properties", "functionAppConfig", "runtime");
    expect(stringLiteral(at(runtime, "name"))).toBe("node");
    expect(stringLiteral(at(runtime, "version"))).toBe("22");
    const plan = resourcesOfType("Microsoft.Web/serverfarms")[0];
    expect(stringLiteral(at(plan?.body, "sku", "tier"))).toBe("FlexConsumption");
  });

  it("reads its deployment package with the user-assigned identity", () => {
    const auth = at(sites[0]?.body, "properties", "functionAppConfig", "deployment", "storage", "authentication");
    expect(stringLiteral(at(auth, "type"))).toBe("UserAssignedIdentity");
    expect(at(auth, "userAssignedIdentityResourceId")?.text).toBe("identity.id");
    expect(stringLiteral(at(sites[0]?.body, "identity", "type"))).toBe("UserAssigned");
  });
});

describe("identity-only access", () => {
  it("disables shared keys on the storage account", () => {
    const storage = resourcesOfType("Microsoft.Storage/storageAccounts");
    expect(storage).toHaveLength(1);
    expect(at(storage[0]?.body, "properties", "allowSharedKeyAccess")?.text).toBe("false");
    expect(at(storage[0]?.body, "properties", "allowBlobPublicAccess")?.text).toBe("false");
  });

  it("disables local authentication on Application Insights and makes it workspace-based", () => {
    const components = resourcesOfType("Microsoft.Insights/components");
    expect(components).toHaveLength(1);
    expect(at(components[0]?.body, "properties", "DisableLocalAuth")?.text).toBe("entraIngestion");
    expect(variables(file("app.bicep").root).get("entraIngestion")?.text).toBe("environment().name == 'AzureCloud'");
    expect(at(components[0]?.body, "properties", "WorkspaceResourceId")?.text).toBe("logAnalytics.id");
  });

  it("grants the identity blob owner, queue and table data roles on storage and Monitoring Metrics Publisher on App Insights", () => {
    const app = file("app.bicep");
    const roleIds = objectProperties(
      resolve(
        descendants(app.root, "identifier").find((i) => i.text === "roles"),
        variables(app.root),
      ),
    );
    const assignments = resources(app.root).filter((r) =>
      r.type.startsWith("Microsoft.Authorization/roleAssignments@"),
    );
    const granted = assignments
      .filter((a) => at(a.body, "properties", "principalId")?.text === "identity.properties.principalId")
      .map((a) => {
        const roleArg = callArguments(at(a.body, "properties", "roleDefinitionId"))[1]?.text ?? "";
        return `${stringLiteral(roleIds.get(roleArg.replace(/^roles\./, ""))) ?? roleArg} on ${at(a.body, "scope")?.text ?? ""}`;
      });
    expect(granted.sort()).toEqual(
      [
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b on storage", // Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88 on storage", // Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3 on storage", // Storage Table Data Contributor
        "3913510d-42f4-4e42-8a64-420c390055eb on appInsights", // Monitoring Metrics Publisher
      ].sort(),
    );
  });
});

describe("operator access", () => {
  it("lets the operator write the ledger container only, and only when operatorCanWriteLedger is set", () => {
    const app = file("app.bicep");
    const writer = resources(app.root).find((r) => r.symbol === "operatorLedgerWriter");
    expect(at(writer?.body, "scope")?.text).toBe("storage::blobService::ledger");
    expect(at(writer?.body, "properties", "principalId")?.text).toBe("operatorPrincipalId");
    const roleArg = callArguments(at(writer?.body, "properties", "roleDefinitionId"))[1]?.text;
    const roleIds = objectProperties(
      resolve(
        descendants(app.root, "identifier").find((i) => i.text === "roles"),
        variables(app.root),
      ),
    );
    // Storage Blob Data Contributor: leases (the lock), writes, no role management.
    expect(stringLiteral(roleIds.get((roleArg ?? "").replace(/^roles\./, "")))).toBe(
      "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    );
    const declaration = descendants(app.root, "resource_declaration").find(
      (d) => d.namedChildren[0]?.text === "operatorLedgerWriter",
    );
    const condition = declaration?.namedChildren.at(-1)?.namedChildren[0]?.text;
    expect(condition?.replace(/\s+/g, " ")).toBe("(!empty(operatorPrincipalId) && operatorCanWriteLedger)");
  });
});

describe("registry permissions", () => {
  const main = file("main.bicep");
  const role = resources(main.root).find((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@"));

  it("defines a custom role with exactly the four documented registry actions, plus replications/read only when replicas are synced", () => {
    const vars = variables(main.root);
    const permissions = arrayItems(resolve(at(role?.body, "properties", "permissions"), vars));
    expect(permissions).toHaveLength(1);
    const actions = resolve(at(permissions[0], "actions"), vars);
    expect(callName(actions)).toBe("concat");
    const [documented, replicas] = callArguments(actions).map((argument) => resolve(argument, vars));
    expect(
      arrayItems(documented)
        .map((n) => stringLiteral(n))
        .sort(),
    ).toEqual(
      [
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/write",
        "Microsoft.ContainerRegistry/registries/operationStatuses/read",
        "Microsoft.ContainerRegistry/registries/listUsages/read",
      ].sort(),
    );
    expect(replicas?.type).toBe("ternary_expression");
    expect(replicas?.text.replace(/\s+/g, " ")).toBe(
      "syncIncludeReplicas ? [ 'Microsoft.ContainerRegistry/registries/replications/read' ] : []",
    );
    for (const key of ["notActions", "dataActions", "notDataActions"])
      expect(arrayItems(at(permissions[0], key))).toEqual([]);
    expect(stringLiteral(at(role?.body, "properties", "type"))).toBe("CustomRole");
  });

  it("names every custom role uniquely in the tenant: the environment and the subscription (at a management group, the group) in each roleName", () => {
    // Role names are unique per tenant: one environment name in two subscriptions would otherwise
    // fail the second deployment with RoleDefinitionWithSameNameExists.
    const roles = files.flatMap((infra) =>
      resources(infra.root)
        .filter((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@") && !r.existing)
        .map((r) => ({ ...r, managementGroup: /^targetScope = 'managementGroup'$/m.test(infra.root.text) })),
    );
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const custom of roles) {
      const roleName = at(custom.body, "properties", "roleName")?.text ?? "";
      expect(roleName, custom.symbol).toContain("${environmentName}");
      expect(roleName, custom.symbol).toContain(
        custom.managementGroup ? "${managementGroup().name}" : "${subscription().subscriptionId}",
      );
    }
  });

  it("assigns the role on each target registry, in the registry's own resource group", () => {
    const access = modules(main.root).find((m) => m.path === "registry-access.bicep");
    expect(access?.loop).toBe(true);
    expect(callName(at(access?.body, "scope"))).toBe("resourceGroup");
    expect(at(access?.body, "params", "roleDefinitionGuid")?.text).toBe("registryRoleGuid");

    const module = file("registry-access.bicep");
    const registry = resources(module.root).find((r) => r.type.startsWith("Microsoft.ContainerRegistry/registries@"));
    expect(registry?.existing).toBe(true);
    const assignment = resources(module.root).find((r) =>
      r.type.startsWith("Microsoft.Authorization/roleAssignments@"),
    );
    expect(at(assignment?.body, "scope")?.text).toBe(registry?.symbol);
  });
});

describe("service-tags permission", () => {
  const main = file("main.bicep");
  const role = resources(main.root).find(
    (r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@") && r.symbol === "serviceTagsRole",
  );

  it("defines a custom role with exactly the Discovery API's read action", () => {
    const permissions = arrayItems(at(role?.body, "properties", "permissions"));
    expect(permissions).toHaveLength(1);
    expect(arrayItems(at(permissions[0], "actions")).map((n) => stringLiteral(n))).toEqual([
      "Microsoft.Network/locations/serviceTags/read",
    ]);
    for (const key of ["notActions", "dataActions", "notDataActions"])
      expect(arrayItems(at(permissions[0], key))).toEqual([]);
  });

  it("assigns it on the one subscription the API is read through, nowhere else", () => {
    const access = modules(main.root).find((m) => m.path === "servicetags-access.bicep");
    expect(access?.loop).toBe(false);
    expect(at(access?.body, "scope")?.text).toBe("subscription(apiSubscriptionId)");
    expect(at(access?.body, "params", "roleDefinitionGuid")?.text).toBe("serviceTagsRole.name");
    const module = file("servicetags-access.bicep");
    const assignments = resources(module.root).filter((r) =>
      r.type.startsWith("Microsoft.Authorization/roleAssignments@"),
    );
    expect(assignments).toHaveLength(1);
    expect(at(assignments[0]?.body, "scope")).toBeUndefined();
  });
});

describe("alerts", () => {
  const rules = resourcesOfType("Microsoft.Insights/scheduledQueryRules").map((r) => {
    const vars = variables(r.file.root);
    const queries = arrayItems(at(r.body, "properties", "criteria", "allOf")).map(
      (c) => stringText(at(c, "query"), vars) ?? "",
    );
    return { symbol: r.symbol, queries, actions: at(r.body, "properties", "actions")?.text };
  });

  it("has a rule for failures, poisoned messages, guard trips, the heartbeat, the rule limit, a refused canary, the data's freshness and overdue grants", () => {
    const used = new Set(rules.flatMap((r) => r.queries.flatMap((q) => contractNames(q).names)));
    expect([...used].sort()).toEqual(
      [
        EVENT_NAMES.completed,
        EVENT_NAMES.failed,
        EVENT_NAMES.guardTripped,
        EVENT_NAMES.grantOverdue,
        EVENT_NAMES.grantExpired,
        METRIC_NAMES.rulesLimit,
        METRIC_NAMES.rulesUsed,
        EVENT_NAMES.canaryCompleted,
      ].sort(),
    );
    expect(rules).toHaveLength(8);
  });

  it("alerts on a poisoned fan-out message on its own, per registry, and keeps it out of the failure alert", () => {
    const poisoned = rules.find((r) => r.symbol === "poisonedAlert");
    expect(poisoned?.queries[0]).toContain(
      `name == "${EVENT_NAMES.failed}" and tostring(customDimensions.errorType) == "Poisoned"`,
    );
    const failed = rules.find((r) => r.symbol === "syncFailedAlert");
    expect(failed?.queries[0]).toContain(
      `name == "${EVENT_NAMES.failed}" and tostring(customDimensions.errorType) != "Poisoned"`,
    );
    // The code's errorType for it, so the alert cannot drift from what the poison function sends.
    expect(new MessagePoisonedError("x").code).toBe("Poisoned");
    const rule = resourcesOfType("Microsoft.Insights/scheduledQueryRules").find((r) => r.symbol === "poisonedAlert");
    const dimensions = arrayItems(at(arrayItems(at(rule?.body, "properties", "criteria", "allOf"))[0], "dimensions"));
    expect(dimensions.map((d) => stringLiteral(at(d, "name")))).toEqual(["registry"]);
    expect(at(rule?.body, "properties", "severity")?.text).toBe("1");
  });

  it("alerts on a grant still open more than a day after its expiry, until a run removes it", () => {
    const grant = rules.find((r) => r.symbol === "grantOverdueAlert");
    const query = grant?.queries[0] ?? "";
    expect(query).toContain(`name == "${EVENT_NAMES.grantOverdue}"`);
    expect(query).toMatch(/expiresAt < ago\(1d\)/);
    expect(query).toMatch(/join kind=leftanti removed on grantId/);
    expect(query).toContain(`name == "${EVENT_NAMES.grantExpired}"`);
  });

  it("fires the freshness alert when the data a run used is older than 10 days", () => {
    const alerts = file("alerts.bicep");
    const threshold = parameters(alerts.root).get("dataAgeAlertDays");
    expect(threshold?.defaultValue?.text).toBe("10");
    const freshness = rules.find((r) => r.queries.some((q) => q.includes("customDimensions.dataAgeDays")));
    expect(freshness?.queries[0]).toMatch(/where dataAgeDays > \{0\}/);
    expect(freshness?.queries[0]).toContain(EVENT_NAMES.completed);
  });

  it("queries only events, metrics and properties the code emits", () => {
    for (const rule of rules) {
      expect(rule.queries.length, rule.symbol).toBeGreaterThan(0);
      for (const query of rule.queries) {
        const check = contractNames(query);
        expect(check.names.length, `${rule.symbol} names no event or metric`).toBeGreaterThan(0);
        expect(check.unknownNames, rule.symbol).toEqual([]);
        expect(check.unknownProperties, rule.symbol).toEqual([]);
      }
    }
  });

  it("notifies the action group from every rule", () => {
    const ag = resourcesOfType("Microsoft.Insights/actionGroups");
    expect(ag).toHaveLength(1);
    for (const rule of rules) expect(rule.actions, rule.symbol).toBeDefined();
  });
});

describe("workbook", () => {
  const workbookPath = join(infraDir(), "workbook.json");
  const workbook = JSON.parse(readFileSync(workbookPath, "utf8")) as { items: { content?: { query?: string } }[] };
  const queries = workbook.items.map((i) => i.content?.query).filter((q): q is string => typeof q === "string");

  it("is deployed from workbook.json with the App Insights ID filled in", () => {
    const resource = resourcesOfType("Microsoft.Insights/workbooks")[0];
    const data = at(resource?.body, "properties", "serializedData");
    expect(callName(data)).toBe("replace");
    const [loaded, placeholder] = callArguments(data);
    expect(callName(loaded)).toBe("loadTextContent");
    expect(stringLiteral(callArguments(loaded)[0])).toBe("workbook.json");
    expect(existsSync(workbookPath)).toBe(true);
    expect(readFileSync(workbookPath, "utf8")).toContain(stringLiteral(placeholder) ?? "?");
  });

  it("shows rules used vs limit, the last runs, failures and drift", () => {
    const used = new Set(queries.flatMap((q) => contractNames(q).names));
    for (const name of [
      METRIC_NAMES.rulesUsed,
      METRIC_NAMES.rulesLimit,
      EVENT_NAMES.completed,
      EVENT_NAMES.failed,
      EVENT_NAMES.guardTripped,
      EVENT_NAMES.driftDetected,
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });

  it("shows the active temporary grants", () => {
    const active = queries.find((q) => q.includes(`name == "${EVENT_NAMES.grantAdded}"`));
    expect(active).toBeDefined();
    expect(active).toMatch(/join kind=leftanti ended on grantId/);
  });

  it("queries only events, metrics and properties the code emits", () => {
    for (const query of queries) {
      const check = contractNames(query);
      expect(check.unknownNames).toEqual([]);
      expect(check.unknownProperties).toEqual([]);
    }
  });
});

describe("azd wiring", () => {
  const root = join(infraDir(), "..");

  it("maps azd environment values only to parameters main.bicep declares, required ones included", () => {
    const json = JSON.parse(readFileSync(join(infraDir(), "main.parameters.json"), "utf8")) as {
      parameters: Record<string, unknown>;
    };
    const declared = parameters(file("main.bicep").root);
    expect(Object.keys(json.parameters).filter((p) => !declared.has(p))).toEqual([]);
    const required = [...declared.values()].filter((p) => p.defaultValue === undefined).map((p) => p.name);
    expect(required.filter((p) => !(p in json.parameters))).toEqual([]);
  });

  it("declares the function service with a build before packaging", () => {
    const yaml = readFileSync(join(root, "azure.yaml"), "utf8");
    const lines = yaml.split(/\r?\n/).map((l) => l.trim());
    for (const line of ["host: function", "language: ts", "project: .", "path: infra"]) expect(lines).toContain(line);
    expect(yaml).toMatch(/prepackage:[\s\S]*npm ci && npm run build/);
  });

  it("tags the function app with the azd service name azure.yaml uses", () => {
    const yaml = readFileSync(join(root, "azure.yaml"), "utf8");
    const service = /^services:\s*\n\s+([a-z0-9-]+):/m.exec(yaml)?.[1];
    const site = resourcesOfType("Microsoft.Web/sites")[0];
    expect(site?.file.text).toContain(`'azd-service-name': '${service ?? "?"}'`);
  });
});
