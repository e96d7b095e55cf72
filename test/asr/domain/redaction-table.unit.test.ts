import t from 'tap';
import { redact } from '../../../apps/asr/src/domain/redaction.js';

/**
 * SPEC §7 as a table: [input, expected output]. `#` replaces each character of a sensitive
 * number (spaces between its words stay); everything else must come out unchanged.
 */
const MASKED: [string, string][] = [
  // Cards (13-19 digits, Luhn), written and spoken
  ['4111111111111111', '################'],
  ['card 4111 1111 1111 1111', 'card #### #### #### ####'],
  ['5500-0000-0000-0004 is my mastercard', '####-####-####-#### is my mastercard'],
  ['amex 3782 822463 10005', 'amex #### ###### #####'],
  [
    'six zero one one one one one one one one one one one one one seven',
    '### #### ### ### ### ### ### ### ### ### ### ### ### ### ### #####',
  ],
  ['four one one one one one one one one one one one one one one one', '#### ### ### ### ### ### ### ### ### ### ### ### ### ### ### ###'],
  // SSN
  ['my social is 123-45-6789', 'my social is ###-##-####'],
  ['123 45 6789', '### ## ####'],
  ['one two three four five six seven eight nine', '### ### ##### #### #### ### ##### ##### ####'],
  ['ssn 078051120', 'ssn #########'],
  // Phone numbers
  ['call me at 415-555-0199', 'call me at ###-###-####'],
  ['(415) 555 0199', '(###) ### ####'],
  ['my cell is 5551234', 'my cell is #######'],
  ['five five five one two three four', '#### #### #### ### ### ##### ####'],
  ['it is four one five, five five five, oh one nine nine', 'it is #### ### ####, #### #### ####, ## ### #### ####'],
  ['plus one 415 555 0199', 'plus ### ### ### ####'],
  // 9-10 digit numbers (accounts, routing)
  ['account 1234567890', 'account ##########'],
  ['routing number 021000021', 'routing number #########'],
  ['nine eight seven six five four three two one zero', '#### ##### ##### ### #### #### ##### ### ### ####'],
  // Cued short codes: PIN, CVV, code, security number
  ['my pin is 1234', 'my pin is ####'],
  ['PIN: 0000', 'PIN: ####'],
  ['the cvv is 123', 'the cvv is ###'],
  ['CVC 4567', 'CVC ####'],
  ['the code is 4821', 'the code is ####'],
  ['security code 321', 'security code ###'],
  ['my security number is four five six seven', 'my security number is #### #### ### #####'],
  ['verification code is three zero one eight', 'verification code is ##### #### ### #####'],
  ['passcode 998877', 'passcode ######'],
  ['the last four are 4242', 'the last four are ####'],
  ['last 4 digits 1881', 'last 4 digits ####'],
  ['my pin is double seven oh nine', 'my pin is ###### ##### ## ####'],
  ['code is triple three one', 'code is ###### ##### ###'],
  ['pin number is five five five five', 'pin number is #### #### #### ####'],
  // Emails
  ['email jane.doe@example.com', 'email ####################'],
  ['J_Smith+calls@mail.example.co.uk thanks', '################################ thanks'],
  ['write to support@acme.io', 'write to ###############'],
  ['it is john at gmail dot com', 'it is #### ## ##### ### ###'],
  // Mixed: only the sensitive part goes
  ['card 4111111111111111 and pin 9876', 'card ################ and pin ####'],
  ['call 415 555 0199 or mail a@b.co', 'call ### ### #### or mail ######'],
];

const UNCHANGED: string[] = [
  'twenty percent of the balance',
  'it takes three to five business days',
  'we open at nine thirty',
  'the meeting is at 10:30 tomorrow',
  'it costs $19.99 a month',
  'that is twenty five dollars',
  'I paid $1,299.00 last week',
  'in 2024 we moved',
  'nineteen ninety nine was a good year',
  'I have 3 kids and 2 dogs',
  'page 12 of 40',
  'room 101',
  'about two weeks ago',
  'one moment please',
  'press one for billing',
  'I called 2 times',
  'order number 55 arrived',
  'it was 15 minutes late',
  'the first of March',
  'my zip is in the north',
  'one two three',
  'we have 24 7 support',
  'the renewal date is 12/25/2024',
];

t.test('sensitive numbers and emails are masked character by character', async (t) => {
  for (const [input, expected] of MASKED) t.equal(redact(input).text, expected, input);
});

t.test('innocent numbers stay: percentages, ranges, times, prices, years, counts', async (t) => {
  for (const input of UNCHANGED) t.equal(redact(input).text, input, input);
});

t.test('the table is big enough to mean something', async (t) => {
  t.ok(MASKED.length + UNCHANGED.length >= 60, `${MASKED.length + UNCHANGED.length} cases`);
});
