import { isIPv4 } from "node:net";
import { z } from "zod";
import { MyIpLookupError } from "../errors.js";
import { formatPrefix, parsePrefix, prefixContains } from "../prefixes/ipv4.js";
import { httpGet } from "../servicetags/http.js";

/**
 * `--ip me`: asks a "what is my IP" HTTPS endpoint (GRANT_MY_IP_URL) for the public address this
 * machine reaches the internet from, which is the address ACR sees. The answer is either the
 * address as plain text (api.ipify.org, ifconfig.me, icanhazip.com) or JSON with an `ip` field
 * (`?format=json`). Anything else is refused: a firewall rule is never made from a guess.
 */

export interface MyIpOptions {
  readonly url: string;
  readonly timeoutMs: number;
}

const jsonAnswer = z.object({ ip: z.string() });

/** Ranges that are never the public address ACR sees: private, shared, loopback, link-local, multicast, reserved. */
const NOT_PUBLIC = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/3",
].map((text) => parsePrefix(text, { mode: "strict" }).prefix);

/** The public IPv4 address of this machine, as the endpoint sees it. Throws `MyIpLookupError`. */
export async function lookUpMyIp(options: MyIpOptions): Promise<string> {
  const fail = (problem: string, cause?: unknown): MyIpLookupError =>
    new MyIpLookupError(`The "what is my IP" endpoint ${options.url} ${problem}`, {
      details: { setting: "GRANT_MY_IP_URL", url: options.url },
      remedy:
        "Give the address with --ip a.b.c.d instead, or point GRANT_MY_IP_URL (--my-ip-url) at an https endpoint that answers with your address.",
      ...(cause === undefined ? {} : { cause }),
    });
  let answer;
  try {
    answer = await httpGet(options.url, {
      timeoutMs: options.timeoutMs,
      maxBytes: 4096,
      userAgent: "acr-allowlist-sync",
      accept: "text/plain, application/json",
    });
  } catch (error) {
    throw fail(`could not be reached: ${error instanceof Error ? error.message : String(error)}`, error);
  }
  if (answer.status !== 200) throw fail(`answered HTTP ${answer.status}.`);
  const text = answer.body.toString("utf8").trim();
  let address = text;
  if (text.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw fail("answered JSON that cannot be read.");
    }
    const checked = jsonAnswer.safeParse(parsed);
    if (!checked.success) throw fail('answered JSON without an "ip" field.');
    address = checked.data.ip.trim();
  }
  if (!isIPv4(address)) {
    const shown = address.length > 60 ? `${address.slice(0, 60)}…` : address;
    throw fail(
      address.includes(":")
        ? `answered an IPv6 address (${shown}); ACR IP rules are IPv4 only: use an IPv4-only endpoint.`
        : `did not answer with an IPv4 address (it sent '${shown}').`,
    );
  }
  const prefix = parsePrefix(address, { mode: "strict" }).prefix;
  if (NOT_PUBLIC.some((range) => prefixContains(range, prefix)))
    throw fail(`answered ${address}, which is not a public address ACR could ever see.`);
  return formatPrefix(prefix).replace(/\/32$/, "");
}
