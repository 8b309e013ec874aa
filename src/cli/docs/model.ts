/**
 * The commands' own definitions, as one plain model that docs/commands.md,
 * the man pages (dist/man/man1) and the shell completions (dist/completions)
 * are rendered from: oclif's loaded command classes (their summary,
 * description, usage, examples, args and flags; the launch commands' flags
 * are made from the launch contract, src/cli/launch-options.ts). Nothing here
 * is written by hand per command, so help, man page, docs and completion
 * cannot disagree; test/integration/command-docs.test.ts checks the
 * committed and built files against a fresh rendering.
 */
import type { Command, Config } from '@oclif/core';

export interface DocFlag {
  name: string;
  char?: string;
  description: string;
  /** takes a value (`--name VALUE`); false for a boolean flag */
  value: boolean;
  multiple: boolean;
  /** the values it accepts, when oclif lists them */
  options?: string[];
  default?: string;
  /** a boolean with a --no-NAME form */
  allowNo: boolean;
}

export interface DocArg {
  name: string;
  description: string;
  required: boolean;
  /** the values it accepts, when oclif lists them */
  options?: string[];
}

export interface DocExample {
  description?: string;
  command: string;
}

export interface DocCommand {
  /** words after the binary's name: "exec", "cache list" */
  id: string;
  summary: string;
  description: string;
  /** after the binary's name: "exec [FLAGS] IMAGE COMMAND [ARGS...]" */
  usage: string;
  args: DocArg[];
  flags: DocFlag[];
  examples: DocExample[];
}

export interface DocTopic {
  name: string;
  description: string;
}

export interface DocModel {
  bin: string;
  /** one line: the package's description */
  summary: string;
  topics: DocTopic[];
  commands: DocCommand[];
}

const template = (s: string, bin: string): string => s.replace(/<%=\s*config\.bin\s*%>/g, bin);
const flat = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join('\n') : (s ?? ''));

function docFlag(name: string, f: Command.Flag.Cached): DocFlag {
  const value = f.type === 'option';
  const out: DocFlag = {
    name,
    description: flat(f.summary ?? f.description),
    value,
    multiple: value && f.multiple === true,
    allowNo: f.type === 'boolean' && f.allowNo === true,
  };
  if (f.char) out.char = f.char;
  if (value && f.options) out.options = [...f.options];
  if (value && f.default !== undefined && typeof f.default !== 'function') out.default = String(f.default);
  return out;
}

function docUsage(id: string, c: Command.Loadable, args: DocArg[]): string {
  const given = Array.isArray(c.usage) ? c.usage[0] : c.usage;
  if (given) return given;
  const words = args.map((a) => (a.required ? a.name.toUpperCase() : `[${a.name.toUpperCase()}]`));
  return [id, '[FLAGS]', ...words].join(' ');
}

function docCommand(c: Command.Loadable, bin: string, sep: string): DocCommand {
  const id = c.id.split(':').join(sep);
  const args = Object.entries(c.args ?? {}).map(
    ([name, a]): DocArg => ({ name, description: a.description ?? '', required: a.required === true, ...(a.options ? { options: [...a.options] } : {}) }),
  );
  const flags = Object.entries(c.flags ?? {})
    .filter(([, f]) => !f.hidden)
    .map(([name, f]) => docFlag(name, f));
  const examples = (c.examples ?? []).map((e): DocExample =>
    typeof e === 'string' ? { command: template(e, bin) } : { description: template(e.description, bin), command: template(e.command, bin) },
  );
  return {
    id,
    summary: c.summary ?? flat(c.description).split('\n')[0] ?? '',
    description: c.summary ? flat(c.description) : flat(c.description).split('\n').slice(1).join('\n').trim(),
    usage: template(docUsage(id, c, args), bin),
    args,
    flags,
    examples,
  };
}

/** The model of every visible command of a loaded oclif Config, sorted by id. */
export function docModel(config: Config): DocModel {
  const sep = config.topicSeparator ?? ' ';
  const commands = config.commands
    .filter((c) => !c.hidden)
    .map((c) => docCommand(c, config.bin, sep))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ids = new Set(commands.map((c) => c.id));
  const topics = config.topics
    .filter((t) => !t.hidden && !ids.has(t.name.split(':').join(sep)))
    .map((t) => ({ name: t.name.split(':').join(sep), description: t.description ?? '' }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  return { bin: config.bin, summary: String(config.pjson.description ?? ''), topics, commands };
}

/** The flag's spellings for help-like text: "-B, --bind VALUE" / "--[no-]xattrs". */
export function flagSynopsis(f: DocFlag): string {
  const long = f.allowNo ? `--[no-]${f.name}` : `--${f.name}`;
  const value = f.value ? (f.options ? ` ${f.options.join('|')}` : ' VALUE') : '';
  return `${f.char ? `-${f.char}, ` : ''}${long}${value}`;
}

/** The man page's file name of a command ("hpcc-cache-list.1"), or the overview's ("hpcc.1"). */
export function manPageName(bin: string, c?: DocCommand): string {
  return c ? `${bin}-${c.id.replace(/ /g, '-')}.1` : `${bin}.1`;
}
