import { accessSync, constants, statSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * What `SERVICE_TAGS_URL` / `--service-tags` may name: an https URL or a local file (a path or a
 * `file:` URL). An explicit source is the only source (the operator's contract, issue 9 point 3),
 * so anything else is refused at start instead of being replaced by the Download Center file.
 */
export type ExplicitSource =
  { readonly kind: "https"; readonly url: string } | { readonly kind: "file"; readonly path: string };

/** A value as shown in a message: long enough to recognise, never a page of text. */
function shown(text: string): string {
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** Classifies the value without touching the file system; `problem` says what is wrong with it. */
export function classifyExplicitSource(value: string): ExplicitSource | { readonly problem: string } {
  const text = value.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive (C:\tags.json), not a URL.
  if (scheme === undefined || scheme.length === 1) return { kind: "file", path: resolvePath(text) };
  if (scheme === "https") {
    try {
      return { kind: "https", url: new URL(text).toString() };
    } catch {
      return { problem: `'${shown(text)}' is not a valid https URL` };
    }
  }
  if (scheme === "file") {
    try {
      return { kind: "file", path: fileURLToPath(text) };
    } catch {
      return { problem: `'${shown(text)}' is not a valid file: URL` };
    }
  }
  return {
    problem: `'${shown(text)}' is neither an https URL nor a local file path (${scheme}: is refused; the file is only fetched over https)`,
  };
}

/**
 * Undefined when the value names an https URL or an existing readable regular file; otherwise what
 * is wrong, in words for a configuration error. The file is checked once, at start: a file that
 * disappears later fails the run that reads it.
 */
export function explicitSourceProblem(value: string): string | undefined {
  const source = classifyExplicitSource(value);
  if ("problem" in source) return source.problem;
  if (source.kind === "https") return undefined;
  const path = shown(source.path);
  try {
    if (!statSync(source.path).isFile()) return `${path} is not a regular file`;
    accessSync(source.path, constants.R_OK);
    return undefined;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return `${path} does not exist`;
    return `${path} cannot be read (${typeof code === "string" ? code : String(error)})`;
  }
}
