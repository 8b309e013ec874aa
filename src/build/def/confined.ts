/**
 * Paths inside a build tree that came from an image, so hostile: every
 * symlink met on the way is resolved as if the tree were `/` (an absolute
 * link restarts at the tree's root, `..` stops at it), so a link such as
 * /opt -> /home/user can never send a %files copy or a metadata write out
 * of the tree. Files are written with O_EXCL after the old entry is
 * removed, so the last component is never followed either.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { UnsafePathError } from '../../errors/index.js';

const MAX_LINKS = 40;

/** The host path of `p` (absolute or relative to the tree's /) inside `root`; the last component is followed only when asked. */
export async function resolveIn(root: string, p: string, followLast: boolean): Promise<string> {
  let parts = p.split('/').filter((x) => x !== '' && x !== '.');
  const done: string[] = [];
  let links = 0;
  let missing = false;
  while (parts.length > 0) {
    const name = parts.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    if (missing) {
      done.push(name);
      continue;
    }
    const cur = path.join(root, ...done, name);
    const st = await fs.lstat(cur).catch(() => null);
    if (st === null) {
      missing = true;
      done.push(name);
      continue;
    }
    if (st.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw new UnsafePathError(`too many symbolic links resolving ${p} in the build tree`);
      const target = await fs.readlink(cur);
      if (target.startsWith('/')) done.length = 0;
      parts = [...target.split('/').filter((x) => x !== '' && x !== '.'), ...parts];
      continue;
    }
    done.push(name);
  }
  return path.join(root, ...done);
}

/** mkdir -p of `p` inside the tree (links resolved inside it); returns the host path. */
export async function mkdirIn(root: string, p: string, mode = 0o755): Promise<string> {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  let cur = '/';
  let host = root;
  for (const name of parts) {
    cur = path.posix.join(cur, name);
    host = await resolveIn(root, cur, true);
    const st = await fs.lstat(host).catch(() => null);
    // the existing part of `host` holds no link (resolveIn resolved them all); what is missing is created
    if (st === null) await fs.mkdir(host, { mode, recursive: true });
    else if (!st.isDirectory()) throw new UnsafePathError(`${cur} in the build tree is not a directory`);
  }
  return host;
}

/** Write a file at `p` in the tree: parents created, an old entry (not a directory) replaced, never followed. */
export async function writeIn(root: string, p: string, data: string | Buffer, mode: number): Promise<void> {
  const dir = await mkdirIn(root, path.posix.dirname(path.posix.join('/', p)));
  const host = path.join(dir, path.posix.basename(p));
  const st = await fs.lstat(host).catch(() => null);
  if (st?.isDirectory()) throw new UnsafePathError(`${p} in the build tree is a directory`);
  if (st) await fs.unlink(host);
  await fs.writeFile(host, data, { flag: 'wx', mode });
  await fs.chmod(host, mode);
}

/** Read a regular file at `p` in the tree (links resolved inside it); null when absent or not a file. */
export async function readIn(root: string, p: string, max = 4 << 20): Promise<string | null> {
  const host = await resolveIn(root, p, true);
  const st = await fs.lstat(host).catch(() => null);
  if (!st?.isFile() || st.size > max) return null;
  return fs.readFile(host, 'utf8');
}
