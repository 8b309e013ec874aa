/**
 * `hpcc doctor`'s "warm mounts" check (docs/launcher.md, "Warm mounts"):
 * the configured idle time, whether the rendezvous directory is one the
 * helper will use (the caller's, no group or other bits; created when
 * missing), and a probe of what joining a keeper needs beyond an ordinary
 * launch: setns(CLONE_NEWUSER) into a user namespace another process of the
 * caller's made (util-linux unshare and nsenter, as the calling user).
 * FUSE itself has its own checks (/dev/fuse, squashfuse).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { loadConfig } from '../runtime/builder/config.js';
import { userLaunchDir, warmIdleSeconds, warmRendezvousDir } from '../runtime/builder/facts.js';
import type { Check } from './doctor.js';

const NAME = 'warm mounts';

/** A child makes a user namespace; we join it as its owner. */
const PROBE = [
  'unshare -Ur sleep 10 & p=$!',
  'i=0; while [ "$(readlink /proc/$p/ns/user)" = "$(readlink /proc/self/ns/user)" ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.01; done',
  'nsenter -t $p -U --preserve-credentials true; r=$?',
  'kill $p 2>/dev/null; exit $r',
].join('\n');

/** null when joining works, else what failed. */
export function probeUsernsJoin(): string | null {
  const r = spawnSync('sh', ['-c', PROBE], { encoding: 'utf8', timeout: 15_000 });
  if (r.status === 0) return null;
  return `${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() || `exit status ${r.status}`;
}

export function checkWarm(env: Record<string, string | undefined> = process.env, uid = process.getuid!(), probe: () => string | null = probeUsernsJoin): Check {
  let idle: number;
  let dir: string;
  let base: string;
  try {
    const config = loadConfig(env);
    idle = warmIdleSeconds(env, config);
    base = userLaunchDir(env, config, uid);
    dir = warmRendezvousDir(base);
  } catch (e) {
    return { name: NAME, status: 'fail', detail: (e as Error).message, fix: 'Set HPCC_WARM_IDLE or [launch] warm to 0 (off) up to 604800 seconds.' };
  }
  const source = env.HPCC_WARM_IDLE ? 'HPCC_WARM_IDLE' : '[launch] warm or the default';
  if (idle === 0) return { name: NAME, status: 'ok', detail: `off (${source} = 0): each launch mounts its image itself (--sharens still uses one)` };
  for (const [d, strict] of [[base, false], [dir, true]] as const) {
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (st && (!st.isDirectory() || st.uid !== uid || (strict && (st.mode & 0o077) !== 0))) {
      return {
        name: NAME,
        status: 'warn',
        detail: `${d} is not a directory of uid ${uid}${strict ? ' that only its owner may use' : ''}: every launch mounts its image itself`,
        fix: `Remove ${d} (the next launch creates it), or set HPCC_TMPDIR to a directory of your own.`,
      };
    }
  }
  const why = probe();
  if (why !== null) {
    return {
      name: NAME,
      status: 'warn',
      detail: `joining a user namespace of yours failed (${why.split('\n')[0]}): every launch mounts its image itself, --sharens fails`,
      fix: 'setns(CLONE_NEWUSER) is blocked (seccomp or LSM policy); ask the admin to allow it, or set HPCC_WARM_IDLE=0.',
    };
  }
  return { name: NAME, status: 'ok', detail: `on, a keeper stays ${idle} s unused (${source}); rendezvous ${dir}; joining a user namespace works` };
}
