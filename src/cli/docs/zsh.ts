/**
 * The zsh completion function (dist/completions/_hpcc; `hpcc completion zsh`),
 * rendered from the command model through completion-data.ts: commands and
 * topics with their summaries, each command's flags through _arguments (with
 * their descriptions, fixed values, files for other values), image arguments
 * as *.sif files, directories and the cache's docker:// references, and a
 * launch command's words after IMAGE as a command line of their own.
 * Works autoloaded from $fpath (#compdef) and sourced (it then calls compdef).
 */
import { completionData, refsFunction, shellWord, type CompletionCommand } from './completion-data.js';
import type { DocFlag, DocModel } from './model.js';

/** A single-quoted zsh word. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
/** Text inside _arguments' [description]. */
const bracket = (s: string): string => s.replace(/\\/g, '\\\\').replace(/([[\]:])/g, '\\$1').replace(/\s+/g, ' ');
/** Text of a _describe entry's description ("word:description"). */
const described = (word: string, text: string): string => q(`${shellWord(word.replace(/ /g, '-'))}:${text.replace(/\s+/g, ' ')}`);

function flagSpec(f: DocFlag): string[] {
  const names = [`--${f.name}`, ...(f.char ? [`-${f.char}`] : [])].map(shellWord);
  const excl = f.multiple ? '*' : names.length > 1 ? `(${names.join(' ')})` : '';
  const action = !f.value ? '' : f.options ? `:value:(${f.options.map(shellWord).join(' ')})` : ':value:_files';
  const desc = `[${bracket(f.description)}]`;
  const specs = names.map((n) => q(`${excl}${n}${f.value ? (n.startsWith('--') ? '=' : '+') : ''}${desc}${action}`));
  if (f.allowNo) specs.push(q(`--no-${shellWord(f.name)}[${bracket(`not --${f.name}`)}]`));
  return specs;
}

function argumentsCall(c: CompletionCommand): string {
  const specs = c.flags.flatMap(flagSpec);
  if (c.launch) specs.push(q(':image:_hpcc_image'), q('*::command:_normal'));
  else {
    c.args.forEach((k, i) => {
      const action = k === 'image' ? 'image:_hpcc_image' : k === 'file' ? 'file:_files' : `value:(${k.words.map(shellWord).join(' ')})`;
      specs.push(q(`${i + 1}:${action}`));
    });
  }
  return `_arguments -s -S \\\n        ${specs.join(' \\\n        ')}`;
}

export function renderZshCompletion(m: DocModel): string {
  const d = completionData(m);
  const top = d.top.map((t) => described(t.word, t.summary)).join(' \\\n    ');
  const topicCases = [...d.topics.entries()]
    .map(([t, subs]) => `    ${q(t)}) subs=(${subs.map((s) => described(s.word, s.summary)).join(' ')}) ;;`)
    .join('\n');
  const commandCases = d.commands.map((c) => `    ${q(c.id)})\n      ${argumentsCall(c)} ;;`).join('\n');
  return `#compdef ${shellWord(d.bin)}
# zsh completion for ${d.bin}: put this file as _${d.bin} on $fpath (share/zsh/site-functions),
# or run: source <(${d.bin} completion zsh)
# GENERATED from ${d.bin}'s command definitions (src/cli/docs/zsh.ts); do not edit.

# docker:// references this user's cache resolved before (no Node, no registry)
${refsFunction('_hpcc_refs', 'zsh')}

# an image: *.sif files, directories, cached docker:// references
_hpcc_image() {
  local -a refs
  refs=(\${(f)"$(_hpcc_refs)"})
  _files -g '*.sif(-.)'
  (( \${#refs} )) && compadd -Q -M 'r:|[:/]=* r:|=*' -a refs
  return 0
}

_hpcc() {
  local -a cmds subs
  local cmd
  cmds=(
    ${top})
  if (( CURRENT == 2 )); then
    _describe -t commands '${d.bin} command' cmds
    return
  fi
  cmd=$words[2]
  subs=()
  case $cmd in
${topicCases}
  esac
  if (( \${#subs} )); then
    if (( CURRENT == 3 )); then
      _describe -t commands "${d.bin} $cmd command" subs
      return
    fi
    cmd="$cmd $words[3]"
    shift words
    (( CURRENT-- ))
  fi
  shift words
  (( CURRENT-- ))
  case $cmd in
${commandCases}
  esac
}

if [[ \${zsh_eval_context[-1]-} == loadautofunc ]]; then
  _hpcc "$@"
else
  compdef _hpcc ${shellWord(d.bin)}
fi
`;
}
