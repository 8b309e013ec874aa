/**
 * Base class for hpcc's oclif commands: one place renders errors.
 * HpccError → "Error (CODE): message / Try this: … / Caused by: …" on stderr
 * (or {status:"error",error} with --json) and the error's own exit code.
 * oclif's own parse errors keep oclif's rendering and exit code 2.
 */
import { Command } from '@oclif/core';
import type { Input, ParserOutput } from '@oclif/core/interfaces';

// Same shapes as oclif's (not exported from its public interfaces).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type FlagOutput = { [name: string]: any };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ArgOutput = { [name: string]: any };
import { HpccError, UsageError, reportError } from '../errors/index.js';

export abstract class HpccCommand extends Command {
  /**
   * oclif's parser reports some invalid values (e.g. Args.integer on "abc")
   * as plain Errors; they are usage errors, not bugs.
   */
  protected override async parse<F extends FlagOutput, B extends FlagOutput, A extends ArgOutput>(
    options?: Input<F, B, A>,
    argv?: string[],
  ): Promise<ParserOutput<F, B, A>> {
    try {
      return await super.parse(options, argv);
    } catch (e) {
      if (e instanceof HpccError || (e as { oclif?: unknown }).oclif !== undefined || !(e instanceof Error)) throw e;
      throw new UsageError(e.message, { hint: `See: ${this.config.bin} ${this.id ?? ''} --help`.replace(/ +--help/, ' --help') });
    }
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    // oclif parse/usage errors carry an oclif exit code: oclif reports them; anything else non-hpcc is a bug.
    if (!(err instanceof HpccError) && (err as { oclif?: unknown }).oclif !== undefined) throw err;
    reportError(err, this.argv.includes('--json'));
    return undefined;
  }

  /** Print a value as pretty JSON. */
  protected printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }
}
