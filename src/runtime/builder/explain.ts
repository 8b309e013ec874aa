/**
 * --explain-env: where each container variable comes from, following the
 * precedence of env.ts step by step. The image's env scripts are scanned
 * statically (their `NAME=...` / `export NAME=...` lines), so a value they
 * compute is shown as written in the script.
 */
import { ENV_DIR, LIBS_DIR, libsOnPath, orderedEnvScripts } from './actions.js';
import type { BuiltLaunch } from './build.js';
import { applyPathEdits, scanEnvScript } from './env.js';
import type { ImageFacts } from './types.js';

export interface EnvExplanation {
  name: string;
  /** the value (for image scripts: the expression as written) */
  value: string;
  source: string;
  /** earlier sources this one overrides, oldest first */
  overrides: string[];
}

export function explainEnv(built: BuiltLaunch, image: ImageFacts): EnvExplanation[] {
  const m = new Map<string, EnvExplanation>();
  const set = (name: string, value: string, source: string): void => {
    const prev = m.get(name);
    m.set(name, { name, value, source, overrides: prev ? [...prev.overrides, prev.source] : [] });
  };
  const e = built.env;
  for (const v of e.base) set(v.name, v.value, v.source);
  if (built.sourcesScripts) {
    for (const s of orderedEnvScripts(image.envScripts)) {
      const text = image.envScriptText?.[s];
      if (text === undefined) continue;
      for (const a of scanEnvScript(text)) set(a.name, a.expr, `image ${ENV_DIR}/${s}`);
    }
  }
  for (const v of e.inject) set(v.name, v.value, v.source);
  if (e.prependPath || e.appendPath) {
    const cur = m.get('PATH');
    const src = [e.prependPath?.source, e.appendPath?.source].filter(Boolean).join(' + ');
    set('PATH', applyPathEdits(cur?.value, e.prependPath?.value, e.appendPath?.value), `${cur?.source ?? 'unset'} + ${src}`);
  }
  if (libsOnPath(image, built.plan.mounts)) {
    const cur = m.get('LD_LIBRARY_PATH');
    set('LD_LIBRARY_PATH', cur ? `${cur.value}:${LIBS_DIR}` : LIBS_DIR, cur ? `${cur.source} + hpcc` : 'hpcc');
  }
  for (const v of e.restore) if (!m.has(v.name)) set(v.name, v.value, v.source);
  return [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Human rendering: NAME=VALUE, then the source (and what it overrides). */
export function renderExplanation(rows: EnvExplanation[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const over = r.overrides.length > 0 ? ` (overrides ${r.overrides.join(', ')})` : '';
    out.push(`${r.name}=${r.value}`, `    from ${r.source}${over}`);
  }
  return out.join('\n') + '\n';
}
