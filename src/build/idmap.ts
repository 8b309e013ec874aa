/**
 * Which id mapping an unprivileged build uses (docs/build.md, "Unprivileged
 * builds"):
 *   subids  0 -> the caller, 1..N -> the caller's first /etc/subuid and
 *           /etc/subgid ranges, written by the setuid newuidmap/newgidmap;
 *           every owner %post sets is kept.
 *   single  0 -> the caller only ("0 UID 1", setgroups deny): every file is
 *           root's in the image; chown to any other id fails with EINVAL.
 * The choice is made once here (pure planIdMapFrom over the facts read by
 * planIdMap) and reported by `hpcc doctor` with the same words.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BuildEnvironmentError } from '../errors/index.js';

export type IdMapMode = 'subids' | 'single';

export interface IdRange {
  start: number;
  count: number;
}

export interface IdMapPlan {
  mode: IdMapMode;
  uid: number;
  gid: number;
  subuid?: IdRange;
  subgid?: IdRange;
  /** one line: why this mode */
  reason: string;
}

/** The environment variable that forces a mode (single | subids). */
export const IDMAP_ENV = 'HPCC_BUILD_IDMAP';

/** Facts planIdMapFrom decides on (read from the host by planIdMap). */
export interface IdMapFacts {
  uid: number;
  gid: number;
  user: string | null;
  subuidText: string | null;
  subgidText: string | null;
  newuidmap: string | null;
  newgidmap: string | null;
}

/**
 * The first usable range of `user` (by name or by numeric uid) in an
 * /etc/subuid-style text; malformed lines and empty ranges are skipped.
 */
export function findSubidRange(text: string | null, user: string | null, uid: number): IdRange | undefined {
  if (text === null) return undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length !== 3) continue;
    if (f[0] !== String(uid) && (user === null || f[0] !== user)) continue;
    if (!/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!)) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (count < 1 || start + count > 0xffffffff) continue;
    return { start, count };
  }
  return undefined;
}

function who(f: IdMapFacts): string {
  return f.user ?? `uid ${f.uid}`;
}

/** Why subids mode is unavailable, or null when it is available. */
function subidsUnavailable(f: IdMapFacts, su: IdRange | undefined, sg: IdRange | undefined): string | null {
  if (!f.newuidmap || !f.newgidmap) {
    const missing = [!f.newuidmap ? 'newuidmap' : null, !f.newgidmap ? 'newgidmap' : null].filter(Boolean).join(' and ');
    return `${missing} missing (package uidmap, or shadow-utils)`;
  }
  if (!su && !sg) return `no /etc/subuid or /etc/subgid entry for ${who(f)}`;
  if (!su) return `no /etc/subuid entry for ${who(f)}`;
  if (!sg) return `no /etc/subgid entry for ${who(f)}`;
  return null;
}

/** Decide the mode from facts; `force` (or HPCC_BUILD_IDMAP) overrides the automatic choice. */
export function planIdMapFrom(f: IdMapFacts, force?: IdMapMode, forcedBy = IDMAP_ENV): IdMapPlan {
  const base = { uid: f.uid, gid: f.gid };
  if (f.uid === 0) {
    // real root: an identity map of 0..65535 keeps every owner; no helper needed
    if (force === 'single') return { ...base, mode: 'single', reason: `single id forced by ${forcedBy} (running as root)` };
    return { ...base, mode: 'subids', subuid: { start: 1, count: 65535 }, subgid: { start: 1, count: 65535 }, reason: 'running as root: ids 0-65535 map to themselves' };
  }
  const su = findSubidRange(f.subuidText, f.user, f.uid);
  const sg = findSubidRange(f.subgidText, f.user, f.uid);
  const why = subidsUnavailable(f, su, sg);
  if (force === 'single') return { ...base, mode: 'single', reason: `single id forced by ${forcedBy}${why ? `; besides, ${why}` : ''}` };
  if (why === null) {
    const r = `${who(f)} has subordinate ids ${su!.start}-${su!.start + su!.count - 1} (uid) and ${sg!.start}-${sg!.start + sg!.count - 1} (gid)`;
    return { ...base, mode: 'subids', subuid: su!, subgid: sg!, reason: force === 'subids' ? `${r} (forced by ${forcedBy})` : r };
  }
  if (force === 'subids') {
    throw new BuildEnvironmentError('HPCC_E_BUILD_NO_SUBIDS', `subordinate-id build mode requested by ${forcedBy}, but ${why}`, {
      hint: `Ask the administrator for /etc/subuid and /etc/subgid ranges (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${who(f)}) and the uidmap package, or unset ${IDMAP_ENV}.`,
    });
  }
  return { ...base, mode: 'single', reason: why };
}

function readOrNull(p: string): string | null {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

/**
 * A usable setuid helper: root-owned and executable; the setuid bit or file
 * capabilities (Fedora/RHEL ship newuidmap with cap_setuid instead) give it
 * the right to write another process's map; a failure shows at map time.
 */
export function findIdHelper(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const dirs = [...(env.PATH ?? '').split(':'), '/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  for (const d of dirs) {
    if (!d.startsWith('/')) continue;
    const p = path.join(d, name);
    try {
      const st = fs.statSync(p);
      if (!st.isFile() || st.uid !== 0 || (st.mode & 0o111) === 0) continue;
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function userName(): string | null {
  try {
    return os.userInfo().username;
  } catch {
    return null;
  }
}

/** Read the host's facts (/etc/subuid, /etc/subgid, the helpers). */
export function readIdMapFacts(files: { subuid?: string; subgid?: string } = {}): IdMapFacts {
  return {
    uid: process.getuid!(),
    gid: process.getgid!(),
    user: userName(),
    subuidText: readOrNull(files.subuid ?? '/etc/subuid'),
    subgidText: readOrNull(files.subgid ?? '/etc/subgid'),
    newuidmap: findIdHelper('newuidmap'),
    newgidmap: findIdHelper('newgidmap'),
  };
}

/** The mode forced by the caller or by HPCC_BUILD_IDMAP (a bad value is a typed error). */
export function forcedMode(force: IdMapMode | undefined, env: NodeJS.ProcessEnv = process.env): IdMapMode | undefined {
  if (force !== undefined) return force;
  const v = env[IDMAP_ENV];
  if (v === undefined || v === '' || v === 'auto') return undefined;
  if (v === 'single' || v === 'subids') return v;
  throw new BuildEnvironmentError('HPCC_E_BUILD_IDMAP', `${IDMAP_ENV}=${v} is not a build id-map mode`, {
    hint: `Set ${IDMAP_ENV} to subids, single or auto (or unset it).`,
  });
}

export async function planIdMap(opts: { force?: IdMapMode; env?: NodeJS.ProcessEnv } = {}): Promise<IdMapPlan> {
  const by = opts.force !== undefined ? 'the caller' : `${IDMAP_ENV}`;
  return planIdMapFrom(readIdMapFacts(), forcedMode(opts.force, opts.env ?? process.env), by);
}

/** The uid_map / gid_map lines (inner outer count) of a plan. */
export function mapLines(plan: IdMapPlan): { uid: string; gid: string } {
  if (plan.mode === 'single') return { uid: `0 ${plan.uid} 1`, gid: `0 ${plan.gid} 1` };
  if (plan.uid === 0) return { uid: `0 0 ${1 + plan.subuid!.count}`, gid: `0 0 ${1 + plan.subgid!.count}` };
  return {
    uid: `0 ${plan.uid} 1\n1 ${plan.subuid!.start} ${plan.subuid!.count}`,
    gid: `0 ${plan.gid} 1\n1 ${plan.subgid!.start} ${plan.subgid!.count}`,
  };
}
