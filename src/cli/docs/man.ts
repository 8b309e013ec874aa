/**
 * Man pages (roff, man(7) macros) from the command model (model.ts): hpcc.1,
 * the overview, and one page per command, hpcc-exec.1, hpcc-cache-list.1, …
 * Written to dist/man/man1 at build (scripts/gen-docs.mjs); `man -l` renders
 * them (test/integration/command-docs.test.ts). No date in the header, so the
 * same commands and version give the same bytes.
 */
import { manPageName, type DocCommand, type DocFlag, type DocModel } from './model.js';

/** Text for a roff line: backslashes escaped, non-ASCII as \[uXXXX], no control character at the start. */
function esc(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/[^\n\x20-\x7e]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`)
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}
/** Command-line text: also hyphens as minus signs (copyable options). */
const code = (s: string): string => esc(s).replace(/-/g, '\\-');

function paragraphs(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s*\n\s*/g, ' ').trim())
    .filter(Boolean)
    .flatMap((p, i) => (i === 0 ? [esc(p)] : ['.PP', esc(p)]));
}

function flagItem(f: DocFlag): string[] {
  const names = [...(f.char ? [`\\fB${code(`-${f.char}`)}\\fR`] : []), `\\fB${code(f.allowNo ? `--[no-]${f.name}` : `--${f.name}`)}\\fR`].join(', ');
  const value = f.value ? ` \\fI${f.options ? code(f.options.join('|')) : 'VALUE'}\\fR` : '';
  const extra = [f.multiple ? 'May be given more than once.' : '', f.default !== undefined ? `Default: ${esc(f.default)}.` : ''].filter(Boolean).join(' ');
  return ['.TP', `${names}${value}`, `${esc(f.description)}${extra ? `. ${extra}` : ''}`.replace(/\.\. /, '. ')];
}

function header(m: DocModel, name: string, version: string): string[] {
  return [
    `.\\" GENERATED from hpcc's command definitions (src/cli/docs); do not edit.`,
    `.TH ${code(name.toUpperCase())} 1 "" "${esc(m.bin)} ${esc(version)}" "${esc(m.bin)} manual"`,
  ];
}

export function renderCommandMan(m: DocModel, c: DocCommand, version: string): string {
  const page = manPageName(m.bin, c).replace(/\.1$/, '');
  const out = [...header(m, page, version), '.SH NAME', `${code(page)} \\- ${esc(c.summary)}`, '.SH SYNOPSIS', `.B ${code(`${m.bin} ${c.id}`)}`];
  const rest = c.usage.startsWith(c.id) ? c.usage.slice(c.id.length).trim() : c.usage;
  if (rest) out.push(code(rest));
  out.push('.SH DESCRIPTION', esc(c.summary));
  if (c.description) out.push('.PP', ...paragraphs(c.description));
  if (c.args.length > 0) {
    out.push('.SH ARGUMENTS');
    for (const a of c.args) out.push('.TP', `\\fI${code(a.name.toUpperCase())}\\fR${a.required ? '' : ' (optional)'}`, esc(a.description));
  }
  if (c.flags.length > 0) {
    out.push('.SH OPTIONS');
    for (const f of c.flags) out.push(...flagItem(f));
  }
  if (c.examples.length > 0) {
    out.push('.SH EXAMPLES');
    for (const e of c.examples) {
      out.push('.PP');
      if (e.description) out.push(esc(e.description), '.PP');
      out.push('.RS', '.nf', code(e.command), '.fi', '.RE');
    }
  }
  out.push('.SH SEE ALSO', `.BR ${code(m.bin)} (1)`);
  return out.join('\n') + '\n';
}

export function renderOverviewMan(m: DocModel, version: string): string {
  const out = [
    ...header(m, m.bin, version),
    '.SH NAME',
    `${code(m.bin)} \\- ${esc(m.summary)}`,
    '.SH SYNOPSIS',
    `.B ${code(m.bin)}`,
    '\\fICOMMAND\\fR [\\fIFLAGS\\fR] [\\fIARGS\\fR...]',
    '.br',
    `.B ${code(m.bin)}`,
    `\\fICOMMAND\\fR \\fB${code('--help')}\\fR`,
    '.SH DESCRIPTION',
    esc(m.summary),
    '.PP',
    `Each command has its own page, ${code(`${m.bin}-COMMAND`)}(1), with the text of ${code(`${m.bin} COMMAND --help`)}.`,
    '.SH COMMANDS',
  ];
  for (const c of m.commands) out.push('.TP', `\\fB${code(`${m.bin} ${c.id}`)}\\fR`, esc(c.summary));
  if (m.topics.length > 0) {
    out.push('.SH TOPICS');
    for (const t of m.topics) out.push('.TP', `\\fB${code(`${m.bin} ${t.name}`)}\\fR`, esc(t.description));
  }
  out.push(
    '.SH SHELL COMPLETION',
    `bash: ${code(`source <(${m.bin} completion bash)`)}; zsh: ${code(`${m.bin} completion zsh > "\${fpath[1]}/_${m.bin}"`)}.`,
    '.SH SEE ALSO',
    m.commands.map((c) => `.BR ${code(manPageName(m.bin, c).replace(/\.1$/, ''))} (1)`).join(',\n'),
  );
  return out.join('\n') + '\n';
}

/** Every page: file name → text. */
export function renderManPages(m: DocModel, version: string): Map<string, string> {
  const pages = new Map<string, string>([[manPageName(m.bin), renderOverviewMan(m, version)]]);
  for (const c of m.commands) pages.set(manPageName(m.bin, c), renderCommandMan(m, c, version));
  return pages;
}
