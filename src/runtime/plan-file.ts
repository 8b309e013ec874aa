/**
 * Saved launch plans: the wire format of codec.ts in a file, which
 * `hpcc-launch --plan FILE` runs without Node (Slurm wrappers launch each
 * rank this way). Written atomically (temp file, fsync, rename), mode 0600
 * because a plan holds the payload's whole environment.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { addContext } from '../errors/index.js';
import { PLAN_LIMITS, decodePlan, encodePlan, LaunchPlanError } from './codec.js';
import type { LaunchPlan } from './plan.js';

export async function writePlanFile(file: string, plan: LaunchPlan): Promise<void> {
  const bytes = encodePlan(plan);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(tmp, 'wx', 0o600);
    await fh.writeFile(bytes);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fs.rename(tmp, file);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw addContext(`write plan file ${file}`, e);
  }
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
