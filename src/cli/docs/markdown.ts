/**
 * docs/commands.md from the command model (model.ts). Deterministic: the same
 * commands give the same bytes (no version, no date), so the committed file
 * can be compared with a fresh rendering (test/integration/command-docs.test.ts;
 * `npm run docs` rewrites it).
 */
import { flagSynopsis, manPageName, type DocCommand, type DocModel } from './model.js';

/** Markdown-safe inline text: no raw HTML, no accidental emphasis or tables. */
const md = (s: string): string => s.replace(/([\\`*_<>|[\]])/g, '\\$1');
const anchor = (c: DocCommand, bin: string): string => `${bin}-${c.id}`.replace(/ /g, '-');

function renderCommand(c: DocCommand, bin: string): string {
  const out: string[] = [`## ${bin} ${c.id}`, '', md(c.summary), '', '```', `${bin} ${c.usage}`, '```', ''];
  if (c.args.length > 0) {
    out.push('Arguments:', '');
    for (const a of c.args) out.push(`- \`${a.name.toUpperCase()}\`${a.required ? '' : ' (optional)'}: ${md(a.description)}`);
    out.push('');
  }
  if (c.flags.length > 0) {
    out.push('Flags:', '');
    for (const f of c.flags) {
      const extra = [f.multiple ? 'repeatable' : '', f.default !== undefined ? `default: ${f.default}` : ''].filter(Boolean).join('; ');
      out.push(`- \`${flagSynopsis(f)}\`: ${md(f.description)}${extra ? ` (${md(extra)})` : ''}`);
    }
    out.push('');
  }
  if (c.description) {
    for (const para of c.description.split(/\n\s*\n/)) out.push(md(para.replace(/\s*\n\s*/g, ' ').trim()), '');
  }
  if (c.examples.length > 0) {
    out.push('Examples:', '', '```');
    for (const e of c.examples) {
      if (e.description) out.push(`# ${e.description}`);
      out.push(e.command);
    }
    out.push('```', '');
  }
  out.push(`Man page: \`${manPageName(bin, c)}\`.`, '');
  return out.join('\n');
}

export function renderCommandsMarkdown(m: DocModel): string {
  const out: string[] = [
    `# ${m.bin} commands`,
    '',
    '<!-- GENERATED from the commands\' definitions (src/commands, src/cli/launch-options.ts) by `npm run docs`; do not edit. -->',
    '',
    md(m.summary),
    '',
    `\`${m.bin} COMMAND --help\` prints the same text; \`man ${m.bin}-COMMAND\` (dist/man/man1) too. ` +
      `Shell completion: \`source <(${m.bin} completion bash)\`, or \`${m.bin} completion zsh\` into a file \`_${m.bin}\` on \`$fpath\`.`,
    '',
  ];
  for (const t of m.topics) {
    const subs = m.commands.filter((c) => c.id.startsWith(`${t.name} `));
    out.push(`- \`${m.bin} ${t.name}\`: ${md(t.description)} (${subs.map((c) => `[${c.id}](#${anchor(c, m.bin)})`).join(', ')})`);
  }
  out.push('');
  out.push('| command | summary |', '| --- | --- |');
  for (const c of m.commands) out.push(`| [${m.bin} ${c.id}](#${anchor(c, m.bin)}) | ${md(c.summary)} |`);
  out.push('');
  for (const c of m.commands) out.push(renderCommand(c, m.bin));
  return out.join('\n').replace(/\n{3,}/g, '\n\n').replace(/\n*$/, '\n');
}
