/**
 * Build arguments: `%arguments` defaults (NAME=VALUE lines), `--build-arg
 * NAME=VALUE` and `--build-arg-file FILE` (the flags win, the file before
 * the single flags), and `{{ name }}` substitution everywhere but in
 * %arguments itself. An unterminated `{{` or a name nobody defines is an
 * error naming its line and column.
 */
import * as fs from 'node:fs/promises';
import { UsageError, addContext } from '../../errors/index.js';
import { defError, type Definition } from './parse.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function keyValue(text: string): [string, string] | null {
  const eq = text.indexOf('=');
  if (eq < 0) return null;
  const k = text.slice(0, eq).trim();
  if (!NAME.test(k)) return null;
  return [k, text.slice(eq + 1).trim()];
}

/** --build-arg-file FILE then each --build-arg NAME=VALUE (later wins). */
export async function readBuildArgs(args: readonly string[], file?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (file !== undefined) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      throw addContext(`read --build-arg-file ${file}`, e);
    }
    text.split('\n').forEach((l, i) => {
      const t = l.trim();
      if (t === '' || t.startsWith('#')) return;
      const kv = keyValue(t);
      if (!kv) throw new UsageError(`${file}:${i + 1}: "${t}" is not NAME=VALUE`, { hint: 'Each line of a --build-arg-file is NAME=VALUE (# starts a comment).' });
      out.set(kv[0], kv[1]);
    });
  }
  for (const a of args) {
    const kv = keyValue(a);
    if (!kv) throw new UsageError(`--build-arg ${a}: expected NAME=VALUE`, { hint: 'For example --build-arg VERSION=1.2 fills {{ VERSION }} in the definition file.' });
    out.set(kv[0], kv[1]);
  }
  return out;
}

/** %arguments defaults of every stage (the first definition of a name wins, as the flags override all). */
export function argumentDefaults(def: Definition): Map<string, string> {
  const lines = def.text.split('\n');
  const out = new Map<string, string>();
  for (const st of def.stages) {
    for (const s of st.sections.filter((x) => x.name === 'arguments')) {
      s.body.split('\n').forEach((l, k) => {
        const t = l.trim();
        if (t === '' || t.startsWith('#')) return;
        const kv = keyValue(t);
        const line = s.bodyLine + k;
        if (!kv) {
          const col = l.length - l.trimStart().length + 1;
          throw defError('HPCC_E_DEF_ARGUMENT', { file: def.file, line, column: col, text: lines[line - 1] ?? '' }, `"${t}" in %arguments is not NAME=VALUE`, 'Write one NAME=VALUE per line; use it as {{ NAME }}.');
        }
        if (!out.has(kv[0])) out.set(kv[0], kv[1]);
      });
    }
  }
  return out;
}

/**
 * Replace every `{{ name }}` outside %arguments sections. Returns the new
 * text (same line count) and the names used.
 */
export function substitute(def: Definition, values: Map<string, string>): { text: string; used: Set<string> } {
  const lines = def.text.split('\n');
  const skip = new Set<number>();
  for (const st of def.stages) {
    for (const s of st.sections.filter((x) => x.name === 'arguments')) {
      const n = s.body === '' ? 0 : s.body.split('\n').length;
      for (let k = 0; k < n; k++) skip.add(s.bodyLine + k);
    }
  }
  const used = new Set<string>();
  const out = lines.map((l, i) => {
    const line = i + 1;
    if (skip.has(line) || !l.includes('{{')) return l;
    let res = '';
    let pos = 0;
    for (;;) {
      const open = l.indexOf('{{', pos);
      if (open < 0) break;
      const close = l.indexOf('}}', open + 2);
      const where = { file: def.file, line, column: open + 1, text: l };
      if (close < 0) throw defError('HPCC_E_DEF_TEMPLATE', where, 'unterminated "{{"', 'Close it as {{ NAME }}; a literal "{{" cannot appear in a definition file line without "}}".');
      const inner = l.slice(open + 2, close).trim();
      res += l.slice(pos, open);
      if (NAME.test(inner)) {
        const v = values.get(inner);
        if (v === undefined) {
          throw defError('HPCC_E_DEF_ARGUMENT', where, `build argument "${inner}" is not defined`, `Give it a default in %arguments (${inner}=VALUE) or pass --build-arg ${inner}=VALUE.`);
        }
        used.add(inner);
        res += v;
      } else {
        res += l.slice(open, close + 2); // not a {{ name }} (e.g. a Go template in a script): kept
      }
      pos = close + 2;
    }
    return res + l.slice(pos);
  });
  return { text: out.join('\n'), used };
}
