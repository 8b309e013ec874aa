/**
 * The bash completion script (dist/completions/hpcc.bash; `hpcc completion
 * bash`), rendered from the command model through completion-data.ts:
 * commands and topics, each command's flags, the values of flags with a fixed
 * list, files for other values, and for image arguments *.sif files,
 * directories and the docker:// references of the cache. A launch command's
 * words after IMAGE are the payload's: completed as bash would by default.
 *
 * The command line is split from COMP_LINE (not COMP_WORDS, which bash also
 * splits at ":" and "="), so `docker://` words are whole; replies are then
 * trimmed to the part after the last ":" as bash replaces only that part.
 * Cache words are filtered in bash, never through `compgen -W` (which would
 * expand them); generated words are plain by construction (shellWord).
 */
import { completionData, flagWords, refsFunction, shellWord, type ArgKind, type CompletionCommand } from './completion-data.js';
import type { DocModel } from './model.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function cases(entries: [string, string][], indent = '    '): string {
  return entries.map(([k, v]) => `${indent}${q(k)}) ${v} ;;`).join('\n');
}

function commandTables(cmds: CompletionCommand[]): string {
  const flags = cmds.map((c): [string, string] => [c.id, `w=${q(c.flags.flatMap(flagWords).map(shellWord).join(' '))}`]);
  const valued = cmds.map((c): [string, string] => [c.id, `w=${q(` ${c.flags.filter((f) => f.value).flatMap(flagWords).join(' ')} `)}`]);
  const values: [string, string][] = [];
  for (const c of cmds) {
    for (const f of c.flags) {
      if (!f.options) continue;
      for (const w of flagWords(f)) values.push([`${c.id} ${w}`, `w=${q(f.options.map(shellWord).join(' '))}`]);
    }
  }
  // per argument: image, file, or "=" and its words joined by "," (words are plain: no "," in them)
  const kind = (k: ArgKind): string => (typeof k === 'string' ? k : `=${k.words.map(shellWord).join(',')}`);
  const args = cmds.map((c): [string, string] => [c.id, `w=${q(`${c.launch ? 'launch ' : ''}${c.args.map(kind).join(' ')}`)}`]);
  return `# the flags of each command (every spelling)
_hpcc_flags() {
  local w=
  case $1 in
${cases(flags)}
  esac
  printf '%s' "$w"
}

# the flags that take a value, space-delimited
_hpcc_valued() {
  local w=' '
  case $1 in
${cases(valued)}
  esac
  printf '%s' "$w"
}

# a flag's fixed values ("COMMAND FLAG")
_hpcc_values() {
  local w=
  case $1 in
${cases(values)}
  esac
  printf '%s' "$w"
}

# what the positional arguments complete to (image, file, or =a,b,c: one of these words), "launch" first for a launch command
_hpcc_args() {
  local w=
  case $1 in
${cases(args)}
  esac
  printf '%s' "$w"
}`;
}

export function renderBashCompletion(m: DocModel): string {
  const d = completionData(m);
  const top = d.top.map((t) => shellWord(t.word)).join(' ');
  const topics = [...d.topics.entries()].map(([t, subs]): [string, string] => [t, `w=${q(subs.map((s) => shellWord(s.word)).join(' '))}`]);
  return `# bash completion for ${d.bin}: source <(${d.bin} completion bash), or install as
# share/bash-completion/completions/${d.bin}.
# GENERATED from ${d.bin}'s command definitions (src/cli/docs/bash.ts); do not edit.

# docker:// references this user's cache resolved before (no Node, no registry)
${refsFunction('_hpcc_refs', 'bash')}

# a topic's subcommands (empty: not a topic)
_hpcc_topic() {
  local w=
  case $1 in
${cases(topics)}
  esac
  printf '%s' "$w"
}

${commandTables(d.commands)}

# add the words of $2.. that start with $1 (no expansion of the words)
_hpcc_add() {
  local cur=$1 x
  shift
  for x in "$@"; do [[ $x == "$cur"* ]] && COMPREPLY+=("$x"); done
}

# an image: *.sif files, directories, cached docker:// references
_hpcc_image() {
  local cur=$1 x
  compopt -o filenames 2>/dev/null
  while IFS= read -r x; do COMPREPLY+=("$x"); done < <(compgen -d -- "$cur"; compgen -f -X '!*.sif' -- "$cur")
  if [[ docker:// == "$cur"* || $cur == docker://* ]]; then
    local -a refs=()
    while IFS= read -r x; do refs+=("$x"); done < <(_hpcc_refs)
    _hpcc_add "$cur" "\${refs[@]}"
  fi
}

_hpcc() {
  COMPREPLY=()
  local line=\${COMP_LINE:0:COMP_POINT} cur= x
  local -a w=()
  read -ra w <<< "$line"
  if [[ $line != *[[:space:]] && \${#w[@]} -gt 0 ]]; then cur=\${w[\${#w[@]}-1]}; unset 'w[\${#w[@]}-1]'; fi
  local n=\${#w[@]} cmd= i=2 subs
  if (( n <= 1 )); then
    _hpcc_add "$cur" ${top}
  else
    cmd=\${w[1]}
    subs=$(_hpcc_topic "$cmd")
    if [[ -n $subs && $n -eq 2 ]]; then
      _hpcc_add "$cur" $subs
    else
      [[ -n $subs ]] && cmd="$cmd \${w[2]}" && i=3
      _hpcc_complete "$cmd" "$cur" "\${w[@]:i}"
    fi
  fi
  # bash replaces only the part of the word after its last ":" (COMP_WORDBREAKS)
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local pre=\${cur%"\${cur##*:}"}
    COMPREPLY=("\${COMPREPLY[@]#"$pre"}")
  fi
  return 0
}

# $1 command, $2 the word being completed, $3.. the words between them
_hpcc_complete() {
  local cmd=$1 cur=$2 valued kinds want= k=0 launch= x
  shift 2
  valued=$(_hpcc_valued "$cmd")
  read -ra kinds <<< "$(_hpcc_args "$cmd")"
  [[ \${kinds[0]} == launch ]] && launch=1 && kinds=("\${kinds[@]:1}")
  local dashdash=
  for x in "$@"; do
    if [[ -n $want ]]; then want=; continue; fi
    if [[ -z $dashdash && $x == -- ]]; then dashdash=1; continue; fi
    if [[ -z $dashdash && $x == -* && $x != *=* && $valued == *" $x "* ]]; then want=$x; continue; fi
    [[ -z $dashdash && $x == -* ]] && continue
    k=$((k + 1))
    # a launch command's words after IMAGE belong to the payload
    if [[ -n $launch ]]; then compopt -o bashdefault -o default 2>/dev/null; return 0; fi
  done
  if [[ -n $want ]]; then
    local vals
    vals=$(_hpcc_values "$cmd $want")
    if [[ -n $vals ]]; then _hpcc_add "$cur" $vals; else compopt -o filenames 2>/dev/null; while IFS= read -r x; do COMPREPLY+=("$x"); done < <(compgen -f -- "$cur"); fi
    return 0
  fi
  if [[ -z $dashdash && $cur == -* ]]; then
    _hpcc_add "$cur" $(_hpcc_flags "$cmd")
    return 0
  fi
  case \${kinds[k]-file} in
    image) _hpcc_image "$cur" ;;
    =*) local -a ws; IFS=, read -ra ws <<< "\${kinds[k]#=}"; _hpcc_add "$cur" "\${ws[@]}" ;;
    *) compopt -o filenames 2>/dev/null; while IFS= read -r x; do COMPREPLY+=("$x"); done < <(compgen -f -- "$cur") ;;
  esac
}

complete -F _hpcc ${shellWord(d.bin)}
`;
}
