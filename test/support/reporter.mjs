// tap reporter: a Transform stream fed tap's TAP output. It prints one line per test (every
// subtest, indented by nesting; groups of subtests are headings and are not counted), the
// diagnostics of whatever failed, and closes with the plain line `N passed, N failed` that CI
// tooling reads.
import { Transform } from 'node:stream';

const SUBTEST = /^(\s*)# Subtest: (.*)$/;
const RESULT = /^(\s*)(not ok|ok) \d+ - (.*?)(?: # (time=[\d.]+ms|SKIP.*|TODO.*))?\s*$/;

export default class EarshotReporter extends Transform {
  constructor() {
    super();
    this.pending = '';
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
    this.open = []; // subtests not closed yet: { indent, groups: boolean }
    this.fileLines = []; // lines of the current test file, to show failure details
    this.failedInFile = 0;
  }

  _transform(chunk, _encoding, callback) {
    this.pending += chunk.toString('utf8');
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) this.line(line);
    callback();
  }

  _flush(callback) {
    if (this.pending) this.line(this.pending);
    const skipped = this.skipped > 0 ? `, ${this.skipped} skipped` : '';
    this.push(`\n${this.passed} passed, ${this.failed} failed${skipped}\n`);
    callback();
  }

  line(line) {
    this.fileLines.push(line);
    const subtest = SUBTEST.exec(line);
    if (subtest) {
      const indent = subtest[1].length;
      const parent = this.open.at(-1);
      if (parent && parent.indent < indent) parent.groups = true;
      this.open.push({ indent, groups: false });
      return;
    }
    const result = RESULT.exec(line);
    if (!result) return;
    const [, spaces, status, name, directive = ''] = result;
    const indent = spaces.length;
    const top = this.open.at(-1);
    if (!top || top.indent !== indent) return; // an assertion, not a subtest
    this.open.pop();
    const pad = ' '.repeat(indent / 2);
    if (indent === 0) {
      this.push(`${status === 'ok' ? '✓' : '✗'} ${name} ${directive}\n`);
      if (status !== 'ok') {
        // A file that failed outside any named test still counts as one failure.
        if (this.failedInFile === 0) this.failed++;
        this.push(`${this.fileLines.filter((l) => !/^\s*ok \d+ /.test(l)).join('\n')}\n`);
      }
      this.fileLines = [];
      this.failedInFile = 0;
    } else if (top.groups) {
      this.push(`${pad}${status === 'ok' ? '✓' : '✗'} ${name} (group)\n`);
    } else if (directive.startsWith('SKIP') || directive.startsWith('TODO')) {
      this.skipped++;
      this.push(`${pad}- ${name} # ${directive}\n`);
    } else if (status === 'ok') {
      this.passed++;
      this.push(`${pad}✓ ${name}\n`);
    } else {
      this.failed++;
      this.failedInFile++;
      this.push(`${pad}✗ ${name}\n`);
    }
  }
}
