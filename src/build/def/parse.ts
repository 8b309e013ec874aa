/**
 * Apptainer definition files: the structure (stages, header keys, sections)
 * with the line and column of everything, so every error names
 * FILE:LINE:COLUMN and shows the offending line.
 *
 * The format, as Apptainer reads it: a stage starts at a line `Bootstrap:`;
 * its header is `Key: value` lines (keys case-insensitive, `#` comments);
 * a section starts at any line whose first word begins with `%` and runs to
 * the next one. Repeated sections append. `{{ name }}` substitution
 * (%arguments, --build-arg) is done by args.ts between two passes of parse().
 */
import { DefinitionError } from '../../errors/index.js';

export interface HeaderField {
  key: string;
  value: string;
  line: number;
  /** column of the value (1-based) */
  column: number;
}

export interface Section {
  /** lower-case name without `%` (post, files, appinstall, ...) */
  name: string;
  /** the rest of the section line (e.g. `-c /bin/bash`, `from build`) */
  args: string;
  line: number;
  argsColumn: number;
  /** the lines up to the next section, joined with `\n` */
  body: string;
  /** line number of the body's first line */
  bodyLine: number;
}

export interface Stage {
  index: number;
  /** `Stage:` value, when given */
  name?: string;
  header: Map<string, HeaderField>;
  sections: Section[];
  /** line of the stage's first line (its `Bootstrap:`) */
  line: number;
}

export interface Definition {
  file: string;
  text: string;
  stages: Stage[];
}

/** Sections hpcc builds, in Apptainer's names. */
export const SECTIONS = ['arguments', 'setup', 'files', 'post', 'environment', 'runscript', 'startscript', 'test', 'labels', 'help'] as const;
export const APP_SECTIONS = ['appinstall', 'applabels', 'appfiles', 'appenv', 'apptest', 'apphelp', 'apprun', 'appstart'];

/** Header keys Apptainer accepts (any agent); `otherurl<N>` is matched by pattern. */
export const HEADER_KEYS = [
  'bootstrap', 'from', 'stage', 'osversion', 'mirrorurl', 'include', 'updateurl', 'includecmd', 'library', 'registry',
  'namespace', 'product', 'user', 'regcode', 'productpgp', 'registerurl', 'modules', 'fingerprints', 'confurl', 'setopt',
  'target', 'frontend', 'filename', 'buildargs',
];

export interface Where {
  file: string;
  line: number;
  column: number;
  /** the whole source line */
  text: string;
}

/** The error every definition-file problem gives: FILE:LINE:COL: what, then the line and a caret. */
export function defError(code: string, where: Where, what: string, hint: string): DefinitionError {
  const caret = ' '.repeat(Math.max(0, where.column - 1)) + '^';
  return new DefinitionError(code, `${where.file}:${where.line}:${where.column}: ${what}\n    ${where.text}\n    ${caret}`, {
    hint,
    details: { file: where.file, line: where.line, column: where.column, text: where.text },
  });
}

const BOOTSTRAP_LINE = /^bootstrap\s*:/i;

/** Parse definition text (after substitution) into stages. */
export function parseStructure(file: string, text: string): Definition {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const at = (n: number, column: number): Where => ({ file, line: n, column, text: lines[n - 1] ?? '' });
  // stage boundaries: every `Bootstrap:` line (the first stage may have comments above it)
  const starts: number[] = [];
  lines.forEach((l, i) => {
    if (BOOTSTRAP_LINE.test(l)) starts.push(i);
  });
  const stages: Stage[] = [];
  if (starts.length === 0) {
    const first = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    if (first < 0) {
      throw defError('HPCC_E_DEF_EMPTY', at(1, 1), 'the definition file is empty', 'A definition file starts with a header such as "Bootstrap: docker" and "From: debian:12".');
    }
    throw defError('HPCC_E_DEF_NO_BOOTSTRAP', at(first + 1, 1), 'missing "Bootstrap:" header', 'Start the file (and each stage) with "Bootstrap: AGENT", e.g. "Bootstrap: docker" then "From: debian:12".');
  }
  const preamble = lines.slice(0, starts[0]).findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (preamble >= 0) {
    throw defError('HPCC_E_DEF_NO_BOOTSTRAP', at(preamble + 1, 1), 'text before the first "Bootstrap:" header', 'Every stage starts with "Bootstrap: AGENT"; move this below it or remove it.');
  }
  starts.forEach((s, k) => {
    const end = k + 1 < starts.length ? starts[k + 1]! : lines.length;
    stages.push(parseStage(k, lines, s, end, at));
  });
  const names = new Map<string, number>();
  for (const st of stages) {
    if (st.name === undefined) continue;
    const f = st.header.get('stage')!;
    if (names.has(st.name)) {
      throw defError('HPCC_E_DEF_STAGE', at(f.line, f.column), `stage name "${st.name}" is used twice`, 'Give each stage its own name.');
    }
    names.set(st.name, st.index);
  }
  return { file, text, stages };
}

function parseStage(index: number, lines: string[], start: number, end: number, at: (n: number, c: number) => Where): Stage {
  const header = new Map<string, HeaderField>();
  const sections: Section[] = [];
  let i = start;
  // header: up to the first section line
  for (; i < end; i++) {
    const raw = lines[i]!;
    if (isSectionLine(raw)) break;
    const t = raw.trim();
    if (t === '' || t.startsWith('#')) continue;
    const indent = raw.length - raw.trimStart().length;
    const colon = raw.indexOf(':');
    const hash = raw.indexOf('#');
    if (colon < 0 || (hash >= 0 && hash < colon)) {
      throw defError('HPCC_E_DEF_HEADER', at(i + 1, indent + 1), `header line "${t}" is not "Key: value"`, 'Header lines are "Key: value" (Bootstrap, From, Stage, OSVersion, ...); sections start with %, e.g. %post.');
    }
    const key = raw.slice(0, colon).trim().toLowerCase();
    let rest = raw.slice(colon + 1);
    const cut = rest.indexOf('#');
    if (cut >= 0 && !/^\s*#/.test(rest) && /\s/.test(rest[cut - 1] ?? ' ')) rest = rest.slice(0, cut);
    else if (/^\s*#/.test(rest)) rest = '';
    const value = rest.trim();
    const vcol = colon + 2 + (rest.length - rest.trimStart().length);
    if (!HEADER_KEYS.includes(key) && !/^otherurl\d+$/.test(key)) {
      throw defError('HPCC_E_DEF_HEADER', at(i + 1, indent + 1), `unknown header key "${raw.slice(0, colon).trim()}"`, `Known keys: Bootstrap, From, Stage, OSVersion, MirrorURL, Include and the other agents' keys; a section needs a leading %.`);
    }
    if (value === '') {
      throw defError('HPCC_E_DEF_HEADER', at(i + 1, colon + 1), `header key "${raw.slice(0, colon).trim()}" has no value`, 'Write "Key: value" on one line.');
    }
    header.set(key, { key, value, line: i + 1, column: vcol });
  }
  // sections
  let cur: { s: Section; body: string[] } | null = null;
  const flush = () => {
    if (cur) {
      cur.s.body = cur.body.join('\n');
      sections.push(cur.s);
    }
  };
  for (; i < end; i++) {
    const raw = lines[i]!;
    if (isSectionLine(raw)) {
      flush();
      const indent = raw.length - raw.trimStart().length;
      const m = /^%(\S*)(\s*)(.*)$/.exec(raw.trimStart())!;
      const name = m[1]!.toLowerCase();
      const argsColumn = indent + 1 + 1 + m[1]!.length + m[2]!.length;
      const args = m[3]!.trim();
      checkSection(name, args, at(i + 1, indent + 1), at(i + 1, argsColumn));
      cur = { s: { name, args, line: i + 1, argsColumn, body: '', bodyLine: i + 2 }, body: [] };
    } else if (cur) {
      cur.body.push(raw);
    }
  }
  flush();
  const boot = header.get('bootstrap')!;
  const stage: Stage = { index, header, sections, line: boot?.line ?? start + 1 };
  const name = header.get('stage');
  if (name) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name.value)) {
      throw defError('HPCC_E_DEF_STAGE', at(name.line, name.column), `bad stage name "${name.value}"`, 'A stage name is letters, digits, ".", "_" and "-".');
    }
    stage.name = name.value;
  }
  return stage;
}

function isSectionLine(raw: string): boolean {
  return raw.trimStart().startsWith('%');
}

function checkSection(name: string, args: string, where: Where, argsWhere: Where): void {
  if ((SECTIONS as readonly string[]).includes(name)) {
    if (name === 'files' && args !== '' && !/^from\s+\S+$/i.test(args.replace(/\s*#.*$/, ''))) {
      throw defError('HPCC_E_DEF_SECTION', argsWhere, `"%files ${args}": expected "%files" or "%files from STAGE"`, 'Copy from an earlier stage with "%files from NAME" (NAME from its "Stage:" header).');
    }
    return;
  }
  if (APP_SECTIONS.includes(name)) {
    throw defError('HPCC_E_DEF_UNSUPPORTED', where, `SCIF app section "%${name}" is not supported by hpcc`, 'Move the app into %post/%runscript, or build this file with Apptainer.');
  }
  if (name === 'pre') {
    throw defError('HPCC_E_DEF_UNSUPPORTED', where, 'section "%pre" is not supported (Apptainer dropped it too)', 'Use %setup for steps on the host.');
  }
  throw defError('HPCC_E_DEF_SECTION', where, `unknown section "%${name}"`, `Sections are %${SECTIONS.join(', %')}; a line starting with % always starts a section.`);
}

/** The body of a section and of its repeats, in order; args of the first; null when absent. */
export function sectionScript(stage: Stage, name: string): { script: string; args: string; line: number } | null {
  const all = stage.sections.filter((s) => s.name === name);
  if (all.length === 0) return null;
  return { script: all.map((s) => s.body).join('\n'), args: all[0]!.args, line: all[0]!.line };
}

export interface FileEntry {
  src: string;
  /** '' when the line gives only a source (copied to the same path) */
  dst: string;
  line: number;
}

/** %files sections: the entries of `%files` (from: undefined) and of each `%files from STAGE`. */
export function fileSections(stage: Stage): Array<{ from?: string; line: number; argsColumn: number; entries: FileEntry[] }> {
  const out: Array<{ from?: string; line: number; argsColumn: number; entries: FileEntry[] }> = [];
  for (const s of stage.sections.filter((x) => x.name === 'files')) {
    const from = /^from\s+(\S+)/i.exec(s.args)?.[1];
    const entries: FileEntry[] = [];
    s.body.split('\n').forEach((l, k) => {
      const t = l.trim();
      if (t === '' || t.startsWith('#')) return;
      const words = splitWords(t);
      entries.push({ src: words[0] ?? '', dst: words[1] ?? '', line: s.bodyLine + k });
    });
    out.push({ ...(from !== undefined ? { from } : {}), line: s.line, argsColumn: s.argsColumn, entries });
  }
  return out;
}

/** Words split at white space, "double" or 'single' quoted words kept whole. */
export function splitWords(t: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t)) !== null) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** %labels: `KEY VALUE` per line (the value may hold spaces), in order; later keys win. */
export function labelsOf(stage: Stage): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const s of stage.sections.filter((x) => x.name === 'labels')) {
    for (const l of s.body.split('\n')) {
      const t = l.trim();
      if (t === '' || t.startsWith('#')) continue;
      const m = /^(\S+)\s*(.*)$/.exec(t)!;
      out.push([m[1]!, m[2]!.trim()]);
    }
  }
  return out;
}
