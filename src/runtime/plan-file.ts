/**
 * Saved launch plans: the wire format of codec.ts in a file, which
 * `hpcc-launch --plan FILE` runs without Node (Slurm wrappers launch each
 * rank this way). Written atomically (temp file, fsync, rename), mode 0600
 * because a plan holds the payload's whole environment.
 */
import * as fs from 'node:fs/promises';
import { addContext } from '../errors/index.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { PLAN_LIMITS, decodePlan, encodePlan, LaunchPlanError } from './codec.js';
import type { LaunchPlan } from './plan.js';

export async function writePlanFile(file: string, plan: LaunchPlan): Promise<void> {
  await writeFileAtomic(file, encodePlan(plan), { mode: 0o600, what: `write plan file ${file}` });
}

export async function readPlanFile(file: string): Promise<LaunchPlan> {
  let bytes: Buffer;
  try {
    const st = await fs.stat(file);
    if (st.size > PLAN_LIMITS.bytes) throw new LaunchPlanError(`plan file ${file} is larger than ${PLAN_LIMITS.bytes} bytes`);
    bytes = await fs.readFile(file);
  } catch (e) {
    throw addContext(`read plan file ${file}`, e);
  }
  try {
    return decodePlan(bytes);
  } catch (e) {
    throw addContext(`plan file ${file}`, e);
  }
}
