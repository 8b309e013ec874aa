/**
 * Shared by the warm mount e2e suites (launch-warm, cache-mounts,
 * launch-sharens): the keepers of a rendezvous directory, the processes
 * holding a FUSE mount of an image, waiting.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IS_ROOT, removeTree, testUserIds } from '../helpers/env.js';
import { makeE2eImage, type E2eImage } from './launch-fixture.js';

export interface Keeper {
  pid: number;
  image: string;
  uid: number;
  file: string;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose mount table holds a FUSE mount of `sif` (keepers and the launches joined to them), by mount namespace. */
export function fuseHolders(sif: string): { pid: number; comm: string; ns: string }[] {
  const out: { pid: number; comm: string; ns: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const mi = fs.readFileSync(`/proc/${d}/mountinfo`, 'utf8');
      if (!mi.split('\n').some((l) => / - fuse\.squashfuse\S* /.test(l) && l.split(' - ')[1]!.split(' ')[1] === sif)) continue;
      out.push({ pid: Number(d), comm: fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim(), ns: fs.readlinkSync(`/proc/${d}/ns/mnt`) });
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

/** FUSE servers whose parent is a keeper serving `sif`. */
export function fuseServers(sif: string): number[] {
  const keeperPids = new Set(fuseHolders(sif).filter((h) => h.comm === 'hpcc-keeper').map((h) => h.pid));
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (keeperPids.has(ppid) && /squashfuse/.test(fs.readFileSync(`/proc/${d}/comm`, 'utf8'))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The keepers whose metadata is in the rendezvous directory `d`. */
export function keepersIn(d: string): Keeper[] {
  if (!fs.existsSync(d)) return [];
  return fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ ...(JSON.parse(fs.readFileSync(path.join(d, f), 'utf8')) as Keeper), file: f }));
}

/** What warmSuite's hooks keep: the suite's image, this test's launch directory (HPCC_TMPDIR) and its number. */
export interface WarmSuite {
  img: E2eImage;
  tdir: string;
  n: number;
  /** the rendezvous directory of this test's keepers */
  warmDir(): string;
}

/**
 * The hooks of a warm-mount suite (cache-mounts, launch-sharens): an image made
 * once (`prefix` names its temporary directory), a fresh launch directory per
 * test owned by the test user, every keeper of it stopped after each test, the
 * image's tree removed at the end.
 */
export function warmSuite(prefix: string): WarmSuite {
  const { uid, gid } = testUserIds();
  const w = {
    n: 0,
    warmDir: () => path.join(w.tdir, `hpcc-${uid}`, 'warm'),
  } as WarmSuite;
  before(function () {
    w.img = makeE2eImage(this, prefix);
  });
  beforeEach(() => {
    w.tdir = path.join(w.img.tmp, `t${w.n++}`);
    fs.mkdirSync(w.tdir, { mode: 0o755 });
    if (IS_ROOT) fs.chownSync(w.tdir, uid, gid);
  });
  afterEach(async () => {
    for (const k of keepersIn(w.warmDir())) if (alive(k.pid)) process.kill(k.pid, 'SIGTERM');
    await until('the keepers have ended', () => fuseHolders(w.img.sif).length === 0).catch(() => undefined);
  });
  after(() => {
    if (w.img?.tmp) removeTree(w.img.tmp);
  });
  return w;
}
