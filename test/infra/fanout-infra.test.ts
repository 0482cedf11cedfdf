import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { POISON_QUEUE_NAME, QUEUE_NAME } from "../../src/fanout/message.js";
import { at, infraDir, loadInfraFiles, modules, resources, stringLiteral } from "./bicep-ast.js";

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
});
