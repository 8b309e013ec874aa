import { Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { BlobCache } from '../../oci/cache/store.js';
import { CACHE_TYPES, listCache, type CacheType } from '../../oci/cache/manage.js';
import { formatBytes } from '../build.js';

export default class CacheList extends HpccCommand {
  static override summary = 'List cached blobs, SIFs, extracted trees, launch memos and warm mounts.';
  static override description =
    'The cache lives in $HPCC_CACHEDIR (default $XDG_CACHE_HOME/hpcc or ~/.cache/hpcc): blobs/sha256/<hex> (layers and ' +
    'configs, verified), sif/sha256/<manifest>.sif (converted images) and rootfs/<key> (image trees the launcher ' +
    'extracted: exec --unsquash, or no squashfuse) and launch/<key>.memo (launch plans the native front `hpcc` ' +
    'replays without Node while the facts they were built from hold; docs/launcher.md, "Launch memos"). --type mounts ' +
    'lists the warm mounts of this user on this node (keepers holding an image mounted for its launches to join; ' +
    'docs/launcher.md, "Warm mounts"): image, pid, age, idle seconds, users, and whether it is stale (takes no new ' +
    'launch) or dead (no keeper answers).';
  static override flags = {
    type: Flags.string({ description: 'which entries', options: [...CACHE_TYPES], default: 'all' }),
    json: Flags.boolean({ description: 'print the entries as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CacheList);
    const cache = new BlobCache();
    const entries = await listCache(cache, flags.type as CacheType);
    const total = entries.reduce((a, e) => a + e.size, 0);
    if (flags.json) {
      this.printJson({ status: 'ok', root: cache.root, entries, totalBytes: total });
      return;
    }
    process.stdout.write(`Cache ${cache.root}: ${entries.length} entries, ${formatBytes(total)}\n`);
    for (const e of entries) {
      if (e.type === 'mount') {
        const state = e.dead ? 'dead' : e.stale ? 'stale' : 'live';
        const n = (v: number | null, unit = '') => (v === null ? '-' : `${v}${unit}`);
        process.stdout.write(
          `mount   pid ${n(e.pid)} age ${n(e.ageSeconds, 's')} idle ${n(e.idleSeconds, 's')}/${n(e.idleLimit, 's')} users ${n(e.users)} ${state}  ${e.image}\n`,
        );
        continue;
      }
      process.stdout.write(`${e.type.padEnd(7)} ${formatBytes(e.size).padStart(10)}  ${e.lastUsed.slice(0, 19).replace('T', ' ')}  ${e.name}\n`);
    }
  }
}
