import type { RedactionOutput, Role } from '../../../shared/src/events.js';

/**
 * Rules of start-streaming that go beyond the shape of the body (SPEC §3.2, §6): each
 * failure is a 422 naming what to change. Pure; the HTTP layer maps the result.
 */

/** Twilio Call SIDs: "CA" and 32 lowercase hex digits. Anything else cannot name a Twilio call. */
export const CALL_SID_PATTERN = /^CA[0-9a-f]{32}$/;

/**
 * Languages a loaded model serves. The asr app owns the models; until it can tell the API
 * (a later issue), this list is the contract and must match what asr loads.
 */
export const SUPPORTED_LANGUAGES: readonly string[] = ['en-US'];

export interface StartOptions {
  readonly language: string;
  readonly detailedToken: boolean;
  readonly redactionOutput: RedactionOutput;
  readonly inbound?: Role;
  readonly outbound?: Role;
}

export interface TrackRoles {
  readonly inboundRole: Role;
  readonly outboundRole: Role;
}

export type RuleCheck = { readonly ok: true; readonly roles: TrackRoles } | { readonly ok: false; readonly message: string };

const other = (role: Role): Role => (role === 'customer' ? 'agent' : 'customer');

export function checkStartRules(options: StartOptions): RuleCheck {
  if (!SUPPORTED_LANGUAGES.includes(options.language)) {
    return {
      ok: false,
      message: `autotranscribeParams.language '${options.language.slice(0, 35)}' is not supported; supported languages: ${SUPPORTED_LANGUAGES.join(', ')}`,
    };
  }
  if (options.detailedToken && options.redactionOutput !== 'unredacted') {
    return {
      ok: false,
      message: `autotranscribeParams.detailedToken true cannot be combined with redactionOutput '${options.redactionOutput}': word tokens are unredacted; use redactionOutput 'unredacted' or detailedToken false`,
    };
  }
  // One side given: the other track takes the other role (defaults: inbound customer, outbound agent).
  const inboundRole = options.inbound ?? (options.outbound ? other(options.outbound) : 'customer');
  const outboundRole = options.outbound ?? other(inboundRole);
  if (inboundRole === outboundRole) {
    return {
      ok: false,
      message: `twilioParams.trackMap maps both tracks to '${inboundRole}'; inbound and outbound must have different roles`,
    };
  }
  return { ok: true, roles: { inboundRole, outboundRole } };
}
