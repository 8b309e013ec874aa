/**
 * The steps of a definition-file build that touch a build tree, run by
 * `node ns-worker.js SPEC.json` as root of the build's user namespace
 * (BuildSession.exec), so owners of subordinate ids are read and written
 * as they are: extract a SIF into a tree, copy %files, write the image's
 * /.singularity.d, pack the tree into a SIF. The result (or the error, as
 * JSON) goes to SPEC.result. Every path inside a tree goes through
 * confined.ts: the trees come from images.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { HpccError, UsageError, addContext } from '../../errors/index.js';
import { buildSifFromDirectory } from '../../core/build.js';
import { openSifRootfs } from '../../core/image.js';
import { parseLabels } from '../../core/metadata.js';
import { extractTree, type CodecName } from '../../formats/squashfs/index.js';
import { singularityFiles } from '../../oci/metadata.js';
import { mkdirIn, readIn, resolveIn, writeIn } from './confined.js';
import type { ImageMeta } from './image-meta.js';

export interface FilesEntry {
  src: string;
  dst: string;
  line: number;
}

export type WorkerOp =
  | { op: 'extract'; sif: string; root: string }
  | { op: 'files'; root: string; from?: string; cwd: string; entries: FilesEntry[]; where: string }
  | { op: 'meta'; root: string; skeleton: boolean; meta: ImageMeta }
  | { op: 'pack'; root: string; out: string; compressor: CodecName; level?: number; blockSize?: number; deterministic: boolean; mtime?: number };

const SD = '.singularity.d';
const hasGlob = (s: string) => /[*?[]/.test(s);

function globRegex(pat: string): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pat.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        re += `[${pat.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Expand a source pattern. `host(p)` maps a candidate to the host path to
 * list or test (identity for host files; confined resolution in a stage).
 */
async function expand(pattern: string, host: (p: string) => Promise<string>): Promise<string[]> {
  if (!hasGlob(pattern)) return (await fs.lstat(await host(pattern)).catch(() => null)) ? [pattern] : [];
  const abs = pattern.startsWith('/');
  let cands = [abs ? '/' : '.'];
  for (const comp of pattern.split('/').filter((x) => x !== '')) {
    const next: string[] = [];
    for (const c of cands) {
      if (!hasGlob(comp)) {
        next.push(path.posix.join(c, comp));
        continue;
      }
      const names = await fs.readdir(await host(c)).catch(() => [] as string[]);
      const re = globRegex(comp);
      for (const n of names.sort()) if (re.test(n) && (comp.startsWith('.') || !n.startsWith('.'))) next.push(path.posix.join(c, n));
    }
    cands = next;
  }
  const out: string[] = [];
  for (const c of cands) if (await fs.lstat(await host(c)).catch(() => null)) out.push(c);
  return out;
}

/** Copy `src` (host path, already resolved) to `dst` (host path inside the tree): directories recursively, links as links. */
async function copyInto(src: string, dst: string, follow: boolean, warn: (m: string) => void): Promise<void> {
  const st = follow ? await fs.stat(src) : await fs.lstat(src);
  const old = await fs.lstat(dst).catch(() => null);
  if (st.isDirectory()) {
    if (old && !old.isDirectory()) await fs.unlink(dst);
    if (!old?.isDirectory()) await fs.mkdir(dst, { mode: 0o700 });
    await fs.lchown(dst, 0, 0);
    for (const n of (await fs.readdir(src)).sort()) await copyInto(path.join(src, n), path.join(dst, n), false, warn);
    await fs.chmod(dst, st.mode & 0o7777);
    return;
  }
  if (old?.isDirectory()) throw new UsageError(`cannot copy the file ${src} over the directory ${dst}`);
  if (old) await fs.unlink(dst);
  if (st.isFile()) {
    await fs.copyFile(src, dst, fs.constants.COPYFILE_EXCL);
    await fs.lchown(dst, 0, 0); // root's in the image, as Apptainer's %files (the copy may carry the source's owner)
    await fs.chmod(dst, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    await fs.symlink(await fs.readlink(src), dst);
    await fs.lchown(dst, 0, 0);
  } else {
    warn(`%files: ${src} is not a file, directory or link; skipped`);
  }
}

async function files(o: Extract<WorkerOp, { op: 'files' }>, warn: (m: string) => void): Promise<{ copied: number }> {
  const fromRoot = o.from;
  const host = async (p: string) => (fromRoot !== undefined ? resolveIn(fromRoot, p, true) : path.resolve(o.cwd, p));
  let copied = 0;
  for (const e of o.entries) {
    const where = `${o.where}:${e.line}`;
    const srcs = await expand(e.src, host);
    if (srcs.length === 0) {
      throw new UsageError(`${where}: %files source ${e.src} does not exist${fromRoot !== undefined ? ' in that stage' : ''}`, {
        hint: fromRoot !== undefined ? 'Paths of %files from STAGE are paths inside that stage.' : 'Host paths of %files are relative to the directory hpcc build runs in.',
      });
    }
    const dstText = e.dst !== '' ? e.dst : undefined;
    for (const s of srcs) {
      const dstTree = dstText ?? (s.startsWith('/') ? s : `/${path.posix.normalize(s)}`);
      const intoDir = dstText !== undefined && (dstText.endsWith('/') || srcs.length > 1);
      let dst: string;
      if (intoDir) dst = path.join(await mkdirIn(o.root, dstTree), path.posix.basename(s));
      else {
        const r = await resolveIn(o.root, dstTree, true);
        if ((await fs.lstat(r).catch(() => null))?.isDirectory() && dstText !== undefined) dst = path.join(r, path.posix.basename(s));
        else dst = path.join(await mkdirIn(o.root, path.posix.dirname(path.posix.join('/', dstTree))), path.posix.basename(dstTree));
      }
      try {
        await copyInto(await host(s), dst, true, warn);
      } catch (err) {
        throw addContext(`${where}: %files ${s} -> ${dstTree}`, err);
      }
      copied++;
    }
  }
  return { copied };
}

async function meta(o: Extract<WorkerOp, { op: 'meta' }>): Promise<Record<string, never>> {
  const r = o.root;
  if (o.skeleton) {
    for (const f of singularityFiles({ architecture: '', os: 'linux' } as never, '')) {
      if (f.path.endsWith('10-docker2singularity.sh') || f.path.endsWith('/Singularity') || f.path.endsWith('labels.json')) continue;
      const at = await resolveIn(r, f.path, false);
      if (await fs.lstat(at).catch(() => null)) continue;
      if (f.kind === 'dir') await mkdirIn(r, f.path, f.mode);
      else if (f.kind === 'file') await writeIn(r, f.path, f.data ?? '', f.mode);
      else await fs.symlink(f.data!, path.join(await mkdirIn(r, path.posix.dirname(`/${f.path}`)), path.posix.basename(f.path)));
    }
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'var/tmp', 'home', 'etc', 'root']) await mkdirIn(r, d, d.endsWith('tmp') ? 0o1777 : 0o755);
    for (const d of ['tmp', 'var/tmp']) await fs.chmod(await resolveIn(r, d, true), 0o1777);
  }
  await mkdirIn(r, `${SD}/env`);
  const old = await readIn(r, `${SD}/Singularity`);
  if (old !== null) {
    const hist = await mkdirIn(r, `${SD}/bootstrap_history`);
    const n = (await fs.readdir(hist)).length;
    await writeIn(r, `${SD}/bootstrap_history/Apptainer${n}`, old, 0o644);
  }
  await writeIn(r, `${SD}/Singularity`, o.meta.deffile, 0o644);
  const labels = parseLabels((await readIn(r, `${SD}/labels.json`)) ?? undefined) ?? {};
  for (const [k, v] of o.meta.labels) labels[k] = v;
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) sorted[k] = labels[k]!;
  await writeIn(r, `${SD}/labels.json`, JSON.stringify(sorted, null, '\t') + '\n', 0o644);
  if (o.meta.environment !== undefined) {
    const envFile = `${SD}/env/90-environment.sh`;
    const prev = await readIn(r, envFile);
    await writeIn(r, envFile, prev !== null ? `${prev}\n${o.meta.environment}\n` : `#!/bin/sh\n\n${o.meta.environment}\n`, 0o755);
  }
  for (const [name, mode] of [['runscript', 0o755], ['startscript', 0o755], ['test', 0o755], ['help', 0o644]] as const) {
    const body = o.meta[name];
    if (body !== undefined) await writeIn(r, `${SD}/${name === 'help' ? 'runscript.help' : name}`, body, mode);
  }
  return {};
}

export async function runOp(o: WorkerOp, warn: (m: string) => void): Promise<unknown> {
  switch (o.op) {
    case 'extract': {
      const img = await openSifRootfs(o.sif);
      try {
        return await extractTree(img.rootfs, o.root, { xattrs: true, onWarning: warn });
      } finally {
        await img.close();
      }
    }
    case 'files':
      return files(o, warn);
    case 'meta':
      return meta(o);
    case 'pack':
      return buildSifFromDirectory(o.out, o.root, {
        compressor: o.compressor,
        ...(o.level !== undefined ? { level: o.level } : {}),
        ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
        ...(o.mtime !== undefined ? { mtime: o.mtime } : {}),
        deterministic: o.deterministic,
        force: true,
        skeleton: false,
        onWarning: warn,
      });
  }
}

/** `node ns-worker.js SPEC`: run the op, write {ok, result|error} to SPEC.result. */
async function main(): Promise<void> {
  const spec = process.argv[2]!;
  const out = `${spec}.result`;
  const warnings: string[] = [];
  try {
    const op = JSON.parse(await fs.readFile(spec, 'utf8')) as WorkerOp;
    const result = await runOp(op, (m) => warnings.push(m));
    await fs.writeFile(out, JSON.stringify({ ok: true, result, warnings }));
  } catch (e) {
    const err = e instanceof HpccError ? e.toJSON() : { code: 'HPCC_E_INTERNAL', message: e instanceof Error ? e.message : String(e), exitCode: 70 };
    await fs.writeFile(out, JSON.stringify({ ok: false, error: err, warnings }));
    process.exitCode = 1;
  }
}

// not awaited at the top level: the release's SEA loads this file with require() (scripts/release-sea.mjs)
if (process.argv[1] && path.basename(process.argv[1]) === 'ns-worker.js') void main();
