/**
 * Warm mounts: whether a launch shares a squashfuse mount of its image kept
 * by a keeper process, and the keeper it must find (native/launch/warm.c
 * joins or starts it; docs/launcher.md, "Warm mounts"). Pure.
 *
 * The key names one keeper: the image file's identity and partition, the id
 * mapping (a --fakeroot launch never meets a plain one's keeper), the FUSE
 * server and the node, hashed. The helper adds its cgroup to the socket's
 * name (one keeper per cgroup: a Slurm step's keeper dies with the step).
 */
import { createHash } from 'node:crypto';
import { HpccError } from '../../errors/index.js';
import type { IdMap, WarmSpec } from '../plan.js';
import type { HostFacts, ImageFacts } from './types.js';

/** The keeper protocol the key is made for (warm.c's WARM_PROTO). */
export const WARM_PROTOCOL = 'warm/1';
/** Default seconds a keeper stays unused (config `[launch] warm`, HPCC_WARM_IDLE). */
export const WARM_IDLE_DEFAULT = 300;

/** Exit status of a launch that --sharens could not give a shared namespace (the helper's EXL_NS). */
export const EXIT_SHARENS = 99;

export function sharensError(why: string): HpccError {
  return new HpccError('HPCC_E_LAUNCH_SHARENS', `--sharens: ${why}`, {
    exitCode: EXIT_SHARENS,
    hint: 'Launch from a SIF mounted with squashfuse (no --unsquash) with a private launch directory (HPCC_TMPDIR); `hpcc doctor` checks warm mounts.',
  });
}

/**
 * With `sharens` (--sharens) a keeper is used even when warm mounts are off
 * (idle 0: the default idle time) and the plan requires it (the helper fails
 * instead of launching alone); no keeper possible is HPCC_E_LAUNCH_SHARENS.
 */
export function warmSpec(image: ImageFacts, host: HostFacts, fuseHelper: string, uid: IdMap, gid: IdMap, sharens = false): WarmSpec | undefined {
  if (sharens) {
    if (image.rootDir) throw sharensError(`${image.path} runs from an extracted tree, which no keeper holds`);
    if (!host.warm) throw sharensError('the per-user launch directory is not usable, so there is no keeper to share');
    if (image.identity === undefined) throw sharensError(`${image.path} has no file identity to key a keeper by`);
  }
  const idle = host.warm && host.warm.idleSeconds > 0 ? host.warm.idleSeconds : sharens ? WARM_IDLE_DEFAULT : 0;
  if (!host.warm || idle <= 0 || image.identity === undefined || image.rootDir) return undefined;
  const identity = `${image.identity}:${image.offset}`;
  const key = createHash('sha256')
    .update(JSON.stringify([WARM_PROTOCOL, identity, image.path, uid.inside, uid.outside, gid.inside, gid.outside, fuseHelper, host.warm.node]))
    .digest('hex')
    .slice(0, 32);
  return { dir: host.warm.dir, key, idleSeconds: idle, identity, ...(sharens ? { required: true } : {}) };
}
