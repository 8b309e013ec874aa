/**
 * Another process holding one of hpcc's cache locks: a child that writes the
 * lock file as lock.ts does ({pid, boot, start, host}, O_EXCL) and sleeps until
 * it is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const script = (lockPath: string) => `
  const fs = require('fs');
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  fs.writeFileSync(${JSON.stringify(lockPath)}, JSON.stringify({ pid: process.pid, boot, start, host: require('os').hostname() }), { flag: 'wx' });
  process.stdout.write('locked\\n');
  setInterval(() => {}, 1000);`;

/** Resolves once the child holds `lockPath`; the caller kills it (SIGKILL) when done. */
export async function holdLockInChild(lockPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', script(lockPath)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before taking ${lockPath}`)));
  });
  return child;
}
