import { randomBytes } from "node:crypto";

/** `YYYYMMDDTHHMMSSmmmZ-<6 hex>`: sorts by time as a string, so blob listings and files come out oldest first. */
export const AUDIT_ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{6}$/;

/** A new audit id for `at` (default now). The random suffix keeps two entries of one millisecond apart. */
export function createAuditId(
  at: Date = new Date(),
  random: () => string = () => randomBytes(3).toString("hex"),
): string {
  const iso = at.toISOString(); // 2025-10-20T03:15:00.123Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}${iso.slice(20, 23)}Z`;
  const suffix = random();
  if (!/^[0-9a-f]{6}$/.test(suffix))
    throw new RangeError(`An audit id suffix must be 6 lower-case hex digits, not '${suffix}'.`);
  return `${stamp}-${suffix}`;
}

export function isAuditId(value: string): boolean {
  return AUDIT_ID_PATTERN.test(value);
}

/** The instant an audit id was created, or undefined for a string that is not an audit id. */
export function auditIdTime(id: string): Date | undefined {
  const m = AUDIT_ID_PATTERN.exec(id);
  if (m === null) return undefined;
  const date = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
