/**
 * Shared base of `hpcc exec|run|shell|test`: Apptainer's flag names, and
 * argv split at IMAGE so everything after it belongs to the payload
 * (`hpcc exec img.sif ls -la` runs `ls -la`; `--` also ends hpcc's flags).
 * The flags are made from the launch contract (launch-options.ts), as are
 * the lean parser's and the native front's: this is the path for what those
 * hand over (help, errors), and for every launch with HPCC_LEAN=0.
 */
import { Args, Flags, Parser } from '@oclif/core';
import { reportError } from '../errors/index.js';
import type { Action } from '../runtime/builder/types.js';
import type { FlagInput } from '@oclif/core/interfaces';
import { HpccCommand } from './base.js';
import { checkPayload, launchRequest } from './fast-launch.js';
import { LAUNCH_OPTIONS, launchOption, type LaunchOption, type ParsedLaunch } from './launch-options.js';

function oclifFlag(o: LaunchOption) {
  const common = { description: o.description, ...(o.char ? { char: o.char as 'a' } : {}) };
  if (!o.value) return Flags.boolean(common);
  return o.multiple ? Flags.string({ ...common, multiple: true, multipleNonGreedy: true }) : Flags.string(common);
}

export const launchFlags = Object.fromEntries(LAUNCH_OPTIONS.map((o) => [o.name, oclifFlag(o)])) as FlagInput;

const launchArgs = { image: Args.string({ required: true, description: 'SIF image' }) };

/** Split argv at IMAGE: [hpcc's flags + IMAGE, payload arguments]. */
export function splitAtImage(argv: readonly string[]): { head: string[]; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      // `hpcc exec -B x -- img.sif cmd`: the image follows -- (kept, so oclif takes `-odd.sif` for IMAGE too)
      return { head: argv.slice(0, i + 2), rest: argv.slice(i + 2) };
    }
    if (a.startsWith('-') && a !== '-') {
      if (launchOption(a)?.value) i++; // `--bind=x`, `-Bx`: one word
      continue;
    }
    return { head: argv.slice(0, i + 1), rest: argv.slice(i + 1) };
  }
  return { head: [...argv], rest: [] };
}

/** oclif's parse output as a ParsedLaunch (the lean parser's shape). */
function fromOclif(image: unknown, flags: Record<string, unknown>, rest: string[]): ParsedLaunch {
  const options = new Map<string, string[]>();
  for (const o of LAUNCH_OPTIONS) {
    const v = flags[o.name];
    if (v === undefined || v === false) continue;
    options.set(o.name, Array.isArray(v) ? v.map(String) : [v === true ? '' : String(v)]);
  }
  return { image: String(image), rest, options };
}

/** oclif's parse of a launch command line, as LaunchCommand parses it (errors: oclif's usage errors). */
export async function parseWithOclif(argv: readonly string[]): Promise<ParsedLaunch> {
  const { head, rest } = splitAtImage(argv);
  const { args, flags } = await Parser.parse(head, { args: launchArgs, flags: launchFlags, strict: true });
  return fromOclif(args.image, flags, rest);
}

export abstract class LaunchCommand extends HpccCommand {
  static override strict = false;
  static override flags = launchFlags;
  static override args = launchArgs;
  protected abstract readonly action: Action;
  private json = false;

  async run(): Promise<void> {
    const { head, rest } = splitAtImage(this.argv);
    const { args, flags } = await this.parse({ args: launchArgs, flags: launchFlags, strict: true }, head);
    const p = fromOclif(args.image, flags, rest);
    this.json = p.options.has('json');
    checkPayload(this.action, p);
    const { launch } = await import('../core/launch.js');
    const out = await launch(launchRequest(this.action, p));
    if (out.kind === 'explained') {
      if (this.json) this.printJson({ status: 'ok', variables: out.rows });
      else process.stdout.write(out.text);
    }
    else if (out.kind === 'plan-written') process.stderr.write(`Wrote the launch plan to ${out.path}\n`);
    else process.exitCode = out.status;
  }

  /** -j as well as --json (HpccCommand looks for --json only). */
  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (!this.json || (err as { oclif?: unknown }).oclif !== undefined) return super.catch(err);
    reportError(err, true);
    return undefined;
  }
}
