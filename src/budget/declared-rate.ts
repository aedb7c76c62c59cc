import { parseCallRate, type CallRate } from './plan.js';

/**
 * The rate the provider gives an access key, when it is not the operator's default (a key
 * the provider gave more calls, or fewer): an annotation on the credentials Secret, written
 * like `--provider-rate-limit`, e.g. `hpc.shanhe.com/provider-rate-limit: "5000/1h"`. It is
 * read from the Secret's metadata (the operator's metadata-only cache), never its data.
 */
export const PROVIDER_RATE_LIMIT_ANNOTATION = 'hpc.shanhe.com/provider-rate-limit';

/** An annotation value quoted in a message is cut to this many characters. */
const MAX_QUOTED = 64;

/** What a credentials Secret declares of its key's rate: nothing, a rate, or a value that is none (and why). */
export type DeclaredRate = { rate?: CallRate; problem?: string };

/** The rate the annotation `value` of Secret `secretName` declares; undefined value: none declared. */
export function declaredRateOf(secretName: string, value: string | undefined): DeclaredRate {
  if (value === undefined) return {};
  const rate = parseCallRate(value);
  if (rate !== undefined) return { rate };
  const quoted = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  return {
    problem:
      `Secret ${secretName}: annotation ${PROVIDER_RATE_LIMIT_ANNOTATION} ${JSON.stringify(quoted)} is not calls per duration ` +
      `such as "5000/1h", so the operator's default rate applies to this access key; fix or remove the annotation`,
  };
}

/** Calls per ms, to compare rates of different windows. */
const density = (rate: CallRate): number => rate.calls / rate.windowMs;

/**
 * The rate a key is planned with: the lowest of its resources' declared rates, a resource
 * whose Secret declares none counting as `fallback`. A key gets more than the default only
 * when every Secret that holds it says so, so one tenant's annotation cannot spend the
 * share of others on the same key.
 */
export function keyRateOf(declared: readonly (CallRate | undefined)[], fallback: CallRate): CallRate {
  let lowest: CallRate | undefined;
  for (const rate of declared) {
    const candidate = rate ?? fallback;
    if (lowest === undefined || density(candidate) < density(lowest)) lowest = candidate;
  }
  return lowest ?? fallback;
}
