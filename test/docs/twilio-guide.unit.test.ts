import { readFileSync } from 'node:fs';
import t from 'tap';
import twilio from 'twilio';

/**
 * docs/twilio.md against the installed `twilio` package and our own API document: the TwiML its
 * example builds is the XML it shows, the REST calls it uses exist with those names, and every
 * Earshot path it mentions is in docs/api.md. (No call reaches Twilio.)
 */
const guide = readFileSync(new URL('../../docs/twilio.md', import.meta.url), 'utf8');
const apiDoc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

t.test('the TwiML example builds the XML the guide shows', async (t) => {
  const shown = /```xml\n([\s\S]*?)```/.exec(guide)?.[1];
  if (!shown) throw new Error('no xml block in docs/twilio.md');
  const url = /url="([^"]+)"/.exec(shown)?.[1] as string;
  const statusCallback = /statusCallback="([^"]+)"/.exec(shown)?.[1] as string;
  const customer = /<Parameter name="customerId" value="([^"]+)"/.exec(shown)?.[1] as string;
  // As in the guide's voiceWebhook:
  const response = new twilio.twiml.VoiceResponse();
  const stream = response.start().stream({ url, track: 'both_tracks', name: 'earshot', statusCallback, statusCallbackMethod: 'POST' });
  stream.parameter({ name: 'customerId', value: customer });
  response.dial().queue('support');
  const normalize = (xml: string) =>
    xml
      .replace(/>\s+</g, '><')
      .replace(/\s+/g, ' ')
      .replace(/<(\w+)([^>]*?)\s*(\/?)>/g, (_m, tag: string, attrs: string, slash: string) => {
        const sorted = [...attrs.matchAll(/(\w+)="([^"]*)"/g)].map((a) => `${a[1]}="${a[2]}"`).sort();
        return `<${tag}${sorted.length ? ` ${sorted.join(' ')}` : ''}${slash}>`;
      })
      .trim();
  t.equal(normalize(response.toString()), normalize(shown));
  t.notMatch(url, /\?/, 'no query string in <Stream url> (Twilio error 31920)');
});

t.test('the REST calls of the guide exist in the twilio package', async (t) => {
  const client = twilio(`AC${'0'.repeat(32)}`, 'not-a-real-token');
  const call = client.calls(`CA${'0'.repeat(32)}`);
  t.type(call.streams.create, 'function', 'calls(sid).streams.create');
  t.type(call.streams('earshot').update, 'function', "calls(sid).streams('earshot').update");
  t.type(twilio.webhook, 'function', 'twilio.webhook()');
  t.match(guide, 'streams.create({', 'the guide uses streams.create');
  t.match(guide, ".update({ status: 'stopped' })", 'and stops streams with status stopped');
});

t.test('every Earshot path the guide names is in the API reference', async (t) => {
  const paths = new Set([...guide.matchAll(/\/(mg-autotranscribe|conversation)\/v1\/[a-z/-]+/g)].map((m) => m[0]));
  t.ok(paths.size >= 4, `paths found: ${[...paths].join(', ')}`);
  for (const path of paths) t.match(apiDoc, path, path);
});
