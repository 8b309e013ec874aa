import { LaunchCommand } from '../cli/launch-command.js';

export default class Test extends LaunchCommand {
  static override summary = "Run a SIF image's test script (/.singularity.d/test, the definition's %test).";
  static override usage = 'test [FLAGS] IMAGE [ARGS...]';
  static override examples = ['<%= config.bin %> test image.sif'];
  protected readonly action = 'test' as const;
}
