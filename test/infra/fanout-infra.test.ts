import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { POISON_QUEUE_NAME, QUEUE_NAME } from "../../src/fanout/message.js";
import { RUN_MARKER_PREFIX } from "../../src/fanout/tags-store.js";
import {
  arrayItems,
  at,
  callArguments,
  callName,
  infraDir,
  loadInfraFiles,
  modules,
  objectProperties,
  parameters,
  resolve,
  resources,
  stringLiteral,
  syntaxProblems,
  variables,
  type Node,
} from "./bicep-ast.js";

/** The infra of discovery and fan-out, checked against the code's names (tree-sitter, no Bicep CLI). */
const files = loadInfraFiles();
const named = (name: string) => {
  const found = files.find((f) => f.name === name);
  if (found === undefined) throw new Error(`infra/${name} is missing`);
  return found;
};

describe("fan-out and discovery infra", () => {
  it("creates the queue the scheduler sends to and the poison queue the host moves failures to", () => {
    const queues = resources(named("app.bicep").root)
      .filter((r) => r.type === "queues")
      .map((r) => stringLiteral(at(r.body, "name")));
    expect(queues.sort()).toEqual([QUEUE_NAME, POISON_QUEUE_NAME].sort());
  });

  it("grants Reader and the registry role on each discovery subscription, after the role exists", () => {
    const module = modules(named("main.bicep").root).find((m) => m.path === "discovery-access.bicep");
    expect(module).toBeDefined();
    const text = readFileSync(join(infraDir(), "discovery-access.bicep"), "utf8");
    expect(text).toContain("targetScope = 'subscription'");
    // Built-in Reader.
    expect(text).toContain("acdd72a7-3385-48ef-bd42-f606fba81ae7");
    expect(
      resources(named("discovery-access.bicep").root).filter((r) =>
        r.type.startsWith("Microsoft.Authorization/roleAssignments@"),
      ),
    ).toHaveLength(2);
    const main = readFileSync(join(infraDir(), "main.bicep"), "utf8");
    expect(main).toMatch(/map\(discoverySubscriptionIds, id => '\/subscriptions\/\$\{id\}'\)/);
  });

  it("deletes the run markers after 2 days, and nothing else in the ledger container", () => {
    const policy = resources(named("app.bicep").root).find((r) => r.type === "managementPolicies");
    const rules = arrayItems(at(policy?.body, "properties", "policy", "rules"));
    expect(rules).toHaveLength(1);
    const definition = at(rules[0], "definition");
    expect(arrayItems(at(definition, "filters", "prefixMatch")).map((n) => n.text)).toEqual([
      `'\${ledgerContainer}/${RUN_MARKER_PREFIX}'`,
    ]);
    expect(at(definition, "actions", "baseBlob", "delete", "daysAfterModificationGreaterThan")?.text).toBe("2");
    // Only the base blobs' deletion: no tiering, no other action on anything else.
    expect([...objectProperties(at(definition, "actions")).keys()]).toEqual(["baseBlob"]);
    expect([...objectProperties(at(definition, "actions", "baseBlob")).keys()]).toEqual(["delete"]);
  });

  it("bounds the instances the queue function can scale out to, so the cross-instance sums in the README hold", () => {
    const flex = resources(named("app.bicep").root).find((r) => r.type.startsWith("Microsoft.Web/sites@"));
    const scale = at(flex?.body, "properties", "functionAppConfig", "scaleAndConcurrency");
    // The lowest maximum Flex accepts (azure-facts §9): 40 instances × 4 messages (host.json).
    expect(at(scale, "maximumInstanceCount")?.text).toBe("40");
  });
});

describe("discovery on a management group (infra/management-group-access.bicep)", () => {
  const mg = named("management-group-access.bicep");
  const text = readFileSync(join(infraDir(), "management-group-access.bicep"), "utf8");
  const vars = variables(mg.root);
  const strings = (node: Node | undefined): (string | undefined)[] =>
    arrayItems(resolve(node, vars)).map(stringLiteral);

  it("is a management-group deployment of its own, never a module of the subscription-scope main.bicep", () => {
    expect(syntaxProblems(mg.root)).toEqual([]);
    expect(text).toMatch(/^targetScope = 'managementGroup'$/m);
    expect(modules(named("main.bicep").root).map((m) => m.path)).not.toContain("management-group-access.bicep");
    // How to deploy it is said where it is, with the outputs main.bicep provides for it.
    expect(text).toContain("az deployment mg create --management-group-id <group>");
    const main = readFileSync(join(infraDir(), "main.bicep"), "utf8");
    expect(main).toContain("output APP_IDENTITY_PRINCIPAL_ID string = app.outputs.identityPrincipalId");
    expect(main).toContain("output DISCOVERY_MANAGEMENT_GROUPS string = join(discoveryManagementGroups, ',')");
    expect([...parameters(mg.root).keys()].sort()).toEqual(
      ["environmentName", "includeReplicas", "principalId", "registryRoleDefinitionId"].sort(),
    );
  });

  it("assigns Reader and the registry role at the group to the app's identity", () => {
    const assignments = resources(mg.root).filter((r) => r.type.startsWith("Microsoft.Authorization/roleAssignments@"));
    expect(assignments).toHaveLength(2);
    for (const assignment of assignments) {
      expect(at(assignment.body, "properties", "principalId")?.text).toBe("principalId");
      expect(stringLiteral(at(assignment.body, "properties", "principalType"))).toBe("ServicePrincipal");
      // No scope property: assigned at the deployment's scope, the group.
      expect(at(assignment.body, "scope")).toBeUndefined();
    }
    const roleIds = assignments.map((a) => at(a.body, "properties", "roleDefinitionId")?.text);
    expect(roleIds).toContain("tenantResourceId('Microsoft.Authorization/roleDefinitions', readerRoleGuid)");
    expect(stringLiteral(vars.get("readerRoleGuid"))).toBe("acdd72a7-3385-48ef-bd42-f606fba81ae7");
    expect(roleIds).toContain("registryRoleId");
    expect(vars.get("registryRoleId")?.text).toBe("createRegistryRole ? registryRole.id : registryRoleDefinitionId");
  });

  it("creates the registry role with exactly main.bicep's actions, assignable at this group only, without dataActions", () => {
    const role = resources(mg.root).find((r) => r.type.startsWith("Microsoft.Authorization/roleDefinitions@"));
    const permissions = arrayItems(at(role?.body, "properties", "permissions"));
    expect(permissions).toHaveLength(1);
    const actions = at(permissions[0], "actions");
    expect(callName(actions)).toBe("concat");
    const [documented, replicas] = callArguments(actions);
    const mainVars = variables(named("main.bicep").root);
    const mainActions = arrayItems(mainVars.get("documentedRegistryActions")).map(stringLiteral);
    expect(strings(documented)).toEqual(mainActions);
    expect(resolve(replicas, vars)?.text.replace(/\s+/g, " ")).toBe(
      "includeReplicas ? [ 'Microsoft.ContainerRegistry/registries/replications/read' ] : []",
    );
    expect(mainVars.get("replicaActions")?.text.replace(/\s+/g, " ")).toBe(
      "syncIncludeReplicas ? [ 'Microsoft.ContainerRegistry/registries/replications/read' ] : []",
    );
    for (const key of ["notActions", "dataActions", "notDataActions"])
      expect(arrayItems(at(permissions[0], key))).toEqual([]);
    expect(at(role?.body, "properties", "assignableScopes")?.text.replace(/\s+/g, " ")).toBe(
      "[ managementGroup().id ]",
    );
    expect(text).toMatch(
      /resource registryRole 'Microsoft\.Authorization\/roleDefinitions@[\d-]+' = if \(createRegistryRole\)/,
    );
  });
});
