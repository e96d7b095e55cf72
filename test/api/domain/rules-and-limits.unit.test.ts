import t from 'tap';
import { TokenBuckets } from '../../../apps/api/src/domain/token-bucket.js';
import { CALL_SID_PATTERN, checkStartRules } from '../../../apps/api/src/domain/transcription-rules.js';

t.test('start rules: language, detailedToken with redaction, track roles', async (t) => {
  const base = { language: 'en-US', detailedToken: false, redactionOutput: 'redacted' as const };
  t.same(checkStartRules(base), { ok: true, roles: { inboundRole: 'customer', outboundRole: 'agent' } });
  t.match(checkStartRules({ ...base, language: 'de-DE' }), { ok: false, message: /'de-DE' is not supported; supported languages: en-US/ });
  t.match(checkStartRules({ ...base, detailedToken: true }), { ok: false, message: /redactionOutput 'redacted'/ });
  t.match(checkStartRules({ ...base, detailedToken: true, redactionOutput: 'redacted_and_unredacted' }), { ok: false });
  t.match(checkStartRules({ ...base, detailedToken: true, redactionOutput: 'unredacted' }), { ok: true });
  t.match(checkStartRules({ ...base, inbound: 'agent' }), { ok: true, roles: { inboundRole: 'agent', outboundRole: 'customer' } });
  t.match(checkStartRules({ ...base, outbound: 'customer' }), { ok: true, roles: { inboundRole: 'agent', outboundRole: 'customer' } });
  t.match(checkStartRules({ ...base, inbound: 'customer', outbound: 'customer' }), { ok: false, message: /both tracks to 'customer'/ });
});

t.test('Call SIDs are CA and 32 lowercase hex digits', async (t) => {
  t.ok(CALL_SID_PATTERN.test(`CA${'0123456789abcdef'.repeat(2)}`));
  for (const bad of [`CA${'A'.repeat(32)}`, `ca${'a'.repeat(32)}`, `CA${'a'.repeat(31)}`, `CA${'a'.repeat(33)}`, `MZ${'a'.repeat(32)}`]) {
    t.notOk(CALL_SID_PATTERN.test(bad), bad);
  }
});

t.test('token buckets: burst of a minute, steady refill, Retry-After, refunds, sweeping', async (t) => {
  let now = 0;
  const buckets = new TokenBuckets(60, () => now);
  for (let i = 0; i < 60; i++) t.equal(buckets.take('a').ok, true);
  t.same(buckets.take('a'), { ok: false, retryAfterS: 1 }, 'one token a second at 60 per minute');
  t.equal(buckets.take('b').ok, true, 'keys are independent');
  now += 1000;
  t.equal(buckets.take('a').ok, true, 'refilled after a second');
  t.equal(buckets.take('a').ok, false);
  buckets.refund('a');
  t.equal(buckets.take('a').ok, true, 'a refund gives the token back');
  const slow = new TokenBuckets(2, () => now);
  slow.take('x');
  slow.take('x');
  t.same(slow.take('x'), { ok: false, retryAfterS: 30 });
  now += 120_000;
  buckets.sweep();
  slow.sweep();
  t.equal(buckets.size + slow.size, 0, 'full buckets are forgotten');
});
