/**
 * A node:test reporter, beside `spec`, for `npm test`: ends the run with one line saying what was skipped and why, so
 * that a machine without chromium, systemd, shellcheck, python3 or mosquitto shows at a glance which Debian packages
 * would run the rest (the reasons come from skipWithout in tools.ts, which names them).
 *
 * Plain JavaScript: node loads reporters before `--import tsx` takes effect.
 *
 * @param {AsyncIterable<{ type: string, data: { skip?: string | boolean } }>} source
 */
export default async function* skipSummary(source) {
  /** @type {Map<string, number>} */
  const reasons = new Map();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const skip = event.data.skip;
    if (skip === undefined || skip === false) continue;
    const reason = typeof skip === 'string' ? skip : 'skipped';
    // A skipped suite reports itself and none of its tests: it counts once.
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  if (reasons.size === 0) {
    yield 'skipped: nothing\n';
    return;
  }
  const total = [...reasons.values()].reduce((a, b) => a + b, 0);
  // skipWithout's reasons read "needs TOOL: apt-get install PACKAGE": group them, and name every package once.
  const packages = new Set();
  const parts = [...reasons].map(([reason, n]) => {
    const m = /^needs (.+): apt-get install (\S+)$/.exec(reason);
    if (m) packages.add(m[2]);
    return `${n} without ${m ? m[1] : reason}`;
  });
  const install = packages.size > 0 ? `; to run them: apt-get install ${[...packages].join(' ')}` : '';
  yield `skipped ${total} (${parts.join(', ')})${install}\n`;
}
