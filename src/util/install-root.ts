/**
 * The root of this hpcc install: the nearest directory above this module
 * holding package.json (the checkout, or the installed package). dist/native
 * (the launch helper, the native front) and dist/src/cli (bundles, snapshots)
 * are found from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export function installRoot(): string {
  let root = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(root, 'package.json')) && path.dirname(root) !== root) root = path.dirname(root);
  return root;
}
