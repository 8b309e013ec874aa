#!/usr/bin/env node
// Record what this build is, for `hpcc --version` / `hpcc version --json`: the package's
// version and the git revision of the source tree (with "-dirty" when it has uncommitted
// changes), taken now, at build time, so hpcc never runs git when it starts. Run by
// `npm run build`; writes dist/build-info.json. Outside a git checkout (a package
// built from a tarball) an existing record is kept, else the revision is "unknown".
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(repo, 'dist', 'build-info.json');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
const git = (...args) => {
  const r = spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};

let revision = null;
if (fs.existsSync(path.join(repo, '.git'))) {
  const head = git('rev-parse', 'HEAD');
  if (head) revision = git('status', '--porcelain', '--untracked-files=no') ? `${head}-dirty` : head;
}
if (revision === null && fs.existsSync(out)) process.exit(0); // keep the record the package was built with
const info = { name: pkg.name, version: pkg.version, revision: revision ?? 'unknown', builtAt: new Date().toISOString() };
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(`${out}.tmp`, JSON.stringify(info, null, 2) + '\n');
fs.renameSync(`${out}.tmp`, out);
