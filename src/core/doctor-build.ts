/**
 * `hpcc doctor`'s build-mode row: which id mapping a definition-file build
 * would use here and why (src/build/idmap.ts decides; the same words), and
 * whether `Bootstrap: debootstrap` can work.
 */
import { isHpccError } from '../errors/index.js';
import { forcedMode, planIdMapFrom, readIdMapFacts, type IdMapPlan } from '../build/idmap.js';
import { findExecutable } from '../build/ns-spawn.js';
import type { Check } from './doctor.js';

/** Pure: the row for a plan (or the error planning gave) and the mmdebstrap found. */
export function buildModeCheck(plan: IdMapPlan | Error, mmdebstrap: string | null): Check {
  const name = 'build mode (%post, unprivileged)';
  if (plan instanceof Error) {
    return { name, status: 'fail', detail: plan.message, fix: isHpccError(plan) && plan.hint ? plan.hint : 'Unset HPCC_BUILD_IDMAP.' };
  }
  const deb = mmdebstrap
    ? plan.mode === 'subids'
      ? `; Bootstrap: debootstrap uses ${mmdebstrap}`
      : '; Bootstrap: debootstrap unavailable (needs subordinate ids)'
    : '; Bootstrap: debootstrap unavailable (mmdebstrap not installed)';
  if (plan.mode === 'subids') {
    return { name, status: 'ok', detail: `subordinate ids: ${plan.reason}; %post keeps every owner${deb}` };
  }
  return {
    name,
    status: 'warn',
    detail: `single id (${plan.reason}): %post runs as root with one id, so owners collapse to root and chown to other ids fails${deb}`,
    fix: 'As root: give the user ranges (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER) and install newuidmap/newgidmap (Debian/Ubuntu: uidmap).',
  };
}

export function checkBuildMode(env: NodeJS.ProcessEnv = process.env): Check {
  let plan: IdMapPlan | Error;
  try {
    plan = planIdMapFrom(readIdMapFacts(), forcedMode(undefined, env));
  } catch (e) {
    plan = e as Error;
  }
  return buildModeCheck(plan, findExecutable('mmdebstrap', env));
}
