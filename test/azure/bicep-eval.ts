import type { Node } from "../infra/bicep-ast.js";

/**
 * A tiny evaluator for the Bicep expressions that turn a parameter into an app setting or a role
 * action list: literals, parameters, vars, `!`, `==`, `!=`, `&&`, `||`, `+`, `-`, `?:`, arrays,
 * `[i]`, lambdas in `map`/`filter`, and a few string functions. Anything else throws, so a template change the tests cannot follow fails
 * loudly instead of being skipped.
 */

export type BicepValue = boolean | string | number | readonly BicepValue[];

export interface BicepScope {
  readonly params: ReadonlyMap<string, BicepValue>;
  readonly vars: ReadonlyMap<string, Node>;
}

export function evaluate(node: Node | undefined, scope: BicepScope): BicepValue {
  if (node === undefined) throw new Error("nothing to evaluate");
  switch (node.type) {
    case "boolean":
      return node.text === "true";
    case "number":
      return Number(node.text);
    case "string": {
      if (node.namedChildren.some((c) => c.type === "interpolation"))
        throw new Error(`interpolated string not supported: ${node.text}`);
      return node.namedChildren
        .filter((c) => c.type === "string_content")
        .map((c) => c.text)
        .join("");
    }
    case "identifier": {
      const param = scope.params.get(node.text);
      if (param !== undefined) return param;
      const value = scope.vars.get(node.text);
      if (value !== undefined) return evaluate(value, scope);
      throw new Error(`unknown identifier ${node.text}`);
    }
    case "parenthesized_expression":
      return evaluate(node.namedChildren[0], scope);
    case "array":
      return node.namedChildren.filter((c) => c.type !== "comment").map((c) => evaluate(c, scope));
    case "unary_expression": {
      const operator = node.children[0]?.text;
      if (operator !== "!") throw new Error(`unary ${operator ?? "?"} not supported`);
      return !asBoolean(evaluate(node.namedChildren[0], scope));
    }
    case "binary_expression": {
      const operator = node.children[1]?.text;
      const left = evaluate(node.namedChildren[0], scope);
      const right = evaluate(node.namedChildren[1], scope);
      switch (operator) {
        case "==":
          return left === right;
        case "!=":
          return left !== right;
        case "&&":
          return asBoolean(left) && asBoolean(right);
        case "||":
          return asBoolean(left) || asBoolean(right);
        case "-":
          return asNumber(left) - asNumber(right);
        case "+":
          return asNumber(left) + asNumber(right);
        default:
          throw new Error(`binary ${operator ?? "?"} not supported`);
      }
    }
    case "ternary_expression": {
      const [condition, whenTrue, whenFalse] = node.namedChildren;
      return asBoolean(evaluate(condition, scope)) ? evaluate(whenTrue, scope) : evaluate(whenFalse, scope);
    }
    case "subscript_expression": {
      const [target, index] = node.namedChildren.map((c) => evaluate(c, scope));
      if (!Array.isArray(target) || typeof index !== "number") throw new Error(`bad subscript ${node.text}`);
      const item = (target as readonly BicepValue[])[index];
      if (item === undefined) throw new Error(`index ${index} out of range in ${node.text}`);
      return item;
    }
    case "call_expression": {
      const name = node.childForFieldName("function")?.text;
      const argNodes = node.childForFieldName("arguments")?.namedChildren ?? [];
      if ((name === "map" || name === "filter") && argNodes[1]?.type === "lambda_expression") {
        const list = evaluate(argNodes[0], scope);
        if (!Array.isArray(list)) throw new Error(`${name} of a non-array`);
        const lambda = argNodes[1];
        const parameter = lambda.namedChildren[0]?.text ?? "";
        const apply = (item: BicepValue): BicepValue =>
          evaluate(lambda.namedChildren[1], { ...scope, params: new Map([...scope.params, [parameter, item]]) });
        const items = list as readonly BicepValue[];
        return name === "map" ? items.map(apply) : items.filter((item) => asBoolean(apply(item)));
      }
      const args = argNodes.map((a) => evaluate(a, scope));
      const [first, second, third] = args;
      if (name === "split" && typeof first === "string" && typeof second === "string") return first.split(second);
      if (name === "trim" && typeof first === "string") return first.trim();
      if (name === "empty" && (typeof first === "string" || Array.isArray(first))) return first.length === 0;
      if (name === "length" && (typeof first === "string" || Array.isArray(first))) return first.length;
      if (name === "endsWith" && typeof first === "string" && typeof second === "string") return first.endsWith(second);
      if (name === "substring" && typeof first === "string" && typeof second === "number" && typeof third === "number")
        return first.substring(second, second + third);
      if (name === "last" && Array.isArray(first)) {
        const items = first as readonly BicepValue[];
        const item = items[items.length - 1];
        if (item === undefined) throw new Error("last of an empty array");
        return item;
      }
      // ARM's string() of a boolean is `True` / `False` (.NET spelling).
      if (name === "string" && typeof first === "boolean") return first ? "True" : "False";
      if (name === "string" && (typeof first === "string" || typeof first === "number")) return String(first);
      if (name === "toLower" && typeof first === "string") return first.toLowerCase();
      throw new Error(`call ${name ?? "?"}(${args.map((a) => JSON.stringify(a)).join(", ")}) not supported`);
    }
    default:
      throw new Error(`${node.type} not supported: ${node.text.slice(0, 60)}`);
  }
}

function asNumber(value: BicepValue): number {
  if (typeof value !== "number") throw new Error(`expected a number, got ${JSON.stringify(value)}`);
  return value;
}

function asBoolean(value: BicepValue): boolean {
  if (typeof value !== "boolean") throw new Error(`expected a boolean, got ${JSON.stringify(value)}`);
  return value;
}

/** The declared type of a parameter (`bool`, `string`, ...). */
export function parameterType(root: Node, name: string): string | undefined {
  for (const decl of root.descendantsOfType("parameter_declaration")) {
    if (decl.namedChildren[0]?.text === name) return decl.namedChildren.find((c) => c.type === "type")?.text;
  }
  return undefined;
}
