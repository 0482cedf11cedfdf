import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Parser from "tree-sitter";
import Bicep from "tree-sitter-bicep";
import { projectRoot } from "../support/paths.js";

/**
 * Small helpers over the tree-sitter-bicep syntax tree. The Bicep CLI cannot be installed here,
 * so the infra tests read the templates structurally: property values are found by walking
 * object literals, not by regular expressions over the text.
 */

export type Node = Parser.SyntaxNode;

export interface BicepFile {
  readonly name: string;
  readonly text: string;
  readonly root: Node;
}

const parser = new Parser();
parser.setLanguage(Bicep as Parser.Language);

export function parseBicep(text: string): Node {
  return parser.parse(text).rootNode;
}

export const infraDir = (): string => join(projectRoot(), "infra");

export function loadInfraFiles(): BicepFile[] {
  return readdirSync(infraDir())
    .filter((name) => name.endsWith(".bicep"))
    .sort()
    .map((name) => {
      const text = readFileSync(join(infraDir(), name), "utf8");
      return { name, text, root: parseBicep(text) };
    });
}

/** ERROR and MISSING nodes, as `line:column text` for readable failures. */
export function syntaxProblems(root: Node): string[] {
  const problems: string[] = [];
  walk(root, (node) => {
    if (node.type === "ERROR" || node.isMissing) {
      problems.push(
        `${node.isMissing ? "missing " : ""}${node.type} at ${node.startPosition.row + 1}:${node.startPosition.column + 1} ${JSON.stringify(node.text.slice(0, 60))}`,
      );
    }
  });
  return problems;
}

export function walk(node: Node, visit: (node: Node) => void): void {
  visit(node);
  for (const child of node.namedChildren) walk(child, visit);
}

export function descendants(node: Node, type: string): Node[] {
  const found: Node[] = [];
  walk(node, (n) => {
    if (n.type === type) found.push(n);
  });
  return found;
}

/** The value of a string literal without interpolation (`''` gives ""), else undefined. */
export function stringLiteral(node: Node | undefined): string | undefined {
  if (node?.type !== "string") return undefined;
  if (node.namedChildren.some((c) => c.type === "interpolation")) return undefined;
  return node.namedChildren
    .filter((c) => c.type === "string_content")
    .map((c) => c.text)
    .join("");
}

/** The key of an `object_property` (identifier or quoted), undefined for nested declarations. */
export function propertyKey(prop: Node): string | undefined {
  const first = prop.namedChildren[0];
  if (first === undefined) return undefined;
  if (first.type === "identifier") return first.text;
  return stringLiteral(first);
}

/** The value node of an `object_property` (what follows the colon). */
export function propertyValue(prop: Node): Node | undefined {
  const children = prop.namedChildren;
  return children.length >= 2 ? children[children.length - 1] : undefined;
}

export function objectProperties(object: Node | undefined): Map<string, Node> {
  const map = new Map<string, Node>();
  if (object?.type !== "object") return map;
  for (const prop of object.namedChildren) {
    if (prop.type !== "object_property") continue;
    const key = propertyKey(prop);
    const value = propertyValue(prop);
    if (key !== undefined && value !== undefined) map.set(key, value);
  }
  return map;
}

/** Follows a dotted path of keys through nested object literals. */
export function at(object: Node | undefined, ...path: string[]): Node | undefined {
  let current = object;
  for (const key of path) current = objectProperties(current).get(key);
  return current;
}

export function arrayItems(node: Node | undefined): Node[] {
  return node?.type === "array" ? node.namedChildren.filter((c) => c.type !== "comment") : [];
}

export interface ResourceDeclaration {
  readonly symbol: string;
  /** `Microsoft.Web/sites@2024-04-01`, or the short child type (`config`) for nested resources. */
  readonly type: string;
  readonly existing: boolean;
  /** The body object, looking through `if (...)` and `[for ...]`. */
  readonly body: Node | undefined;
}

function declarationBody(value: Node | undefined): Node | undefined {
  if (value === undefined) return undefined;
  if (value.type === "object") return value;
  if (value.type === "if_statement") return value.namedChildren.find((c) => c.type === "object");
  if (value.type === "for_statement") return value.childForFieldName("body") ?? undefined;
  return undefined;
}

/** Every resource declaration, nested ones included. */
export function resources(root: Node): ResourceDeclaration[] {
  return descendants(root, "resource_declaration").map((decl) => {
    const named = decl.namedChildren;
    return {
      symbol: named[0]?.text ?? "",
      type: stringLiteral(named[1]) ?? "",
      existing: decl.children.some((c) => c.type === "existing"),
      body: declarationBody(named[named.length - 1]),
    };
  });
}

export interface ModuleDeclaration {
  readonly symbol: string;
  readonly path: string;
  readonly loop: boolean;
  readonly body: Node | undefined;
}

export function modules(root: Node): ModuleDeclaration[] {
  return descendants(root, "module_declaration").map((decl) => {
    const named = decl.namedChildren;
    const value = named[named.length - 1];
    return {
      symbol: named[0]?.text ?? "",
      path: stringLiteral(named[1]) ?? "",
      loop: value?.type === "for_statement",
      body: declarationBody(value),
    };
  });
}

export interface ParameterDeclaration {
  readonly name: string;
  /** The default value node, undefined when the parameter is required. */
  readonly defaultValue: Node | undefined;
}

export function parameters(root: Node): Map<string, ParameterDeclaration> {
  const map = new Map<string, ParameterDeclaration>();
  for (const decl of descendants(root, "parameter_declaration")) {
    const named = decl.namedChildren;
    const name = named[0]?.text ?? "";
    const hasDefault = decl.children.some((c) => c.type === "=");
    map.set(name, { name, defaultValue: hasDefault ? named[named.length - 1] : undefined });
  }
  return map;
}

export function variables(root: Node): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const decl of descendants(root, "variable_declaration")) {
    const named = decl.namedChildren;
    const value = named[named.length - 1];
    if (named[0] !== undefined && value !== undefined) map.set(named[0].text, value);
  }
  return map;
}

/** Follows an identifier to the value of a `var` of the same file. */
export function resolve(node: Node | undefined, vars: Map<string, Node>): Node | undefined {
  let current = node;
  for (let hops = 0; current?.type === "identifier" && hops < 10; hops += 1) current = vars.get(current.text);
  return current;
}

/**
 * The text of a string-valued expression: a literal, a var holding one, or `format(template, ...)`
 * (the template, placeholders left in).
 */
export function stringText(node: Node | undefined, vars: Map<string, Node>): string | undefined {
  const value = resolve(node, vars);
  if (value?.type === "call_expression" && value.childForFieldName("function")?.text === "format") {
    return stringText(value.childForFieldName("arguments")?.namedChildren[0], vars);
  }
  return stringLiteral(value);
}

export function callName(node: Node | undefined): string | undefined {
  return node?.type === "call_expression" ? node.childForFieldName("function")?.text : undefined;
}

export function callArguments(node: Node | undefined): Node[] {
  return node?.type === "call_expression" ? (node.childForFieldName("arguments")?.namedChildren ?? []) : [];
}
