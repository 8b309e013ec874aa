/**
 * Registry settings from hpcc's ini config and the environment.
 *   files (later ones add to earlier): /etc/hpcc/hpcc.conf, $XDG_CONFIG_HOME/hpcc/hpcc.conf
 *   (default ~/.config/hpcc/hpcc.conf), or only $HPCC_CONFIG when set.
 *     [registries]
 *     insecure = 127.0.0.1:5000, registry.local:5000   ; plain HTTP (no TLS) for these
 *   HPCC_INSECURE_REGISTRIES=host:port,host2   adds to the list.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseIni } from 'ini';
import { normalizeRegistryKey } from './auth.js';
import { configHome } from '../../util/cache-root.js';

export function configFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.HPCC_CONFIG) return [env.HPCC_CONFIG];
  let base: string;
  try {
    base = configHome(env);
  } catch {
    return ['/etc/hpcc/hpcc.conf']; // no home directory: the system file only
  }
  return ['/etc/hpcc/hpcc.conf', path.join(base, 'hpcc', 'hpcc.conf')];
}

function splitList(v: unknown): string[] {
  const items = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : [];
  return items.flatMap((s) => s.split(/[\s,]+/)).filter((s) => s !== '');
}

/** Registries that are reached over plain HTTP (normalised host[:port]). */
export function insecureRegistries(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const out = new Set<string>();
  for (const f of configFiles(env)) {
    let text: string;
    try {
      if (fs.statSync(f).size > 1 << 20) continue;
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const ini = parseIni(text) as { registries?: { insecure?: unknown } };
    for (const r of splitList(ini.registries?.insecure)) out.add(normalizeRegistryKey(r));
  }
  for (const r of splitList(env.HPCC_INSECURE_REGISTRIES ?? '')) out.add(normalizeRegistryKey(r));
  return out;
}

export function isInsecureRegistry(registry: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return insecureRegistries(env).has(normalizeRegistryKey(registry));
}
