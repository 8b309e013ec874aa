/**
 * What the shell completions (bash.ts, zsh.ts) need to know, derived from
 * the command model (model.ts) and the launch contract: the words at each
 * level, each command's flags, which flags take a value, and what each
 * positional argument completes to.
 *
 * docker:// references come from the cache without starting Node: the
 * completion reads the records `hpcc pull` and launches of references write
 * (CACHE/refs/*.json, core/pull.ts) with shell built-ins only. Measured on
 * the 2-core development VM (busy with other builds): `hpcc cache list` took
 * 1.6-2.4 s (Node and oclif start-up) where bash read 52 records in ~15 ms, so
 * a TAB never starts Node. The cache root follows util/cache-path.ts
 * (CACHE_LAYOUT), rendered into the script from that table.
 */
import { LAUNCH_ACTIONS } from '../launch-options.js';
import { CACHE_LAYOUT } from '../../util/cache-path.js';
import type { DocArg, DocCommand, DocFlag, DocModel } from './model.js';

/** What a positional argument completes to: an image, a file, or one of a list of words. */
export type ArgKind = 'image' | 'file' | { words: string[] };

export interface CompletionCommand {
  id: string;
  summary: string;
  flags: DocFlag[];
  /** per positional argument, in order */
  args: ArgKind[];
  /** a launch command: after IMAGE, the words are the payload's (completed as commands and files) */
  launch: boolean;
}

export interface CompletionData {
  bin: string;
  /** first words: commands and topics, with their summaries */
  top: { word: string; summary: string }[];
  /** topic → its subcommands' words and summaries */
  topics: Map<string, { word: string; summary: string }[]>;
  commands: CompletionCommand[];
}

/** Arguments that name an image: a SIF file, a sandbox directory, or a reference (pull takes `[OUT] REF`). */
function argKind(c: DocCommand, a: DocArg): ArgKind {
  if (a.options) return { words: a.options };
  return a.name === 'image' || c.id === 'pull' ? 'image' : 'file';
}

export function completionData(m: DocModel): CompletionData {
  const topics = new Map<string, { word: string; summary: string }[]>();
  for (const t of m.topics) topics.set(t.name, []);
  const top: { word: string; summary: string }[] = m.topics.map((t) => ({ word: t.name, summary: t.description }));
  for (const c of m.commands) {
    const [first, ...more] = c.id.split(' ');
    if (more.length > 0 && topics.has(first!)) topics.get(first!)!.push({ word: more.join(' '), summary: c.summary });
    else top.push({ word: c.id, summary: c.summary });
  }
  top.sort((a, b) => (a.word < b.word ? -1 : 1));
  const launch = new Set<string>(LAUNCH_ACTIONS);
  const commands = m.commands.map((c) => ({
    id: c.id,
    summary: c.summary,
    flags: c.flags,
    args: c.args.map((a) => argKind(c, a)),
    launch: launch.has(c.id),
  }));
  return { bin: m.bin, top, topics, commands };
}

/** Every spelling of a flag: --name, --no-name, -c. */
export function flagWords(f: DocFlag): string[] {
  return [`--${f.name}`, ...(f.allowNo ? [`--no-${f.name}`] : []), ...(f.char ? [`-${f.char}`] : [])];
}

/** A word the scripts may hold unquoted (generated words only; anything else fails the build). */
export function shellWord(s: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$|^--?[A-Za-z0-9][A-Za-z0-9-]*$/.test(s)) throw new Error(`completion: ${JSON.stringify(s)} is not a plain word`);
  return s;
}

/**
 * Shell code (bash and zsh alike) that prints the docker:// references of this
 * user's cache, one a line: records of the user's own, in the refs directory,
 * whose reference holds only the characters a parsed reference can (nothing a
 * shell would expand). Never a registry request, never Node.
 */
export function refsFunction(name: string, shell: 'bash' | 'zsh'): string {
  const matchVar = shell === 'bash' ? 'BASH_REMATCH[1]' : 'match[1]';
  const noMatchOk = shell === 'zsh' ? '(N)' : ''; // zsh: an empty directory is no error
  const L = CACHE_LAYOUT;
  return `${name}() {
  local root= f= line=
  if [[ -n \${${L.rootVar}-} ]]; then root=\${${L.rootVar}}
  elif [[ -n \${${L.xdgVar}-} ]]; then root=\${${L.xdgVar}}/${L.xdgSub}
  elif [[ -n \${HOME-} ]]; then root=\${HOME}/${L.homeSub}
  fi
  [[ \$root == /* && -d \$root/${REFS_DIR} && -O \$root/${REFS_DIR} ]] || return 0
  for f in "\$root"/${REFS_DIR}/*.json${noMatchOk}; do
    [[ -f \$f && ! -L \$f && -O \$f ]] || continue
    line=
    IFS= read -r line < "\$f" 2>/dev/null
    [[ \$line =~ '"reference":"'([A-Za-z0-9._:/@+-]+)'"' ]] || continue
    printf 'docker://%s\\n' "\${${matchVar}}"
  done
}`;
}
/** core/pull.ts refRecordPath: the records' directory below the cache root. */
export const REFS_DIR = CACHE_LAYOUT.refs;
