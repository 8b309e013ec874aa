// Writes the commands' man pages and shell completions into dist/ (dist/man/man1,
// dist/completions) from the compiled commands (run tsc first; npm run build runs
// this), and with --commands-md also docs/commands.md (npm run docs). Stale files in
// dist/man/man1 (a removed command's page) are removed. src/cli/docs/generate.ts
// says what each file is.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const gen = await import(new URL('../dist/src/cli/docs/generate.js', import.meta.url).href);
const docs = await gen.loadDocs(root);
const files = gen.renderBuildDocs(docs);
if (process.argv.includes('--commands-md')) files.set(gen.COMMANDS_MD, gen.renderCommandsDoc(docs));

const manDir = path.join(root, gen.MAN_DIR);
if (fs.existsSync(manDir)) {
  for (const f of fs.readdirSync(manDir)) if (!files.has(`${gen.MAN_DIR}/${f}`)) fs.rmSync(path.join(manDir, f), { force: true });
}
for (const [rel, text] of files) {
  const out = path.join(root, rel);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(`${out}.tmp`, text);
  fs.renameSync(`${out}.tmp`, out);
}
