/**
 * How exec/run/shell/test become the payload's argv and environment.
 *
 * Like Apptainer's /.singularity.d/actions, the image's env scripts are
 * sourced by the image's own /bin/sh, in lexical (byte) order, before the
 * payload is exec'd. hpcc passes a small POSIX sh program as argv:
 *
 *   /bin/sh -c '<wrapper>' hpcc-<action> CMD ARGS...
 *
 * The wrapper sources the scripts, applies the injected variables (carried
 * in the environment as __HPCC_SET_<NAME>), PREPEND_PATH/APPEND_PATH
 * (__HPCC_PREPEND_PATH, __HPCC_APPEND_PATH), restores host variables still
 * unset (__HPCC_HOST_<NAME>), removes its own variables, then `exec "$@"`.
 * The plan records where CMD starts (commandIndex), so `hpcc-launch --plan
 * FILE OTHER ARGS...` swaps the command and keeps the wrapper.
 * Only variable NAMES appear in the program text, never values. An image
 * without /bin/sh gets the payload exec'd directly with the environment
 * computed here (no env scripts can run there anyway).
 *
 * Direct exec also when the wrapper could change nothing (needsShell):
 * every env script the wrapper would source is known (its text is in the
 * image facts) to be only blank lines and comments, as `hpcc build` writes
 * them, the image's /bin/sh is not bash, and no host variable to restore is
 * one the shell sets itself. The plan then
 * carries the environment the wrapper would have made (envAsWrapper: the
 * same steps, the same string operations) and argv is the payload itself
 * (commandIndex 0), saving the start of the image's /bin/sh. The helper's
 * exec follows the shell's rules (PATH search in the plan's PATH, a script
 * without #! runs under /bin/sh, 127 when not found, 126 when not
 * executable), so a launch differs only in the message of a failed exec.
 */
import { UsageError } from '../../errors/index.js';
import { finalEnvWithoutScripts, type EnvPlan } from './env.js';
import type { MountOp } from '../plan.js';
import type { Action, ImageFacts } from './types.js';

export const RUNSCRIPT = '/.singularity.d/runscript';
export const TESTSCRIPT = '/.singularity.d/test';
export const ENV_DIR = '/.singularity.d/env';
export const LIBS_DIR = '/.singularity.d/libs';

export interface ActionResult {
  argv: string[];
  env: string[];
  /** the payload starts through the sh wrapper that sources the image's env scripts */
  sourcesScripts: boolean;
  /** index in argv of the payload's first word (LaunchPlan.commandIndex): 4 after the wrapper, 0 on direct exec */
  commandIndex: number;
}

/** LD_LIBRARY_PATH with the libs directory appended, unless an env script already put it there (Apptainer's 99-base.sh does). */
function withLibsDir(cur: string | undefined): string {
  if (cur === undefined || cur === '') return LIBS_DIR;
  return cur.split(':').includes(LIBS_DIR) ? cur : `${cur}:${LIBS_DIR}`;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Env script names in the order Apptainer sources them (byte order of the names, *.sh only). */
export function orderedEnvScripts(names: string[]): string[] {
  return names.filter((n) => n.endsWith('.sh') && !n.includes('/')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Whether sourcing this env script can have no effect: only blank lines
 * (spaces and tabs) and comment lines. A carriage return is not blank to sh
 * (it is a command named "\r"), so CRLF scripts keep the wrapper.
 */
export function isInertScript(text: string): boolean {
  for (const line of text.split('\n')) {
    let i = 0;
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i < line.length && line[i] !== '#') return false;
  }
  return true;
}

/**
 * Variables a POSIX sh (dash, busybox ash) sets itself at start-up. The
 * wrapper does not restore a host value of these (the shell's own value is
 * already set, and dash exports its IFS), so a host environment holding one
 * keeps the wrapper.
 */
const SHELL_SET = new Set(['IFS', 'PPID', 'OPTIND', 'PS2', 'PS3', 'PS4', 'LINENO', 'ENV', 'HOSTNAME', 'SHLVL']);

/**
 * Whether the payload must start through the sh wrapper: an env script not
 * known to be inert (its text missing from the facts, or a line that is no
 * comment), a host variable the shell would shadow, or an image /bin/sh
 * that is bash (bash exports SHLVL and sets many variables of its own).
 */
export function needsShell(image: ImageFacts, e: EnvPlan): boolean {
  const sh = image.lookup('/bin/sh');
  if (!sh || /bash/.test(sh.real.slice(sh.real.lastIndexOf('/') + 1))) return true;
  if (e.restore.some((v) => SHELL_SET.has(v.name))) return true;
  return orderedEnvScripts(image.envScripts).some((s) => {
    const text = image.envScriptText?.[s];
    return text === undefined || !isInertScript(text);
  });
}

/**
 * The environment the wrapper makes when its scripts do nothing: base, then
 * the injected variables (last wins), PREPEND_PATH / APPEND_PATH joined the
 * way the wrapper joins them (an empty PATH adds no ':'), the image's libs
 * directory after LD_LIBRARY_PATH, then host variables still unset.
 */
export function envAsWrapper(e: EnvPlan, withLibs: boolean): string[] {
  const m = new Map<string, string>();
  for (const v of e.base) m.set(v.name, v.value);
  for (const v of e.inject) m.set(v.name, v.value);
  if (e.prependPath) {
    const cur = m.get('PATH') ?? '';
    m.set('PATH', `${e.prependPath.value}${cur !== '' ? `:${cur}` : ''}`);
  }
  if (e.appendPath) {
    const cur = m.get('PATH') ?? '';
    m.set('PATH', `${cur !== '' ? `${cur}:` : ''}${e.appendPath.value}`);
  }
  if (withLibs) {
    m.set('LD_LIBRARY_PATH', withLibsDir(m.get('LD_LIBRARY_PATH')));
  }
  for (const v of e.restore) if (!m.has(v.name)) m.set(v.name, v.value);
  return [...m].map(([k, v]) => `${k}=${v}`);
}

function isFile(image: ImageFacts, p: string): boolean {
  return image.lookup(p)?.kind === 'file';
}

/** The program the action runs, before the wrapper: [argv0, ...args]. */
export function payloadArgv(action: Action, args: string[], image: ImageFacts, shell: string): string[] {
  switch (action) {
    case 'exec':
      if (args.length === 0 || args[0] === '') {
        throw new UsageError('exec needs a command to run', { hint: 'Write: hpcc exec IMAGE.sif COMMAND [ARGS...]' });
      }
      return args;
    case 'run':
      if (isFile(image, RUNSCRIPT)) return [RUNSCRIPT, ...args];
      if (image.lookup('/singularity')?.kind === 'file') return ['/singularity', ...args];
      throw new UsageError('the image has no runscript (/.singularity.d/runscript or /singularity)', {
        hint: 'Use `hpcc exec IMAGE COMMAND` to run a command, or rebuild the image with a %runscript.',
      });
    case 'test':
      if (isFile(image, TESTSCRIPT)) return ['/bin/sh', TESTSCRIPT, ...args];
      return ['/bin/sh', '-c', 'echo "No test script found in the image, exiting" >&2'];
    case 'shell':
      return [shell, ...args];
    default:
      throw new UsageError(`unknown action ${String(action)}`);
  }
}

/** The sh wrapper program (names only; values travel in the environment). */
export function wrapperScript(scripts: string[], e: EnvPlan, withLibs: boolean): string {
  const lines: string[] = [];
  for (const s of scripts) lines.push(`. ${shQuote(`${ENV_DIR}/${s}`)}`);
  const setNames = [...new Set(e.inject.map((v) => v.name))];
  if (setNames.length > 0) {
    lines.push(`for __hpcc_n in ${setNames.join(' ')}; do eval "export $__hpcc_n=\\"\\$__HPCC_SET_$__hpcc_n\\"; unset __HPCC_SET_$__hpcc_n"; done`);
  }
  if (e.prependPath) lines.push('PATH="$__HPCC_PREPEND_PATH${PATH:+:$PATH}"; export PATH; unset __HPCC_PREPEND_PATH');
  if (e.appendPath) lines.push('PATH="${PATH:+$PATH:}$__HPCC_APPEND_PATH"; export PATH; unset __HPCC_APPEND_PATH');
  if (withLibs) {
    lines.push(
      `case ":\${LD_LIBRARY_PATH-}:" in *:${LIBS_DIR}:*) ;; *) LD_LIBRARY_PATH="\${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}${LIBS_DIR}";; esac; export LD_LIBRARY_PATH`,
    );
  }
  if (e.restore.length > 0) {
    const names = e.restore.map((v) => v.name).join(' ');
    lines.push(
      `for __hpcc_n in ${names}; do eval "[ -n \\"\\\${$__hpcc_n+x}\\" ] || export $__hpcc_n=\\"\\$__HPCC_HOST_$__hpcc_n\\"; unset __HPCC_HOST_$__hpcc_n"; done`,
    );
  }
  lines.push('unset __hpcc_n');
  lines.push('exec "$@"');
  return lines.join('\n');
}

/**
 * Whether LIBS_DIR goes on LD_LIBRARY_PATH: the image has it, or the plan binds
 * host libraries into it (--nv/--rocm) even though the image has no such directory.
 */
export function libsOnPath(image: ImageFacts, mounts: readonly MountOp[]): boolean {
  return image.lookup(LIBS_DIR)?.kind === 'dir' || mounts.some((o) => o.op === 'bind' && o.dst.startsWith(`${LIBS_DIR}/`));
}

/**
 * argv and env for the helper. `shell` is the interactive shell for `hpcc shell`;
 * `withLibs`: LIBS_DIR goes on LD_LIBRARY_PATH (libsOnPath).
 */
export function buildAction(action: Action, args: string[], image: ImageFacts, e: EnvPlan, shell: string, withLibs: boolean): ActionResult {
  const payload = payloadArgv(action, args, image, shell);
  const hasSh = isFile(image, '/bin/sh');
  if (!hasSh) {
    const env = finalEnvWithoutScripts(e);
    if (withLibs) {
      const cur = env.get('LD_LIBRARY_PATH');
      env.set('LD_LIBRARY_PATH', { name: 'LD_LIBRARY_PATH', value: withLibsDir(cur?.value), source: 'hpcc' });
    }
    return { argv: payload, env: [...env.values()].map((v) => `${v.name}=${v.value}`), sourcesScripts: false, commandIndex: 0 };
  }
  if (!needsShell(image, e)) return { argv: payload, env: envAsWrapper(e, withLibs), sourcesScripts: false, commandIndex: 0 };
  const env: string[] = e.base.map((v) => `${v.name}=${v.value}`);
  const last = new Map<string, string>();
  for (const v of e.inject) last.set(v.name, v.value);
  for (const [k, v] of last) env.push(`__HPCC_SET_${k}=${v}`);
  if (e.prependPath) env.push(`__HPCC_PREPEND_PATH=${e.prependPath.value}`);
  if (e.appendPath) env.push(`__HPCC_APPEND_PATH=${e.appendPath.value}`);
  for (const v of e.restore) env.push(`__HPCC_HOST_${v.name}=${v.value}`);
  const script = wrapperScript(orderedEnvScripts(image.envScripts), e, withLibs);
  const prefix = ['/bin/sh', '-c', script, `hpcc-${action}`];
  return { argv: [...prefix, ...payload], env, sourcesScripts: true, commandIndex: prefix.length };
}
