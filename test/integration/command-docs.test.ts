/**
 * Help, man pages, docs/commands.md and the shell completions never disagree:
 * all are made from the loaded command classes (src/cli/docs). Fails when
 *  - docs/commands.md is not the rendering of the current commands (a flag,
 *    summary or example changed without `npm run docs`),
 *  - a built file of dist/man/man1 or dist/completions is stale, or a page
 *    is missing or left over,
 *  - a flag that oclif's --help shows is missing from the man page, the docs
 *    or the completion (every launch contract option included),
 *  - a man page does not render with `man -l` or makes groff warn.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Config } from '@oclif/core';
import { LAUNCH_ACTIONS, LAUNCH_OPTIONS } from '../../src/cli/launch-options.js';
import { COMMANDS_MD, MAN_DIR, loadDocs, renderBuildDocs, renderCommandsDoc, type LoadedDocs } from '../../src/cli/docs/generate.js';
import { manPageName } from '../../src/cli/docs/model.js';
import { REPO_ROOT, findTool, runHpcc } from '../helpers/env.js';

/** groff's man output as plain text (no overstrike, no hyphenation breaks). */
function manText(file: string): { text: string; stderr: string; status: number | null } {
  const r = spawnSync('man', ['-l', '-E', 'UTF-8', file], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', MANPAGER: 'cat', PAGER: 'cat' } });
  return { text: r.stdout.replace(/.\x08/g, '').replace(/\u2010\n\s*/g, ''), stderr: r.stderr, status: r.status };
}

describe('integration: commands docs (help, man pages, docs/commands.md, completions from one definition)', function () {
  this.timeout(120_000);
  let docs: LoadedDocs;
  let config: Config;

  before(async () => {
    docs = await loadDocs(REPO_ROOT);
    config = await Config.load(REPO_ROOT);
  });

  it('docs/commands.md is the rendering of the current commands (run `npm run docs` after changing one)', () => {
    const committed = fs.readFileSync(path.join(REPO_ROOT, COMMANDS_MD), 'utf8');
    expect(committed === renderCommandsDoc(docs), `${COMMANDS_MD} is stale: run npm run docs`).to.equal(true);
  });

  it('dist/man/man1 and dist/completions hold exactly the rendering of the current commands', () => {
    const want = renderBuildDocs(docs);
    for (const [rel, text] of want) expect(fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8') === text, `${rel} is stale: npm run build`).to.equal(true);
    const pages = fs.readdirSync(path.join(REPO_ROOT, MAN_DIR)).sort();
    expect(pages).to.deep.equal([...want.keys()].filter((k) => k.startsWith(MAN_DIR)).map((k) => path.basename(k)).sort());
    expect(pages).to.include.members(['hpcc.1', 'hpcc-exec.1', 'hpcc-cache-list.1', 'hpcc-completion.1']);
  });

  it('every command oclif knows has a page and a section; every flag its --help shows is in the man page, the docs and the completion', () => {
    const md = fs.readFileSync(path.join(REPO_ROOT, COMMANDS_MD), 'utf8');
    const bash = fs.readFileSync(path.join(REPO_ROOT, 'dist/completions/hpcc.bash'), 'utf8');
    const zsh = fs.readFileSync(path.join(REPO_ROOT, 'dist/completions/_hpcc'), 'utf8');
    const visible = config.commands.filter((c) => !c.hidden);
    expect(visible.map((c) => c.id.replace(/:/g, ' ')).sort()).to.deep.equal(docs.model.commands.map((c) => c.id).sort());
    for (const cmd of visible) {
      const id = cmd.id.replace(/:/g, ' ');
      const c = docs.model.commands.find((x) => x.id === id)!;
      const h = runHpcc([...id.split(' '), '--help'], { env: { ...process.env, OCLIF_COLUMNS: '400' } });
      expect(h.status, `${id} --help: ${h.stderr}`).to.equal(0);
      const helpText = h.stdout;
      const man = fs.readFileSync(path.join(REPO_ROOT, MAN_DIR, manPageName('hpcc', c)), 'utf8');
      expect(md, id).to.contain(`## hpcc ${id}\n`);
      expect(helpText, `${id} --help: summary`).to.contain(c.summary);
      for (const [name, f] of Object.entries(cmd.flags)) {
        if (f.hidden) continue;
        expect(helpText, `${id} --help shows --${name}`).to.contain(`--${name}`);
        expect(man, `${id} man page: --${name}`).to.match(new RegExp(`\\\\-\\\\-(\\[no\\\\-\\])?${name.replace(/-/g, '\\\\-')}\\b`));
        expect(md, `commands.md: ${id} --${name}`).to.match(new RegExp(`--(\\[no-\\])?${name}\\b`));
        expect(bash, `bash completion: --${name}`).to.contain(`--${name}`);
        expect(zsh, `zsh completion: --${name}`).to.contain(`--${name}`);
      }
    }
  });

  it('the launch commands document and complete every option of the launch contract', () => {
    for (const action of LAUNCH_ACTIONS) {
      const c = docs.model.commands.find((x) => x.id === action)!;
      expect(c.flags.map((f) => f.name)).to.deep.equal(LAUNCH_OPTIONS.map((o) => o.name));
      for (const o of LAUNCH_OPTIONS) {
        const f = c.flags.find((x) => x.name === o.name)!;
        expect({ value: f.value, multiple: f.multiple, char: f.char, description: f.description }).to.deep.equal({
          value: o.value,
          multiple: o.multiple,
          char: o.char,
          description: o.description,
        });
      }
    }
  });

  it('man -l renders every page (NAME, the summary, each option), and groff reports no warning', function () {
    if (!findTool('man') || !findTool('groff')) throw new Error('man and groff are needed (scripts/setup-host.sh installs man-db)');
    for (const name of fs.readdirSync(path.join(REPO_ROOT, MAN_DIR))) {
      const file = path.join(REPO_ROOT, MAN_DIR, name);
      const r = manText(file);
      expect(r.status, `${name}: ${r.stderr}`).to.equal(0);
      expect(r.text, name).to.match(/^NAME\n/m);
      const g = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', file], { encoding: 'utf8' });
      expect(g.stderr, `${name}: groff warnings`).to.equal('');
      const c = docs.model.commands.find((x) => manPageName('hpcc', x) === name);
      if (!c) continue;
      expect(r.text.replace(/\s+/g, ' '), name).to.contain(c.summary.replace(/\s+/g, ' '));
      for (const f of c.flags) expect(r.text, `${name}: --${f.name}`).to.match(new RegExp(`--(\\[no-\\])?${f.name}\\b`));
    }
  });
});
