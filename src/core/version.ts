/**
 * `hpcc version` and `hpcc --version`: what this hpcc is and what it found on the node.
 *
 *  - hpcc's version and git revision, as recorded at build time in dist/build-info.json
 *    (scripts/build-info.mjs; git is never run here);
 *  - the Node.js running hpcc (the install's own Node 24, or a release's);
 *  - the launch helper's path and the plan wire-format version it reads (`hpcc-launch
 *    --version`), beside the plan version this hpcc writes and the launch memo's key format;
 *  - the optional parts hpcc uses when present: squashfuse (else images are extracted),
 *    fuse-overlayfs (an overlay method), the libdeflate addon (else Node's zlib),
 *    newuidmap (subordinate ids; hpcc itself maps only the caller's id).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadLibdeflate } from '../formats/squashfs/codecs/libdeflate.js';
import { onPath } from '../runtime/builder/facts.js';
import { MEMO_KEY_VERSION } from '../runtime/memo.js';
import { PLAN_VERSION } from '../runtime/plan.js';
import { LAUNCH_HELPER } from '../runtime/spawn.js';
import { installRoot } from '../util/install-root.js';

export interface VersionInfo {
  hpcc: string;
  /** git revision of the build ("-dirty": uncommitted changes), "unknown" when not recorded */
  revision: string;
  builtAt: string | null;
  node: string;
  platform: string;
  /** the install's root (the checkout, the npm package, or a release's lib/hpcc) */
  install: string;
  helper: { path: string; planVersion: number | null; error?: string };
  wireFormats: { plan: number; memoKey: string };
  optional: { squashfuse: string | null; fuseOverlayfs: string | null; libdeflate: boolean; newuidmap: string | null };
}

interface BuildInfo {
  version?: string;
  revision?: string;
  builtAt?: string;
}

function readBuildInfo(root: string): BuildInfo {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'dist', 'build-info.json'), 'utf8')) as BuildInfo;
  } catch {
    return {};
  }
}

function packageVersion(root: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** `hpcc-launch --version` prints "hpcc-launch plan-version N". */
function helperVersion(helper: string): VersionInfo['helper'] {
  const r = spawnSync(helper, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const m = r.status === 0 ? /plan-version (\d+)/.exec(r.stdout) : null;
  if (m) return { path: helper, planVersion: Number(m[1]) };
  return { path: helper, planVersion: null, error: r.error ? r.error.message : `exit ${String(r.status)}: ${(r.stderr ?? '').trim()}` };
}

export function versionInfo(env: Record<string, string | undefined> = process.env): VersionInfo {
  const root = installRoot();
  const build = readBuildInfo(root);
  const helperEnv = env.HPCC_LAUNCH_HELPER;
  const helper = helperEnv ? helperEnv : path.join(root, 'dist', 'native', LAUNCH_HELPER);
  return {
    hpcc: build.version ?? packageVersion(root),
    revision: build.revision ?? 'unknown',
    builtAt: build.builtAt ?? null,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    install: root,
    helper: helperVersion(helper),
    wireFormats: { plan: PLAN_VERSION, memoKey: MEMO_KEY_VERSION },
    optional: {
      squashfuse: onPath('squashfuse_ll', env.PATH) ?? onPath('squashfuse', env.PATH),
      fuseOverlayfs: onPath('fuse-overlayfs', env.PATH),
      libdeflate: loadLibdeflate() !== null,
      newuidmap: onPath('newuidmap', env.PATH),
    },
  };
}

export function renderVersion(v: VersionInfo): string {
  const present = (p: string | null | boolean) => (p === true ? 'yes' : p ? p : 'no');
  const helper = v.helper.planVersion !== null ? `plan version ${v.helper.planVersion} (${v.helper.path})` : `not usable: ${v.helper.error ?? '?'} (${v.helper.path})`;
  return [
    `hpcc ${v.hpcc} (${v.revision})`,
    `node: ${v.node} ${v.platform}`,
    `install: ${v.install}`,
    `hpcc-launch: ${helper}`,
    `wire formats: plan ${v.wireFormats.plan}, launch memo key ${v.wireFormats.memoKey}`,
    `squashfuse: ${present(v.optional.squashfuse)}`,
    `fuse-overlayfs: ${present(v.optional.fuseOverlayfs)}`,
    `libdeflate: ${present(v.optional.libdeflate)}`,
    `newuidmap: ${present(v.optional.newuidmap)}`,
    '',
  ].join('\n');
}
