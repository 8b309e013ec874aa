// Writes dist/gen/hpcc-contract.h, the C header of the launch contract, from the
// compiled TypeScript (dist/src/cli/contract-header.js; run tsc first). native/Makefile
// runs this before it compiles anything that includes the header. The file is
// rewritten only when its text changes, so an unchanged contract rebuilds no C.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'gen', 'hpcc-contract.h');
const { renderContractHeader } = await import(new URL('../dist/src/cli/contract-header.js', import.meta.url).href);
const text = renderContractHeader();
let old = null;
try {
  old = fs.readFileSync(out, 'utf8');
} catch {
  /* first build */
}
if (old !== text) {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.tmp`, text);
  fs.renameSync(`${out}.tmp`, out);
}
