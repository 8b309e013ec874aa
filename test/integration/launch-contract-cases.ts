/**
 * Launch command lines made from the launch contract's table (src/cli/launch-options.ts),
 * so that a new option is covered without a new test: every option in every
 * form the parsers accept or must hand to oclif. Used by launch-contract.test.ts
 * (parsing) and test/e2e/launch-parity.test.ts (launching, with real values).
 */
import { LAUNCH_OPTIONS, type LaunchOption } from '../../src/cli/launch-options.js';

export interface ArgvCase {
  argv: string[];
  /** the lean parser (and so the native front) takes it; otherwise oclif parses or reports it */
  ok: boolean;
  /** oclif reports it as a usage error */
  oclifRefuses?: boolean;
  /** also run for each action */
  all?: boolean;
}

/** Representative values for parsing; the e2e test passes real paths. */
const SAMPLE: Record<string, [string, string]> = {
  bind: ['/a:/b', '/c:/d:ro,/e'],
  mount: ['type=bind,source=/a,destination=/b', 'type=bind,source=/c:x,destination=/d,ro'],
  workdir: ['/scratch', '/w'],
  home: ['/h', '/h2:/home/x'],
  pwd: ['/p', '/q r'],
  env: ['X=1', 'Y=a=b c'],
  'env-file': ['/f.env', '/g.env'],
  'plan-out': ['/o.plan', '/p.plan'],
};

export type Values = (o: LaunchOption, n: 0 | 1) => string;
export const sampleValue: Values = (o, n) => SAMPLE[o.name]?.[n] ?? (n ? 'v-2' : 'v1');

/** The words that give option o once: every form (long, --name=V, short). */
function forms(o: LaunchOption, v: string): string[][] {
  const out = o.value ? [[`--${o.name}`, v], [`--${o.name}=${v}`]] : [[`--${o.name}`]];
  if (o.char) out.push(o.value ? [`-${o.char}`, v] : [`-${o.char}`]);
  return out;
}

export function argvCases(val: Values = sampleValue, image = 'img.sif', payload: string[] = ['cmd', '-B', 'x', '--json']): ArgvCase[] {
  const cases: ArgvCase[] = [];
  for (const o of LAUNCH_OPTIONS) {
    const [v1, v2] = [val(o, 0), val(o, 1)];
    for (const f of forms(o, v1)) {
      cases.push({ argv: [...f, image, ...payload], ok: true });
      // after -j (or -e for --json itself), and with `--` before an image that looks like an option
      cases.push({ argv: [o.name === 'json' ? '-e' : '-j', ...f, image, ...payload], ok: true });
      cases.push({ argv: [...f, '--', `-${image}`, ...payload], ok: true });
      // in the payload: not hpcc's
      cases.push({ argv: [image, ...f, ...payload], ok: true });
    }
    // repeated: values kept in order, a flag given twice given, a single value oclif's "can only be specified once"
    const again = o.value ? [`--${o.name}=${v2}`] : forms(o, v1).at(-1)!;
    const once = !o.multiple && o.value;
    cases.push({ argv: [...forms(o, v1)[0]!, ...again, image, ...payload], ok: !once, oclifRefuses: once });
    if (o.value) {
      cases.push({ argv: [`--${o.name}`], ok: false, oclifRefuses: true }); // no value, no image
      cases.push({ argv: [image, `--${o.name}`], ok: true }); // in the payload
      // a value that names an option: oclif's "expects a value"
      cases.push({ argv: [`--${o.name}`, '-j', image, ...payload], ok: false, oclifRefuses: true });
      cases.push({ argv: [`--${o.name}=--json`, image, ...payload], ok: false, oclifRefuses: true });
      // a value that only looks like one
      cases.push({ argv: [`--${o.name}`, '-x', image], ok: true });
      cases.push({ argv: [`--${o.name}=`, image, 'a'], ok: true });
      if (o.char) cases.push({ argv: [`-${o.char}${v1}`, image], ok: false }); // attached value: oclif's
    } else {
      cases.push({ argv: [`--${o.name}=yes`, image, ...payload], ok: false, oclifRefuses: true });
    }
  }
  // everything at once, each option in its long form
  const every = LAUNCH_OPTIONS.flatMap((o) => forms(o, val(o, 0))[0]!);
  cases.push({ argv: [...every, image, ...payload], ok: true, all: true });
  cases.push({ argv: [...every, '--', image, ...payload], ok: true, all: true });
  // the regression of the oclif path: -W's value was taken for IMAGE
  cases.push({ argv: ['-j', '-W', '/scratch', image, 'true'], ok: true, all: true });
  cases.push({ argv: ['--workdir', '/scratch', '--mount', 'type=bind,source=/a,destination=/b', image, 'true'], ok: true, all: true });
  // not launch options at all
  for (const argv of [['--help'], ['-h', image], ['--nope', image], ['-ce', image], ['--', ''].slice(0, 1), []]) cases.push({ argv, ok: false });
  return cases;
}
