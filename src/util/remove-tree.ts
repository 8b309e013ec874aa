/**
 * Remove a directory tree that an extraction made, even where it applied
 * read-only directory modes (0555 and the like block unlinking their
 * entries for a non-root owner): on failure, make every directory 0700 and
 * try once more. Best effort: never throws.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

function makeRemovable(dir: string): void {
  try {
    fs.chmodSync(dir, 0o700);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) makeRemovable(path.join(dir, e.name));
  } catch {
    /* best effort */
  }
}

export function removeTree(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch {
    makeRemovable(dir);
  }
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}
