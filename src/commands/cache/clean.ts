import { Flags } from '@oclif/core';
import { HpccCommand } from '../../cli/base.js';
import { BlobCache } from '../../oci/cache/store.js';
import { CACHE_TYPES, cleanCache, type CacheType } from '../../oci/cache/manage.js';
import { formatBytes } from '../build.js';

export default class CacheClean extends HpccCommand {
  static override summary = 'Remove cached blobs, SIFs, extracted trees and memos; stop warm mounts.';
  static override description =
    'Removes every entry of the --type, or with --days only those unused for that many days. ' +
    'Entries in use are kept: blobs and SIFs locked by a running pull, and extracted trees (--type extract: made by ' +
    'exec --unsquash or when squashfuse is absent) mounted by a running container. Temporary files left by killed ' +
    'processes are always removed. Launch memos (--type launch) are only an optimisation: removed, the next launch ' +
    'of that command line runs through Node and writes one again. Warm mounts (--type mounts) are stopped: their ' +
    'keeper takes no new launch and ends when the containers using it have; the files of dead keepers are removed. ' +
    '--dry-run lists what would go.';
  static override flags = {
    type: Flags.string({ description: 'which entries', options: [...CACHE_TYPES], default: 'all' }),
    days: Flags.integer({ description: 'only entries not used for at least this many days', min: 0 }),
    'dry-run': Flags.boolean({ description: 'show what would be removed, remove nothing' }),
    json: Flags.boolean({ description: 'print the result as JSON' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CacheClean);
    const cache = new BlobCache();
    const r = await cleanCache(cache, {
      type: flags.type as CacheType,
      ...(flags.days !== undefined ? { days: flags.days } : {}),
      dryRun: flags['dry-run'],
    });
    if (flags.json) {
      this.printJson({ status: 'ok', root: cache.root, ...r });
      return;
    }
    const verb = r.dryRun ? 'Would remove' : 'Removed';
    for (const e of r.removed) {
      if (e.type === 'mount') process.stdout.write(`${r.dryRun ? 'Would stop' : e.dead ? 'Removed dead' : 'Stopped'} mount ${e.name} (pid ${e.pid ?? '-'}, ${e.image})\n`);
      else process.stdout.write(`${verb} ${e.type} ${e.name} (${formatBytes(e.size)})\n`);
    }
    for (const e of r.busy) process.stdout.write(`In use, kept: ${e.type} ${e.name}\n`);
    process.stdout.write(`${verb} ${r.removed.length} entries, ${formatBytes(r.bytes)} from ${cache.root}\n`);
  }
}
