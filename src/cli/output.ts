import type { Colours } from "../sync/render.js";
import type { CliIO, TextSink } from "./command.js";

export { count, thousands } from "../sync/render.js";

/** The one prefix of every message the CLI writes on stderr. */
export const PREFIX = "acr-allowlist-sync:";

/** One line on stderr under the common prefix; line breaks inside are folded. */
export function message(sink: TextSink, text: string): void {
  sink.write(`${PREFIX} ${text.replace(/\s*\n\s*/g, " ")}\n`);
}

export function warn(sink: TextSink, text: string): void {
  message(sink, `warning: ${text}`);
}

const plain = (text: string): string => text;
const sgr =
  (code: number) =>
  (text: string): string =>
    `\u001b[${code}m${text}\u001b[0m`;

/**
 * Colour only for a person at a terminal: the sink is a TTY and NO_COLOR (https://no-color.org) is
 * unset or empty. Redirected output, pipes and test buffers never get escape codes.
 */
export function coloursFor(sink: TextSink, env: Readonly<Record<string, string | undefined>>): Colours {
  const tty = (sink as { isTTY?: unknown }).isTTY === true;
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== "";
  if (!tty || noColor || env.TERM === "dumb")
    return { red: plain, green: plain, yellow: plain, dim: plain, bold: plain };
  return { red: sgr(31), green: sgr(32), yellow: sgr(33), dim: sgr(2), bold: sgr(1) };
}

export function envOf(io: CliIO): Readonly<Record<string, string | undefined>> {
  return io.env ?? process.env;
}
