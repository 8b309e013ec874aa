/**
 * TreeView implementations: a host directory (read-only, no escaping the
 * root through symlinks) and a squashfs image read without mounting.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { SquashfsReader } from '../formats/squashfs/index.js';
import type { TreeView } from './metadata.js';

/** Resolve `rel` inside `root` following symlinks only within root (bounded). */
async function resolveInside(root: string, rel: string): Promise<string | null> {
  let parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    const p = path.join(root, ...done, name);
    let st;
    try {
      st = await fs.lstat(p);
    } catch {
      return null;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return null;
      const target = await fs.readlink(p);
      if (target.startsWith('/')) done.length = 0;
      parts = target.split('/').filter((x) => x !== '' && x !== '.').concat(parts);
      continue;
    }
    done.push(name);
  }
  return path.join(root, ...done);
}

export function directoryTreeView(root: string): TreeView {
  return {
    async readFile(rel, maxBytes) {
      const p = await resolveInside(root, rel);
      if (p === null) return null;
      try {
        const st = await fs.stat(p);
        if (!st.isFile() || st.size > maxBytes) return null;
        return await fs.readFile(p);
      } catch {
        return null;
      }
    },
    async listDir(rel) {
      const p = await resolveInside(root, rel);
      if (p === null) return null;
      try {
        return (await fs.readdir(p)).sort();
      } catch {
        return null;
      }
    },
  };
}

/** Lookup failures (absent path, wrong type) mean "no such metadata"; format errors propagate. */
function isMissing(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^HPCC_E_SQFS_(NOT_FOUND|NOT_DIR|NOT_A_DIR|NOT_LINK|NOT_FILE|LOOP|SYMLINK_LOOP)$/.test(code);
}

export function squashfsTreeView(reader: SquashfsReader): TreeView {
  return {
    async readFile(rel, maxBytes) {
      try {
        const st = await reader.stat(rel);
        if (st.type !== 'file' || st.size > maxBytes) return null;
        return await reader.readFile(rel, { maxBytes });
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
    async listDir(rel) {
      try {
        return (await reader.readdir(rel)).map((d) => d.name).sort();
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
  };
}
