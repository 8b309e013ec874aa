/**
 * What a definition-file build writes into the final image's /.singularity.d,
 * as Apptainer does (pure; applied inside the build namespace by
 * ns-worker.ts): the def file as `Singularity` (an older one moves to
 * `bootstrap_history/ApptainerN`), `labels.json` (the base image's labels,
 * then the build labels below, then the file's %labels), %environment
 * appended to `env/90-environment.sh`, `runscript`, `startscript`, `test`
 * (a `#!` first line kept, else `#!/bin/sh`) and `runscript.help`.
 * The SIF's Def.FILE and inspect-metadata.json objects are then made from
 * this tree by the ordinary packer (src/core/build.ts), so there is one
 * source for each.
 */
import { labelsOf, sectionScript, type Stage } from './parse.js';

/** Label names (Apptainer's) a build adds; the one place they are spelled. */
export const BUILD_LABELS = {
  schemaVersion: 'org.label-schema.schema-version',
  buildDate: 'org.label-schema.build-date',
  buildArch: 'org.label-schema.build-arch',
  usage: 'org.label-schema.usage',
  usageHelp: 'org.label-schema.usage.apptainer.runscript.help',
  deffilePrefix: 'org.label-schema.usage.singularity.deffile.',
  hpccVersion: 'org.label-schema.usage.hpcc.version',
  created: 'org.opencontainers.image.created',
  architecture: 'org.opencontainers.image.architecture',
} as const;

export const HELP_PATH = '/.singularity.d/runscript.help';

export interface ImageMeta {
  deffile: string;
  /** labels in the order they apply (later wins) */
  labels: Array<[string, string]>;
  environment?: string;
  runscript?: string;
  startscript?: string;
  test?: string;
  help?: string;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Apptainer's build-date text (e.g. Saturday_5_December_2026_21:4:9_UTC), in UTC. */
export function buildDateLabel(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return `${DAYS[d.getUTCDay()]}_${d.getUTCDate()}_${MONTHS[d.getUTCMonth()]}_${d.getUTCFullYear()}_${d.getUTCHours()}:${d.getUTCMinutes()}:${d.getUTCSeconds()}_UTC`;
}

/** GOARCH name of a Node arch (the label Apptainer writes). */
export function goArch(nodeArch: string): string {
  const m: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  return m[nodeArch] ?? nodeArch;
}

/** A script section as Apptainer writes it: its own `#!` line, else `#!/bin/sh`; section arguments join the shebang. */
export function scriptFile(script: string, args: string): string {
  let shebang = '#!/bin/sh';
  let body = script;
  const trimmed = script.replace(/^\s+/, '');
  if (trimmed.startsWith('#!')) {
    const nl = trimmed.indexOf('\n');
    shebang = (nl < 0 ? trimmed : trimmed.slice(0, nl)).trim();
    body = nl < 0 ? '' : trimmed.slice(nl + 1);
  }
  const a = args.split('#')[0]!.trim();
  if (a !== '') shebang += ` ${a}`;
  return `${shebang}\n\n${body}\n`;
}

/** Text without its blank edges and the indentation all its lines share. */
export function dedent(text: string): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  while (lines.length > 0 && lines[0]!.trim() === '') lines.shift();
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join('\n');
}

/** The metadata of the final stage. `time` is the build time (unix seconds; fixed with --deterministic). */
export function imageMeta(stage: Stage, deffile: string, o: { time: number; arch: string; version: string }): ImageMeta {
  const labels: Array<[string, string]> = [];
  labels.push([BUILD_LABELS.schemaVersion, '1.0']);
  labels.push([BUILD_LABELS.created, new Date(o.time * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')]);
  labels.push([BUILD_LABELS.buildDate, buildDateLabel(o.time)]);
  labels.push([BUILD_LABELS.hpccVersion, o.version]);
  const help = sectionScript(stage, 'help');
  const helpText = help ? dedent(help.script) : '';
  if (helpText !== '') {
    labels.push([BUILD_LABELS.usage, HELP_PATH]);
    labels.push([BUILD_LABELS.usageHelp, HELP_PATH]);
  }
  for (const [k, f] of stage.header) labels.push([BUILD_LABELS.deffilePrefix + k, f.value]);
  labels.push([BUILD_LABELS.architecture, goArch(o.arch)]);
  labels.push([BUILD_LABELS.buildArch, goArch(o.arch)]);
  labels.push(...labelsOf(stage));
  const meta: ImageMeta = { deffile, labels };
  const env = sectionScript(stage, 'environment');
  if (env && env.script.trim() !== '') meta.environment = env.script;
  for (const name of ['runscript', 'startscript', 'test'] as const) {
    const s = sectionScript(stage, name);
    if (s && s.script.trim() !== '') meta[name] = scriptFile(s.script, s.args);
  }
  if (helpText !== '') meta.help = `${helpText}\n`;
  return meta;
}
