/**
 * Builder inputs as plain data: an image and a host described by the paths
 * they hold, so golden plans are deterministic and need no mounts.
 */
import * as path from 'node:path';
import { defaultConfig } from '../../../../src/runtime/builder/config.js';
import type { BuildInput, HostFacts, ImageFacts, LaunchConfig, LaunchFlags, PathInfo, PathKind } from '../../../../src/runtime/builder/types.js';

/** A look-up over `{path: kind}` with `{path: '->target'}` symlinks, resolved like the kernel would. */
export function treeLookup(tree: Record<string, PathKind | string>): (p: string) => PathInfo | null {
  const resolve = (p: string, depth: number): string | null => {
    if (depth > 40) return null;
    const parts = p.split('/').filter((c) => c !== '' && c !== '.');
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = parts[i] === '..' ? path.posix.dirname(cur) : path.posix.join(cur, parts[i]!);
      const v = tree[next];
      if (v === undefined) return null;
      if (typeof v === 'string' && v.startsWith('->')) {
        const t = v.slice(2);
        const base = t.startsWith('/') ? t : path.posix.join(cur, t);
        const r = resolve(base, depth + 1);
        if (r === null) return null;
        cur = r;
      } else cur = next;
    }
    return cur;
  };
  return (p) => {
    const real = resolve(p, 0);
    if (real === null) return null;
    const v = real === '/' ? 'dir' : tree[real];
    return { kind: (v ?? 'dir') as PathKind, real };
  };
}

/** The target of the symlink `p` of such a tree (`{path: '->target'}`), else null. */
export function treeReadlink(tree: Record<string, PathKind | string>): (p: string) => string | null {
  return (p) => {
    const v = tree[p];
    return typeof v === 'string' && v.startsWith('->') ? v.slice(2) : null;
  };
}

export const IMAGE_TREE: Record<string, PathKind | string> = {
  '/bin': 'dir',
  '/bin/sh': 'file',
  '/bin/bash': 'file',
  '/etc': 'dir',
  '/etc/passwd': 'file',
  '/etc/group': 'file',
  '/etc/hosts': 'file',
  '/etc/localtime': '->/usr/share/zoneinfo/Etc/UTC',
  '/usr': 'dir',
  '/usr/share': 'dir',
  '/usr/share/zoneinfo': 'dir',
  '/usr/share/zoneinfo/Etc': 'dir',
  '/usr/share/zoneinfo/Etc/UTC': 'file',
  '/tmp': 'dir',
  '/var': 'dir',
  '/var/tmp': 'dir',
  '/dev': 'dir',
  '/proc': 'dir',
  '/sys': 'dir',
  '/home': 'dir',
  '/.singularity.d': 'dir',
  '/.singularity.d/env': 'dir',
  '/.singularity.d/runscript': 'file',
  '/.singularity.d/test': 'file',
  '/.singularity.d/libs': 'dir',
};

export const HOST_TREE: Record<string, PathKind | string> = {
  '/dev': 'dir',
  '/dev/null': 'other',
  '/dev/zero': 'other',
  '/dev/full': 'other',
  '/dev/random': 'other',
  '/dev/urandom': 'other',
  '/dev/tty': 'other',
  '/dev/pts': 'dir',
  '/proc': 'dir',
  '/sys': 'dir',
  '/etc': 'dir',
  '/etc/hosts': 'file',
  '/etc/localtime': '->/usr/share/zoneinfo/Europe/Paris',
  '/usr': 'dir',
  '/usr/share': 'dir',
  '/usr/share/zoneinfo': 'dir',
  '/usr/share/zoneinfo/Europe': 'dir',
  '/usr/share/zoneinfo/Europe/Paris': 'file',
  '/etc/resolv.conf': 'file',
  '/tmp': 'dir',
  '/var': 'dir',
  '/var/tmp': 'dir',
  '/home': 'dir',
  '/home/alice': 'dir',
  '/home/alice/work': 'dir',
  '/home/alice/notes.txt': 'file',
  '/scratch': 'dir',
  '/data': 'dir',
  '/data/set1': 'dir',
  '/opt': 'dir',
  '/opt/site': 'dir',
};

export function image(over: Partial<ImageFacts> = {}): ImageFacts {
  return {
    path: '/home/alice/img.sif',
    offset: 4096,
    passwd: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    group: 'root:x:0:\nnogroup:x:65534:\n',
    envScripts: ['90-environment.sh', '01-base.sh', '10-docker2singularity.sh', 'README'],
    envScriptText: {
      '01-base.sh': '#!/bin/sh\n',
      '10-docker2singularity.sh': '#!/bin/sh\nexport PATH="/opt/conda/bin:/usr/bin:/bin"\nexport LANG="${LANG:-"C.UTF-8"}"\n',
      '90-environment.sh': '#!/bin/sh\nexport GREETING=hello\n',
    },
    lookup: treeLookup(IMAGE_TREE),
    readlink: treeReadlink(IMAGE_TREE),
    ...over,
  };
}

export function host(over: Partial<HostFacts> = {}): HostFacts {
  return {
    uid: 1000,
    gid: 1000,
    user: { name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice', home: '/home/alice', shell: '/bin/bash' },
    group: { name: 'alice', gid: 1000 },
    home: '/home/alice',
    cwd: '/home/alice/work',
    env: {
      HOME: '/home/alice',
      PATH: '/usr/bin:/bin',
      LD_LIBRARY_PATH: '/host/lib',
      TERM: 'xterm',
      SHELL: '/bin/bash',
      EDITOR: 'vi',
      'BASH_FUNC_x%%': '() { :; }',
    },
    lookup: treeLookup(HOST_TREE),
    fuseHelper: '/usr/bin/squashfuse_ll',
    overlayInUserns: true,
    fuseOverlayfs: null,
    stageDirs: ['/mnt', '/tmp/hpcc-1000'],
    warm: null,
    ...over,
  };
}

export function input(
  flags: Partial<LaunchFlags> = {},
  over: { image?: Partial<ImageFacts>; host?: Partial<HostFacts>; config?: Partial<LaunchConfig> } = {},
): BuildInput {
  return {
    image: image(over.image),
    host: host(over.host),
    flags: { action: 'exec', args: ['ls', '-la'], bind: [], ...flags },
    config: { ...defaultConfig(), ...over.config },
  };
}
