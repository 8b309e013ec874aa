/**
 * Load a definition file for `hpcc build OUT.sif FILE.def`: structure
 * (parse.ts), build arguments and `{{ name }}` substitution (args.ts), then
 * the checks that need the whole file: each stage's agent and `From`, and
 * `%files from STAGE` naming an earlier stage. Everything here is pure: no
 * image is fetched and nothing runs.
 */
import * as fs from 'node:fs/promises';
import { addContext } from '../../errors/index.js';
import { parseReference, type ImageRef } from '../../oci/reference.js';
import { argumentDefaults, substitute } from './args.js';
import { defError, fileSections, parseStructure, type Definition, type HeaderField, type Stage, type Where } from './parse.js';

export * from './parse.js';
export { readBuildArgs } from './args.js';

/** Agents hpcc builds from. */
export const AGENTS = ['docker', 'localimage', 'oci', 'oci-archive', 'docker-archive', 'scratch', 'debootstrap'] as const;
export type Agent = (typeof AGENTS)[number];
/** Agents Apptainer knows that hpcc does not build from. */
export const UNSUPPORTED_AGENTS = ['library', 'shub', 'oras', 'yum', 'zypper', 'busybox', 'arch', 'docker-daemon', 'buildkit'];

export interface LoadedDefinition extends Definition {
  /** build arguments given but used nowhere */
  unusedArgs: string[];
}

export interface StageSource {
  agent: Agent;
  /** the image reference for docker/oci/oci-archive/docker-archive */
  ref?: ImageRef;
  /** localimage: path of a SIF or sandbox directory */
  path?: string;
  from?: HeaderField;
}

/** Read and parse FILE with the given build arguments (a missing file is an I/O error). */
export async function loadDefinition(file: string, buildArgs: Map<string, string> = new Map()): Promise<LoadedDefinition> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw addContext(`read definition file ${file}`, e);
  }
  return parseDefinition(file, text, buildArgs);
}

export function parseDefinition(file: string, text: string, buildArgs: Map<string, string> = new Map()): LoadedDefinition {
  const first = parseStructure(file, text.replace(/\r\n/g, '\n'));
  const values = argumentDefaults(first);
  for (const [k, v] of buildArgs) values.set(k, v);
  const { text: subst, used } = substitute(first, values);
  const def = parseStructure(file, subst);
  checkStages(def);
  return { ...def, unusedArgs: [...buildArgs.keys()].filter((k) => !used.has(k)) };
}

function whereOf(def: Definition, line: number, column: number): Where {
  return { file: def.file, line, column, text: def.text.split('\n')[line - 1] ?? '' };
}

/** The agent and base image of a stage, checked (errors name the Bootstrap or From line). */
export function stageSource(def: Definition, stage: Stage): StageSource {
  const boot = stage.header.get('bootstrap')!;
  const agent = boot.value.toLowerCase();
  const at = (f: HeaderField) => whereOf(def, f.line, f.column);
  if (UNSUPPORTED_AGENTS.includes(agent)) {
    throw defError('HPCC_E_DEF_AGENT', at(boot), `Bootstrap agent "${boot.value}" is not supported by hpcc`, `hpcc builds from ${AGENTS.join(', ')}; pull the base image into a SIF with Apptainer and use "Bootstrap: localimage".`);
  }
  if (!(AGENTS as readonly string[]).includes(agent)) {
    throw defError('HPCC_E_DEF_AGENT', at(boot), `unknown Bootstrap agent "${boot.value}"`, `Use one of ${AGENTS.join(', ')}.`);
  }
  const a = agent as Agent;
  const from = stage.header.get('from');
  if (a === 'scratch') return { agent: a };
  if (a === 'debootstrap') {
    if (!stage.header.get('osversion')) {
      throw defError('HPCC_E_DEF_HEADER', at(boot), 'Bootstrap: debootstrap needs "OSVersion:" (e.g. bookworm)', 'Add "OSVersion: bookworm" (and optionally "MirrorURL:" and "Include:").');
    }
    return { agent: a };
  }
  if (!from) {
    throw defError('HPCC_E_DEF_FROM', at(boot), `Bootstrap: ${agent} needs a "From:" header`, agent === 'localimage' ? 'Add "From: PATH" naming a SIF file or a sandbox directory.' : 'Add "From: IMAGE", e.g. "From: debian:12".');
  }
  if (a === 'localimage') return { agent: a, path: from.value, from };
  const text = a === 'docker' ? `docker://${from.value.replace(/^docker:\/\//, '')}` : `${a}:${from.value.replace(new RegExp(`^${a}:`), '')}`;
  try {
    return { agent: a, ref: parseReference(text), from };
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^invalid image reference "[^"]*": /, '') : String(e);
    throw defError('HPCC_E_DEF_FROM', at(from), `bad From "${from.value}": ${why}`, a === 'docker' ? 'Use [registry/]name[:tag|@sha256:digest], e.g. "From: debian:12".' : `Use a path, optionally with :tag (${a}).`);
  }
}

function checkStages(def: Definition): void {
  const seen = new Set<string>();
  for (const st of def.stages) {
    stageSource(def, st);
    for (const f of fileSections(st)) {
      if (f.from === undefined) continue;
      if (!seen.has(f.from)) {
        const known = [...seen];
        throw defError('HPCC_E_DEF_STAGE', whereOf(def, f.line, f.argsColumn), `"%files from ${f.from}": no earlier stage is named "${f.from}"`, known.length > 0 ? `Earlier stages: ${known.join(', ')}.` : 'Name an earlier stage with "Stage: NAME" in its header.');
      }
    }
    if (st.name !== undefined) seen.add(st.name);
  }
}
