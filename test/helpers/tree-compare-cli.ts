/**
 * Run compareTrees in a separate process (used to compare a FUSE mount as
 * the unprivileged user who mounted it; root cannot see into such a mount).
 *   node tree-compare-cli.js A B '{"owners":true}'  → JSON array of differences on stdout
 */
import { compareTrees } from './tree-compare.js';

const [a, b, json] = process.argv.slice(2);
if (!a || !b) {
  process.stderr.write('usage: tree-compare-cli A B [options-json]\n');
  process.exit(2);
}
compareTrees(a, b, json ? JSON.parse(json) : {}).then(
  (d) => process.stdout.write(JSON.stringify(d)),
  (e: unknown) => {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
