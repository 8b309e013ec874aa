/**
 * Base class for hpcc's oclif commands: one place renders errors.
 * HpccError → "Error (CODE): message / Try this: … / Caused by: …" on stderr
 * (or {status:"error",error} with --json) and the error's own exit code.
 * oclif's own parse errors keep oclif's rendering and exit code 2.
 */
import { Command } from '@oclif/core';
import { HpccError, renderError, renderErrorJson } from '../errors/index.js';

export abstract class HpccCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    const hpccErr = err instanceof HpccError ? err : undefined;
    if (!hpccErr) {
      // oclif parse/usage errors carry an oclif exit code; anything else is a bug.
      if ((err as { oclif?: unknown }).oclif !== undefined) throw err;
    }
    const wantJson = this.argv.includes('--json');
    if (wantJson) process.stdout.write(renderErrorJson(err) + '\n');
    else process.stderr.write(renderError(err) + '\n');
    process.exitCode = hpccErr ? hpccErr.exitCode : 70;
    return undefined;
  }

  /** Print a value as pretty JSON. */
  protected printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }
}
