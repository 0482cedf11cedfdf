/**
 * The clock a run decides grant expiry with. Runs happen on different machines (the function
 * app, operators' laptops) whose clocks disagree, so the rule is:
 *
 * 1. ARM's clock: the `Date` header of the registry read that the plan is made from. Every run
 *    reads the registry first, so the CLI and the timer expire grants on the same clock, however
 *    far a laptop's clock is off. The local clock is used only when ARM sent no usable `Date`.
 * 2. Never backwards: a run never uses an instant earlier than the latest one a run recorded in the
 *    registry's ledger (`clockHighWater`). A run whose clock is behind cannot make a grant younger
 *    than an earlier run saw it; a grant that one run found expired stays expired.
 *
 * A clock that is ahead only makes grants end early, the safe direction for a firewall.
 */
export function runClock(armTime: string | undefined, highWater: string | undefined, local: Date): Date {
  const arm = armTime === undefined ? Number.NaN : Date.parse(armTime);
  const base = Number.isFinite(arm) ? arm : local.getTime();
  const floor = highWater === undefined ? Number.NaN : Date.parse(highWater);
  return new Date(Number.isFinite(floor) && floor > base ? floor : base);
}

/** The later of two recorded instants (undefined counts as "none"). */
export function laterInstant(a: string | undefined, b: string): string {
  return a !== undefined && Date.parse(a) > Date.parse(b) ? a : b;
}
