import { LaunchCommand } from '../cli/launch-command.js';

export default class Exec extends LaunchCommand {
  static override summary = 'Run a command inside a SIF image, as you, with user and mount namespaces only.';
  static override description =
    "Everything after IMAGE is the command and its arguments. The image's /.singularity.d/env/*.sh are sourced " +
    'first, as in Apptainer.' +
    '\n\n' +
    "The command's exit status is hpcc's exit status (128+N when killed by signal N); hpcc's own failures use codes " +
    '2, 64-111.';
  static override usage = 'exec [FLAGS] IMAGE COMMAND [ARGS...]';
  static override examples = [
    '<%= config.bin %> exec image.sif cat /etc/os-release',
    '<%= config.bin %> exec -B /data:/mnt:ro --env OMP_NUM_THREADS=4 image.sif ./solver',
    { description: 'Write the launch plan only; run it later with: hpcc-launch --plan rank.plan', command: '<%= config.bin %> exec --plan-out rank.plan image.sif ./solver' },
  ];
  protected readonly action = 'exec' as const;
}
