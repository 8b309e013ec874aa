/**
 * Every command's --help (and the root's and each topic's) reads cleanly on an
 * 80-column terminal: no line wider than 80 columns (oclif prints summaries
 * and example commands without wrapping them), and no description sentence
 * broken in the middle of a paragraph (a description hard-wrapped in the
 * source gets rewrapped by oclif into a full line followed by a stub). The
 * commands are found in dist/src/commands, so a new one is covered as-is.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, runHpcc } from '../helpers/env.js';

const WIDTH = 80;
const COMMANDS_DIR = path.join(REPO_ROOT, 'dist/src/commands');

/** Command ids ('build', 'cache clean', ...) and topics ('cache', ...) from the compiled command files. */
function commandIds(): { commands: Array<{ id: string; file: string }>; topics: string[] } {
  const commands: Array<{ id: string; file: string }> = [];
  const topics: string[] = [];
  const walk = (dir: string, prefix: string[]) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) {
        topics.push([...prefix, e.name].join(' '));
        walk(path.join(dir, e.name), [...prefix, e.name]);
      } else if (e.name.endsWith('.js')) {
        const name = e.name.slice(0, -3);
        const id = name === 'index' ? prefix : [...prefix, name];
        commands.push({ id: id.join(' '), file: path.join(dir, e.name) });
      }
    }
  };
  walk(COMMANDS_DIR, []);
  return { commands, topics };
}

function help(id: string): string[] {
  const r = runHpcc([...(id ? id.split(' ') : []), '--help'], { env: { ...process.env, OCLIF_COLUMNS: String(WIDTH) } });
  expect(r.status, `hpcc ${id} --help: ${r.stderr}`).to.equal(0);
  // eslint-disable-next-line no-control-regex
  return r.stdout.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
}

/** Lines wider than WIDTH columns. */
function tooWide(lines: string[]): string[] {
  return lines.filter((l) => [...l].length > WIDTH).map((l) => `${[...l].length} columns: ${l}`);
}

/**
 * Lines of the DESCRIPTION section that end although the next line's first
 * word would have fit after them: a sentence broken by a newline in the source.
 */
function brokenLines(lines: string[]): string[] {
  const start = lines.indexOf('DESCRIPTION');
  if (start < 0) return [];
  const bad: string[] = [];
  for (let i = start + 1; i + 1 < lines.length; i++) {
    const line = lines[i]!;
    const next = lines[i + 1]!;
    if (/^\S/.test(next)) break; // the next section's header
    if (line.trim() === '' || next.trim() === '') continue; // a paragraph boundary
    const word = next.trim().split(/\s+/)[0]!;
    if ([...line].length + 1 + [...word].length <= WIDTH) bad.push(`"${line.trim()}" / "${next.trim()}"`);
  }
  return bad;
}

describe('e2e: --help at 80 columns', function () {
  this.timeout(120_000);
  const { commands, topics } = commandIds();

  it('finds the commands in dist/src/commands', () => {
    expect(commands.map((c) => c.id)).to.include.members(['build', 'exec', 'cache clean', 'sif list']);
    expect(topics).to.include('sif');
  });

  for (const id of ['', ...topics]) {
    it(`hpcc ${id ? `${id} ` : ''}--help: no line over ${WIDTH} columns`, () => {
      expect(tooWide(help(id))).to.deep.equal([]);
    });
  }

  for (const { id, file } of commands) {
    it(`hpcc ${id} --help: no line over ${WIDTH} columns, no sentence broken mid-paragraph`, async () => {
      const lines = help(id);
      expect(tooWide(lines)).to.deep.equal([]);
      expect(brokenLines(lines)).to.deep.equal([]);
      // The source: a one-line summary; paragraphs without line breaks inside (oclif wraps them).
      const cmd = (await import(pathToFileURL(file).href)).default as { summary?: string; description?: string };
      expect(cmd.summary ?? '', 'summary').to.not.contain('\n');
      for (const para of (cmd.description ?? '').split('\n\n')) expect(para, 'description paragraph').to.not.contain('\n');
    });
  }
});
