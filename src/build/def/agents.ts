/**
 * Base images of a stage, by agent: `docker` through hpcc's registry client,
 * blob cache, SIF cache and credentials (ensureCachedSif, --platform/--arch
 * honoured); `oci`, `oci-archive`, `docker-archive` converted to a SIF in
 * the work directory; `localimage` a SIF or a sandbox directory; `scratch`
 * an empty tree; `debootstrap` made by bootstrapDebian (userns.ts). A SIF is
 * unpacked by ns-worker.ts as root of the build namespace, so its owners
 * are kept; a sandbox directory is copied there with `cp -a`.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BuildStepError, HpccError } from '../../errors/index.js';
import { convertImage } from '../../core/convert.js';
import { ensureCachedSif } from '../../core/pull.js';
import { bootstrapOf } from '../../oci/reference.js';
import { formatPlatform } from '../../oci/platform.js';
import { resolveSource } from '../../oci/sources.js';
import type { OciPlatform } from '../../oci/types.js';
import { bootstrapDebian } from '../userns.js';
import type { DefBuild } from './builder.js';
import { stepError } from './builder.js';
import { stageSource, type Definition, type Stage } from './index.js';

/** Prefix an error's message with the def file line it came from (the From or Bootstrap line). */
function atLine(where: string, e: unknown): unknown {
  if (e instanceof HpccError) {
    return new HpccError(e.code, `${where}: ${e.message}`, { exitCode: e.exitCode, ...(e.hint ? { hint: e.hint } : {}), cause: e });
  }
  return new BuildStepError('HPCC_E_BASE_IMAGE', `${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

export async function acquireBase(
  b: DefBuild,
  def: Definition,
  st: Stage,
  root: string,
  o: { platform?: OciPlatform; info: (m: string) => void },
): Promise<void> {
  const src = stageSource(def, st);
  const boot = st.header.get('bootstrap')!;
  const line = src.from?.line ?? boot.line;
  const where = `${def.file}:${line}`;
  try {
    switch (src.agent) {
      case 'scratch':
        o.info('starting from scratch');
        return;
      case 'debootstrap': {
        const h = (k: string) => st.header.get(k)?.value;
        const include = h('include')?.split(/[\s,]+/).filter((x) => x !== '');
        o.info(`debootstrap ${h('osversion')}${h('mirrorurl') ? ` from ${h('mirrorurl')}` : ''}`);
        await bootstrapDebian(b.sessionOf, root, {
          osVersion: h('osversion')!,
          ...(h('mirrorurl') ? { mirrorURL: h('mirrorurl')! } : {}),
          ...(include && include.length > 0 ? { include } : {}),
          ...(o.platform ? { arch: o.platform.architecture } : {}),
        });
        return;
      }
      case 'localimage': {
        const p = path.resolve(src.path!);
        const stat = await fs.stat(p).catch(() => null);
        if (stat === null) throw new BuildStepError('HPCC_E_BASE_IMAGE', `localimage ${src.path} does not exist`, { hint: 'From: is a SIF file or a sandbox directory, relative to the directory hpcc build runs in.' });
        if (stat.isDirectory()) {
          o.info(`copying the sandbox ${src.path}`);
          const r = await b.sessionOf.exec(['cp', '-a', '--', `${p}/.`, `${root}/`], { stdio: 'capture' });
          if (r.status !== 0) throw stepError(`copying the sandbox ${src.path}`, r, 'Every file of the sandbox must be readable by you (files of other users cannot keep their owners).');
          return;
        }
        o.info(`unpacking ${src.path}`);
        await b.op({ op: 'extract', sif: p, root });
        return;
      }
      case 'docker': {
        o.info(`pulling ${src.from!.value}${o.platform ? ` (${formatPlatform(o.platform)})` : ''}`);
        const r = await ensureCachedSif(src.ref!, { ...(o.platform ? { platform: o.platform } : {}) });
        await b.op({ op: 'extract', sif: r.path, root });
        return;
      }
      default: {
        o.info(`converting ${src.agent}:${src.from!.value}`);
        const image = await resolveSource(src.ref!).resolve(o.platform ? { platform: o.platform } : {});
        const sif = path.join(b.work, `base-${st.index}.sif`);
        try {
          await convertImage(image, sif, { force: true, bootstrap: bootstrapOf(src.ref!) });
        } finally {
          await image.close();
        }
        await b.op({ op: 'extract', sif, root });
        await fs.rm(sif, { force: true });
      }
    }
  } catch (e) {
    throw atLine(where, e);
  }
}
