import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { newCallSid, simulateCall } from '../../apps/cli/src/simulate/twilio-call.js';
import { wordErrors } from '../../scripts/test-audio/wer.js';
import { startGateway } from '../e2e/support.js';
import { expectedCallUtterances } from '../support/expected-utterances.js';
import { createTestApp } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { launchChromium } from './browser.js';

/**
 * The live transcript page end to end, in headless Chromium: a two-party call synthesized by
 * scripts/test-audio is played as Twilio would (stream URL, start-streaming, media WebSocket)
 * through ingest, the event log and the asr consumer with the real model; the browser refuses
 * a wrong secret, logs in, picks the call from the list and shows every utterance with its
 * role, text, time and latency as it arrives. Another app sees none of it. The screenshot goes
 * to .earshot/test-output/live-page.png, and to docs/images/live-page.png when that is missing
 * or UPDATE_DOCS_SCREENSHOT=1.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCREENSHOT = join(ROOT, '.earshot/test-output/live-page.png');
const DOCS_SCREENSHOT = join(ROOT, 'docs/images/live-page.png');

t.test('watching a live call in the browser', async (t) => {
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const gw = await startGateway(t);
  const other = await createTestApp(gw.runtime, 'another app');

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light', locale: 'en-GB' });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${gw.apiUrl}/live`);
  const html = await page.content();
  t.notMatch(html, new RegExp(gw.tenant.apiSecret.replace(/[+/=]/g, '.')), 'no secret in the page');

  // A wrong secret is refused, with the reason shown where a screen reader announces it.
  await page.getByLabel('API id').fill(gw.tenant.apiId);
  await page.getByLabel('Secret').fill('not-the-secret');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').filter({ hasText: 'invalid credentials' }).waitFor();
  t.ok(await page.locator('#app-view').isHidden(), 'still logged out');
  t.same(
    (await context.cookies()).map((c) => c.name),
    [],
    'no cookie after a refused login',
  );

  await page.getByLabel('Secret').fill(gw.tenant.apiSecret);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Signed in as').waitFor();
  t.equal(await page.locator('#app-name').textContent(), 'e2e tenant');
  const [cookie] = await context.cookies();
  t.match(
    cookie,
    { name: 'earshot_live', httpOnly: true, sameSite: 'Strict', path: '/live' },
    'the session is an HttpOnly SameSite=Strict cookie',
  );
  t.equal(await page.evaluate(() => document.cookie), '', 'which the page script cannot read');
  t.equal(await page.getByLabel('Secret').inputValue(), '', 'the secret is cleared from the form');

  // The call: played in real time ×2, as Twilio would send it.
  const { customer, agent } = gw.corpus.call.tracks;
  const callSid = newCallSid();
  const call = simulateCall({
    apiUrl: gw.apiUrl,
    ...gw.tenant,
    callSid,
    inbound: gw.audio(customer.mulaw),
    outbound: gw.audio(agent.mulaw),
    speed: 2,
    stopDelayMs: 1000,
  });
  t.teardown(() => call.catch(() => undefined));
  let callEnded = false;
  void call.then(
    () => {
      callEnded = true;
    },
    () => undefined,
  );
  const entry = page.locator(`[data-call-id="${callSid}"]`);
  await entry.waitFor({ timeout: 30_000 });
  await entry.click();
  t.equal(await entry.getAttribute('aria-current'), 'true', 'the chosen call is marked');
  await page.getByRole('heading', { name: `Call ${callSid}` }).waitFor();

  // As the engine ends them offline: a turn of two sentences may be two utterances.
  const utterancesOf = await expectedCallUtterances(gw.corpus);
  const expected = utterancesOf.customer.length + utterancesOf.agent.length;
  const items = page.locator('#transcript li.utterance');
  // Utterances arrive while the call is still playing: the page is live, not an after-call view.
  await items.first().waitFor({ timeout: 60_000 });
  t.notOk(callEnded, 'the first utterance is on the page while the call is still playing');
  const result = await call;
  t.equal(result.start?.status, 200, 'start-streaming accepted');
  await waitFor(`${expected} utterances on the page`, async () => (await items.count()) >= expected, 60_000);

  const shown = await items.evaluateAll((lis) =>
    lis.map((li) => ({
      role: (li as HTMLElement).dataset.role,
      roleText: li.querySelector('.role')?.textContent,
      text: li.querySelector('.text')?.textContent ?? '',
      time: li.querySelector('time')?.getAttribute('datetime'),
      latency: li.querySelector('.latency')?.textContent ?? '',
    })),
  );
  t.equal(shown.length, expected, 'one item per utterance, none twice');
  for (const [role, track] of [
    ['customer', customer],
    ['agent', agent],
  ] as const) {
    const mine = shown.filter((u) => u.role === role);
    t.equal(mine.length, utterancesOf[role].length, `${role}: every utterance shown`);
    t.ok(
      mine.every((u) => u.roleText === role),
      `${role}: labelled with its role`,
    );
    const wer = wordErrors(track.utterances.map((u) => u.text).join(' '), mine.map((u) => u.text).join(' '));
    t.ok(wer.wer < 0.25, `${role}: the text is what was said (WER ${(wer.wer * 100).toFixed(1)} %)`);
  }
  t.ok(
    shown.every((u) => u.time && !Number.isNaN(Date.parse(u.time))),
    'every utterance has its time',
  );
  t.ok(
    shown.every((u) => /^latency \d+ ms$/.test(u.latency)),
    'every utterance has its latency',
  );
  t.same(pageErrors, [], 'no script error in the page');

  await page.locator(`[data-call-id="${callSid}"]`, { hasText: `${expected} utterances` }).waitFor();
  t.pass('the call list counts every utterance');
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.ok(statSync(SCREENSHOT).size > 10_000, `screenshot saved: ${SCREENSHOT}`);
  if (!existsSync(DOCS_SCREENSHOT) || process.env.UPDATE_DOCS_SCREENSHOT === '1') {
    mkdirSync(dirname(DOCS_SCREENSHOT), { recursive: true });
    copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
  }

  // Another app, in another browser, sees no trace of the call and cannot stream it.
  const otherContext = await browser.newContext();
  const otherPage = await otherContext.newPage();
  await otherPage.goto(`${gw.apiUrl}/live`);
  await otherPage.getByLabel('API id').fill(other.apiId);
  await otherPage.getByLabel('Secret').fill(other.apiSecret);
  await otherPage.getByRole('button', { name: 'Log in' }).click();
  await otherPage.getByText('Signed in as').waitFor();
  await otherPage.getByText('No live calls yet').waitFor();
  t.equal(await otherPage.locator(`[data-call-id="${callSid}"]`).count(), 0, 'another app does not list the call');
  const status = await otherPage.evaluate(async (id) => (await fetch(`/live/calls/${id}/events`)).status, callSid);
  t.equal(status, 404, 'another app cannot stream the call');

  // Logging out ends the session in the browser.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  t.equal(await page.evaluate(async () => (await fetch('/live/calls')).status), 401, 'logged out');
});
