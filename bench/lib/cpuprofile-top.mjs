#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof) of the main thread: self time
// by category, by source file and by function. Work on the libuv threadpool
// (zlib compression, fs calls) does not appear here; on the main thread it
// shows up as "(idle)", i.e. waiting.
//   node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [TOP=25]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpuprofile-top.mjs FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map(); // node id -> microseconds
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function shortUrl(url) {
  if (!url) return '(native)';
  const m = /\/(dist\/.*|bench\/.*|node_modules\/.*)$/.exec(url);
  if (m) return m[1];
  return url.replace(/^file:\/\//, '');
}
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);
const byFunc = new Map();
const byFile = new Map();
for (const [id, us] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const name = cf.functionName || '(anonymous)';
  const special = name.startsWith('(') && !cf.url;
  const fileKey = special ? name : shortUrl(cf.url);
  add(byFile, fileKey, us);
  add(byFunc, special ? name : `${name}  ${shortUrl(cf.url)}:${cf.lineNumber + 1}`, us);
}
const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5);
const ms = (us) => (us / 1000).toFixed(0).padStart(7);
function print(title, map, n) {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${ms(us)} ms ${pct(us)} %  ${k}`);
}
console.log(`main-thread profile ${file}: ${(total / 1e6).toFixed(2)} s sampled`);
print('self time by source file', byFile, 15);
print('self time by function', byFunc, top);
