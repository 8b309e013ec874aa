/**
 * Overlay policy: which methods the helper may use to make targets the
 * read-only image lacks (and for --writable-tmpfs), in the order to try.
 * The helper tries them in order and reports the one it used; it decides
 * nothing itself. Pure: the mode comes from HPCC_OVERLAY (in the caller's
 * environment), else the config's `[launch] overlay`, else `auto`.
 *
 *   auto      kernel (when the kernel should allow it), fuse (when
 *             fuse-overlayfs is installed), skeleton (not when writable)
 *   kernel | fuse | skeleton   that method alone (forced: tests, sites that
 *             know what works); a forced method that cannot serve is an error
 *   none      no overlay: targets must exist in the image
 * HPCC_NO_OVERLAY=1 (older switch) makes the kernel method count as refused.
 */
import { HpccError } from '../../errors/index.js';
import type { OverlayMethod } from '../plan.js';
import { parseOverlayMode } from './config.js';
import type { BuildInput, OverlayMode } from './types.js';

export const EXIT_NO_OVERLAY = 105;

export interface OverlayChoice {
  mode: OverlayMode;
  /** methods for a read-only overlay (missing targets), in order; empty: none allowed */
  methods: OverlayMethod[];
  /** why `methods` is empty (for messages) */
  why: string;
  fuseOverlayfs: string | null;
}

export function overlayMode(input: BuildInput): OverlayMode {
  const env = input.host.env.HPCC_OVERLAY;
  if (env !== undefined && env !== '') return parseOverlayMode(env, 'HPCC_OVERLAY');
  return input.config.overlay ?? 'auto';
}

function noOverlay(message: string, hint: string): HpccError {
  return new HpccError('HPCC_E_LAUNCH_NO_OVERLAY', message, { exitCode: EXIT_NO_OVERLAY, hint });
}

const FUSE_HINT = 'Install fuse-overlayfs (Debian/Ubuntu: apt-get install fuse-overlayfs) and check /dev/fuse with `hpcc doctor`.';

/** The methods to try; throws for --writable-tmpfs when no writable method is allowed. */
export function chooseOverlay(input: BuildInput): OverlayChoice {
  const { host, flags } = input;
  const mode = overlayMode(input);
  const fuse = host.fuseOverlayfs;
  let methods: OverlayMethod[];
  let why = '';
  switch (mode) {
    case 'none':
      methods = [];
      why = 'overlays are turned off (overlay = none)';
      break;
    case 'kernel':
      methods = ['kernel'];
      break;
    case 'fuse':
      methods = fuse ? ['fuse'] : [];
      why = 'overlay = fuse, but fuse-overlayfs (or a usable /dev/fuse) is missing';
      break;
    case 'skeleton':
      methods = ['skeleton'];
      break;
    default:
      methods = [...(host.overlayInUserns ? (['kernel'] as const) : []), ...(fuse ? (['fuse'] as const) : []), 'skeleton'];
  }
  if (flags.writableTmpfs) {
    const writable = methods.filter((m) => m !== 'skeleton');
    if (writable.length === 0) {
      if (mode === 'skeleton') {
        throw noOverlay('--writable-tmpfs needs an overlay, and overlay = skeleton makes none (a skeleton of binds cannot hold changes to image files)', 'Use overlay = auto, kernel or fuse (HPCC_OVERLAY or [launch] overlay in hpcc.conf).');
      }
      if (mode === 'none' || mode === 'fuse') throw noOverlay(`--writable-tmpfs needs an overlay: ${why}`, mode === 'fuse' ? FUSE_HINT : 'Use overlay = auto, kernel or fuse (HPCC_OVERLAY or [launch] overlay in hpcc.conf).');
      throw noOverlay(
        '--writable-tmpfs needs overlay mounts in a user namespace: this kernel does not allow overlayfs there and fuse-overlayfs is not installed',
        `${FUSE_HINT} Kernel overlayfs is allowed in user namespaces from Linux 5.11.`,
      );
    }
    methods = writable;
  }
  return { mode, methods, why: why || 'no overlay method is allowed', fuseOverlayfs: methods.includes('fuse') ? fuse : null };
}
