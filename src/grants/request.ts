import { UsageError } from "../errors.js";
import { formatPrefix, parsePrefix } from "../prefixes/ipv4.js";

/**
 * What an operator may ask for, checked before anything is read: the rule (one address or a
 * prefix no wider than /24 unless allowed) and the time to live (at most 7 days).
 */

export const MAX_GRANT_TTL_MS = 7 * 24 * 60 * 60 * 1000;
export const MIN_GRANT_TTL_MS = 60 * 1000;
/** Shorter prefixes (more than 256 addresses) need `--allow-wide`. */
export const NARROWEST_UNFLAGGED_LENGTH = 24;

const UNIT_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90m`, `8h`, `2d`, `1d12h`: whole minutes, hours and days, 1 minute to 7 days. */
export function parseTtl(text: string, flag = "--ttl"): number {
  const trimmed = text.trim().toLowerCase();
  const parts = /^(?:\d+[dhm])+$/.test(trimmed) ? [...trimmed.matchAll(/(\d+)([dhm])/g)] : [];
  const ms = parts.reduce((sum, [, count, unit]) => sum + Number(count) * (UNIT_MS[unit ?? ""] ?? Number.NaN), 0);
  if (parts.length === 0 || !Number.isFinite(ms)) {
    throw new UsageError(`${flag} must be a duration like 30m, 8h, 2d or 1d12h, not '${text}'.`, {
      details: { flag, value: text },
      remedy: "Use whole minutes (m), hours (h) and days (d); the longest grant is 7d.",
    });
  }
  if (ms < MIN_GRANT_TTL_MS || ms > MAX_GRANT_TTL_MS) {
    throw new UsageError(`${flag} ${text} is out of range: a grant lasts from 1 minute to 7 days.`, {
      details: { flag, value: text, maxMs: MAX_GRANT_TTL_MS },
      remedy: "Ask for at most 7d; grant again when it ends if access is still needed.",
    });
  }
  return ms;
}

export interface GrantRuleOptions {
  /** Let prefixes shorter than /24 through (still not shorter than `minPrefixLength`). */
  readonly allowWide: boolean;
  /** The target's SYNC_MIN_PREFIX_LENGTH: no grant is ever wider than the service's own floor. */
  readonly minPrefixLength: number;
}

/** The canonical rule of `a.b.c.d` (a /32) or `a.b.c.d/n`; host bits set is an error, not a silent widening. */
export function parseGrantRule(text: string, options: GrantRuleOptions, flag = "--ip"): string {
  let canonical: string;
  let length: number;
  try {
    const { prefix } = parsePrefix(text.trim(), { mode: "strict" });
    canonical = formatPrefix(prefix);
    length = prefix.length;
  } catch (error) {
    throw new UsageError(`${flag} '${text}' is not an IPv4 address or prefix a.b.c.d[/n].`, {
      details: { flag, value: text },
      remedy: "Give one IPv4 address (203.0.113.7), a prefix with no host bits set (203.0.113.0/28), or 'me'.",
      cause: error,
    });
  }
  if (length < NARROWEST_UNFLAGGED_LENGTH && !options.allowWide) {
    throw new UsageError(
      `${flag} ${canonical} admits ${2 ** (32 - length)} addresses: grants wider than /${NARROWEST_UNFLAGGED_LENGTH} are refused.`,
      {
        details: { flag, value: text, length },
        remedy: `Grant a /${NARROWEST_UNFLAGGED_LENGTH} or narrower, or add --allow-wide if that many addresses really need access.`,
      },
    );
  }
  if (length < options.minPrefixLength) {
    throw new UsageError(
      `${flag} ${canonical} is wider than SYNC_MIN_PREFIX_LENGTH /${options.minPrefixLength}, the widest rule this service writes.`,
      { details: { flag, value: text, length, minPrefixLength: options.minPrefixLength } },
    );
  }
  return canonical;
}

/** A reason is recorded and sent to telemetry: one readable line. */
export function parseGrantReason(text: string, flag = "--reason"): string {
  const reason = text.replace(/\s+/g, " ").trim();
  if (reason.length < 3 || reason.length > 500) {
    throw new UsageError(`${flag} must say why, in 3 to 500 characters.`, {
      details: { flag, length: reason.length },
      remedy: `Example: ${flag} "incident 4711: docker pull from the on-call laptop".`,
    });
  }
  return reason;
}
