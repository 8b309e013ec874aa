/**
 * The launch contract: the one definition of `hpcc exec|run|shell|test`'s
 * actions and options. Everything that parses a launch command line derives
 * from this table:
 *  - oclif's flags and the split at IMAGE (launch-command.ts),
 *  - the lean parser that runs before oclif loads (fast-launch.ts),
 *  - the native front (native/front/front.c), through the C header that the
 *    build generates from this module (contract-header.ts, written to
 *    dist/gen/hpcc-contract.h before `make -C native`).
 * test/integration/launch-contract.test.ts parses every option through all
 * of them and fails on any difference; test/e2e/launch-parity.test.ts runs
 * every option through every launch path and compares plans and results.
 *
 * Pure data: loaded on every launch's start-up path, it imports nothing.
 */

/** The launch commands (src/commands/{exec,run,shell,test}.ts). */
export const LAUNCH_ACTIONS = Object.freeze(['exec', 'run', 'shell', 'test'] as const);
export type LaunchAction = (typeof LAUNCH_ACTIONS)[number];

export interface LaunchOption {
  /** the long name, without "--" */
  readonly name: string;
  /** the one-letter short form, without "-" */
  readonly char?: string;
  /** takes a value: `--name VALUE`, `--name=VALUE`, `-c VALUE` (never `-cVALUE`: oclif and the lean parser differ there) */
  readonly value: boolean;
  /** may be given more than once (values kept in order); a single-value option given twice is oclif's usage error */
  readonly multiple: boolean;
  readonly description: string;
  /**
   * true: the native front may serve a command line with this option from a
   * launch memo (its whole effect is in the plan, and the memo's key holds
   * the command line). Otherwise why not: the front then always runs Node.
   */
  readonly memo: true | string;
}

const opt = (name: string, o: Omit<LaunchOption, 'name' | 'multiple' | 'memo'> & Partial<Pick<LaunchOption, 'multiple' | 'memo'>>): LaunchOption =>
  Object.freeze({ name, multiple: false, memo: true, ...o });

/** Apptainer's flag names, in the order of `hpcc exec --help`'s source. */
export const LAUNCH_OPTIONS: readonly LaunchOption[] = Object.freeze([
  opt('bind', { char: 'B', value: true, multiple: true, description: 'bind SRC[:DST[:ro|rw]] (comma list; repeatable)' }),
  opt('mount', { value: true, multiple: true, description: 'bind with type=bind,source=SRC,destination=DST[,ro] (repeatable; paths may hold ":")' }),
  opt('workdir', { char: 'W', value: true, description: 'host directory for /tmp and /var/tmp (its tmp/, var_tmp/; with --contain also home/ for $HOME)' }),
  opt('home', { char: 'H', value: true, description: 'home directory SRC[:DST] (default: your $HOME)' }),
  opt('no-home', { value: false, description: 'do not mount the home directory' }),
  opt('pwd', { value: true, description: 'working directory inside the container' }),
  opt('contain', { char: 'c', value: false, description: 'minimal /dev and empty /tmp, /var/tmp and $HOME instead of the host ones' }),
  opt('containall', { char: 'C', value: false, description: '--contain, plus a PID namespace and a clean environment' }),
  opt('cleanenv', { char: 'e', value: false, description: 'do not pass the host environment' }),
  opt('env', { value: true, multiple: true, description: 'set NAME=VALUE inside the container (repeatable)' }),
  opt('env-file', { value: true, multiple: true, description: 'set the NAME=VALUE lines of a file (repeatable)' }),
  opt('writable-tmpfs', { value: false, description: 'a writable (temporary) layer over the image' }),
  opt('unsquash', {
    value: false,
    description: 'run from an extraction of the image in the cache (no FUSE needed)',
    memo: 'the root is an extraction in the cache, which a memo cannot check',
  }),
  opt('pid', { char: 'p', value: false, description: 'run in a new PID namespace' }),
  opt('nv', { value: false, description: "the host's NVIDIA driver (libraries, nvidia-smi, devices) in the container" }),
  opt('fakeroot', { value: false, description: 'be root inside (uid 0 mapped to you; no capabilities, no other ids); $HOME is /root' }),
  opt('sharens', {
    value: false,
    description: "share one user namespace with this user's other launches of the image on the node (the warm mount's; Open MPI's CMA between ranks); fails if it cannot",
  }),
  opt('rocm', { value: false, description: "the host's AMD ROCm driver (libraries, rocm-smi, /dev/kfd and /dev/dri) in the container" }),
  opt('no-rdma', { value: false, description: "do not bind the host's RDMA devices and configuration (/dev/infiniband, /etc/libibverbs.d, /etc/rdma, /sys/class/infiniband)" }),
  opt('plan-out', {
    value: true,
    description: 'write the launch plan to FILE instead of running it (run it with hpcc-launch --plan FILE)',
    memo: 'it writes a plan file instead of launching',
  }),
  opt('explain-env', { value: false, description: 'print where each container variable comes from, then exit', memo: 'it prints instead of launching' }),
  opt('timings', {
    value: false,
    description: "print each phase's wall time on stderr (plan, helper start, image open, mount, overlay, exec)",
    memo: "it times hpcc's own phases, the plan's making included, which a memo launch skips",
  }),
  opt('json', { char: 'j', value: false, description: 'print hpcc errors as JSON' }),
]);

/** The option a command-line word names (`--name`, `-c`), or undefined. `=VALUE` must already be cut off. */
export function launchOption(word: string): LaunchOption | undefined {
  if (word.startsWith('--')) return BY_LONG.get(word.slice(2));
  if (word.length === 2 && word[0] === '-') return BY_CHAR.get(word[1]!);
  return undefined;
}

/**
 * Whether oclif takes this word for an option, so never for the value of the
 * option before it (`--pwd -j`, `--env=--json`: "expects a value"): `--NAME`
 * of an option, or `-X...` where X is an option's short form. The lean parser
 * and the native front hand such a command line to oclif.
 */
export function namesOption(word: string): boolean {
  if (word.startsWith('--')) return BY_LONG.has(word.slice(2));
  return word.length >= 2 && word[0] === '-' && BY_CHAR.has(word[1]!);
}

const BY_LONG = new Map(LAUNCH_OPTIONS.map((o) => [o.name, o]));
const BY_CHAR = new Map(LAUNCH_OPTIONS.filter((o) => o.char !== undefined).map((o) => [o.char!, o]));

/** The first option given that a launch memo may not serve, or undefined. */
export function unmemoisable(p: ParsedLaunch): LaunchOption | undefined {
  return LAUNCH_OPTIONS.find((o) => o.memo !== true && p.options.has(o.name));
}

export function isLaunchAction(s: string | undefined): s is LaunchAction {
  return (LAUNCH_ACTIONS as readonly string[]).includes(s ?? '');
}

/**
 * A launch command line as parsed (by oclif or the lean parser): IMAGE, the
 * payload's arguments, and each option given, by long name, with its values
 * in order (a boolean option's value is "").
 */
export interface ParsedLaunch {
  image: string;
  rest: string[];
  options: Map<string, string[]>;
}
