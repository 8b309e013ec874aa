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
import type { IdMap, WarmSpec } from '../plan.js';
import type { HostFacts, ImageFacts } from './types.js';

/** The keeper protocol the key is made for (warm.c's WARM_PROTO). */
export const WARM_PROTOCOL = 'warm/1';
/** Default seconds a keeper stays unused (config `[launch] warm`, HPCC_WARM_IDLE). */
export const WARM_IDLE_DEFAULT = 300;

export function warmSpec(image: ImageFacts, host: HostFacts, fuseHelper: string, uid: IdMap, gid: IdMap): WarmSpec | undefined {
  if (!host.warm || host.warm.idleSeconds <= 0 || image.identity === undefined || image.rootDir) return undefined;
  const identity = `${image.identity}:${image.offset}`;
  const key = createHash('sha256')
    .update(JSON.stringify([WARM_PROTOCOL, identity, image.path, uid.inside, uid.outside, gid.inside, gid.outside, fuseHelper, host.warm.node]))
    .digest('hex')
    .slice(0, 32);
  return { dir: host.warm.dir, key, idleSeconds: host.warm.idleSeconds, identity };
}
