/**
 * RDMA (InfiniBand, RoCE, iWARP, Omni-Path verbs): on a host that has RDMA
 * devices, a container's MPI or libfabric reaches them the way a host
 * program does. Pure: host paths come from host.lookup (so each one is a
 * launch memo fact), and every intent is optional (skipped when it cannot be
 * placed, never an error).
 *
 * The host has RDMA when /dev/infiniband is a directory (the kernel's uverbsN,
 * rdma_cm, umadN and issmN nodes; the host's permissions on them still
 * decide who may open them). Then, by default:
 *   - /dev/infiniband: bound when /dev is not the host's whole /dev
 *     (--contain/--containall's minimal /dev, or [mount] dev = no);
 *   - /etc/libibverbs.d and /etc/rdma: the host's verbs provider list and
 *     RDMA configuration, read-only, where the host has them;
 *   - /sys/class/infiniband, read-only (with [mount] sys): the device list
 *     that libibverbs reads.
 * Without /dev/infiniband nothing is bound (a host with libibverbs installed
 * but no device keeps the image's own /etc). [mount] rdma = no or --no-rdma
 * turns all of it off.
 */
import type { MountIntent } from './binds.js';
import type { BuildInput } from './types.js';

export const RDMA_DEVICES = '/dev/infiniband';
/** The host's RDMA configuration, bound read-only when present. */
export const RDMA_CONFIG: readonly string[] = ['/etc/libibverbs.d', '/etc/rdma'];
export const RDMA_SYSFS = '/sys/class/infiniband';

/** Whether RDMA binds are on for this launch ([mount] rdma, --no-rdma). */
export function rdmaWanted(input: BuildInput): boolean {
  return input.config.mount.rdma && !input.flags.noRdma;
}

/** The RDMA binds for this launch, in mount order (after the system mounts). */
export function rdmaIntents(input: BuildInput, contain: boolean): MountIntent[] {
  if (!rdmaWanted(input)) return [];
  const { host, config } = input;
  const dev = host.lookup(RDMA_DEVICES);
  if (dev?.kind !== 'dir') return [];
  const out: MountIntent[] = [];
  const bind = (src: string, readonly: boolean, origin: string): void => {
    const info = host.lookup(src);
    if (info && info.kind !== 'other') out.push({ kind: 'bind', src: info.real, dst: src, readonly, srcKind: info.kind, optional: true, origin });
  };
  if (contain || !config.mount.dev) bind(RDMA_DEVICES, false, contain ? 'default (--contain, RDMA)' : 'default (RDMA)');
  for (const p of RDMA_CONFIG) bind(p, true, 'default (RDMA)');
  if (config.mount.sys) bind(RDMA_SYSFS, true, 'default (RDMA)');
  return out;
}
