/**
 * %post / %test inside a rootfs directory: the script that runs as root of
 * the build namespace (a fresh user, mount and PID namespace), and the
 * single-id mode's report of the owners it could not keep.
 *
 * The rootfs comes from an image, so it is hostile: no mount or file
 * operation outside the chroot follows a symlink of the image. /proc, /sys,
 * /dev and /etc must be real directories (else the step is refused);
 * a symlinked /etc/resolv.conf or /etc/hosts is moved aside for the step
 * and put back; files are created with noclobber (O_EXCL). After the step
 * every process left in the PID namespace (daemons a maintainer script
 * started) is killed before the clean-up runs, so nothing races it. When
 * hpcc itself dies, even by SIGKILL, a watcher on fd 3 (ns-spawn.ts) kills
 * the step's processes, so nothing of the build keeps running.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** The marker file name prefix of the script copied into the root (removed after). */
export const SCRIPT_PREFIX = '.hpcc-build-script.';
/** apt's sandbox workaround in single-id mode (written before the step, removed after). */
export const APT_SANDBOX_CONF = 'etc/apt/apt.conf.d/00hpcc-unprivileged-sandbox';
export const APT_SANDBOX_LINE = 'APT::Sandbox::User "root";';
export const CLEAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Positional arguments: ROOTFS SCRIPT_SRC SCRIPT_NAME APTFIX(0|1), then the
 * command to run (env -i ... chroot ROOTFS SHELL FLAGS /SCRIPT_NAME ARGS).
 * Exit status: the command's, or 125 when the set-up is refused or fails.
 */
export const RUN_IN_ROOT_SCRIPT = `
R=$1 SRC=$2 NAME=$3 APTFIX=$4; shift 4
# fd 3 reaches end-of-file when hpcc is gone (even killed with SIGKILL): then
# kill every process of this PID namespace; the clean-up below still runs
( read _ <&3; kill -KILL -1 ) &
exec 3>&-
die() { echo "hpcc: $*" >&2; exit 125; }
MADE= CREATED= SAVED= APTCONF=
for d in proc sys dev etc; do
  if [ -L "$R/$d" ] || { [ -e "$R/$d" ] && [ ! -d "$R/$d" ]; }; then
    die "the image's /$d is not a directory (a symlink or a file); refusing to mount over it"
  fi
  if [ ! -d "$R/$d" ]; then mkdir -m 755 "$R/$d" || die "cannot create /$d in the image"; MADE="$MADE $d"; fi
done
mount -t proc -o nosuid,nodev,noexec proc "$R/proc" || die "cannot mount /proc"
mount --rbind /sys "$R/sys" || die "cannot bind /sys"
mount --rbind /dev "$R/dev" || die "cannot bind /dev"
for f in resolv.conf hosts; do
  [ -e "/etc/$f" ] || continue
  t="$R/etc/$f"
  if [ -L "$t" ]; then
    s="$R/etc/.$f.hpcc-saved"
    if [ -e "$s" ] || [ -L "$s" ]; then die "cannot move the image's /etc/$f symlink aside: /etc/.$f.hpcc-saved exists"; fi
    mv "$t" "$s" || die "cannot move the image's /etc/$f symlink aside"
    SAVED="$SAVED $f"
  fi
  if [ ! -e "$t" ]; then (set -C; : > "$t") || die "cannot create /etc/$f in the image"; CREATED="$CREATED $f"; fi
  if [ -f "$t" ]; then mount --bind "/etc/$f" "$t" || die "cannot bind /etc/$f"; fi
done
if [ "$APTFIX" = 1 ] && [ ! -L "$R/etc/apt" ] && [ ! -L "$R/etc/apt/apt.conf.d" ] && [ -d "$R/etc/apt/apt.conf.d" ]; then
  APTCONF="$R/${APT_SANDBOX_CONF}"
  (set -C; printf '%s\\n' '${APT_SANDBOX_LINE}' > "$APTCONF") || die "cannot write /${APT_SANDBOX_CONF}"
  echo "hpcc: single-id build: apt runs without its _apt sandbox user for this step (/${APT_SANDBOX_CONF})" >&2
fi
(set -C; cat "$SRC" > "$R/$NAME") || die "cannot copy the script into the image"
"$@"
rc=$?
kill -KILL -1 2>/dev/null
rm -f "$R/$NAME"
[ -z "$APTCONF" ] || rm -f "$APTCONF"
if [ -L "$R/etc" ]; then
  echo "hpcc: the image's /etc became a symlink during the step; its bind mount points were left" >&2
else
  for f in $CREATED $SAVED; do umount "$R/etc/$f" 2>/dev/null; done
  for f in $CREATED; do [ -L "$R/etc/$f" ] || rm -f "$R/etc/$f"; done
  for f in $SAVED; do [ -L "$R/etc/$f" ] || rm -f "$R/etc/$f"; mv "$R/etc/.$f.hpcc-saved" "$R/etc/$f"; done
fi
for d in $MADE; do umount -l "$R/$d" 2>/dev/null; [ -L "$R/$d" ] || rmdir "$R/$d" 2>/dev/null; done
exit $rc
`;

/** An environment variable name the step may get. */
export function validEnvName(k: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k);
}

/** Output lines that show a change of owner or of ids refused for want of mapped ids. */
export function isCollapseLine(line: string): boolean {
  return /Invalid argument/.test(line) && /chown|ownership|owner|setgroups|setgid|setuid|setegid|seteuid|setresuid|setresgid|cannot set groups/i.test(line);
}

/** Debian files owned by someone other than root:root on a real root (shown when present). */
const DEBIAN_OWNERS: Array<[string, string]> = [
  ['etc/shadow', 'root:shadow'],
  ['etc/gshadow', 'root:shadow'],
  ['var/lib/apt/lists/partial', '_apt:root'],
  ['var/cache/apt/archives/partial', '_apt:root'],
  ['usr/bin/chage', 'root:shadow'],
  ['var/mail', 'root:mail'],
  ['var/local', 'root:staff'],
  ['var/log/apt/term.log', 'root:adm'],
];

async function lexists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Users of the image's /etc/passwd (never following a symlink of the image). */
export async function imageUsers(rootfs: string): Promise<Array<{ name: string; uid: number; home: string }>> {
  const p = path.join(rootfs, 'etc', 'passwd');
  try {
    const [etc, st] = await Promise.all([fs.lstat(path.join(rootfs, 'etc')), fs.lstat(p)]);
    if (!etc.isDirectory() || !st.isFile() || st.size > 4 * 1024 * 1024) return [];
    const out = [];
    for (const line of (await fs.readFile(p, 'utf8')).split('\n')) {
      const f = line.split(':');
      if (f.length < 7 || !/^\d+$/.test(f[2]!)) continue;
      out.push({ name: f[0]!, uid: Number(f[2]), home: f[5]! });
    }
    return out;
  } catch {
    return [];
  }
}

/** Is rel (no '..') a real directory inside rootfs, with no symlink on the way? */
async function realDirInside(rootfs: string, rel: string): Promise<boolean> {
  let cur = rootfs;
  for (const c of rel.split('/').filter((x) => x !== '' && x !== '.')) {
    if (c === '..') return false;
    cur = path.join(cur, c);
    try {
      if (!(await fs.lstat(cur)).isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return cur !== rootfs;
}

/**
 * What a single-id step could not keep: the homes of the image's users (all
 * root's now), Debian's non-root files that exist, the refused chown/setuid
 * calls seen in the output, apt's sandbox. One entry per finding.
 */
export async function collapsedOwners(rootfs: string, refused: { count: number; examples: string[] }, aptFix: boolean): Promise<string[]> {
  const out: string[] = [];
  const homes: string[] = [];
  for (const u of await imageUsers(rootfs)) {
    if (u.uid === 0 || !u.home.startsWith('/') || u.home === '/' || u.home === '/nonexistent') continue;
    if (await realDirInside(rootfs, u.home)) homes.push(`${u.home} of ${u.name} (uid ${u.uid})`);
  }
  if (homes.length > 0) out.push(`home directories owned by root instead of their users: ${homes.slice(0, 6).join(', ')}${homes.length > 6 ? ` and ${homes.length - 6} more` : ''}`);
  const deb: string[] = [];
  for (const [p, want] of DEBIAN_OWNERS) if (await lexists(path.join(rootfs, p))) deb.push(`/${p} (${want} on Debian)`);
  if (deb.length > 0) out.push(`files root:root that Debian gives other owners: ${deb.join(', ')}`);
  if (refused.count > 0) {
    out.push(`${refused.count} change(s) of owner or of ids refused with EINVAL in the step's output, e.g. ${refused.examples.map((e) => JSON.stringify(e.trim())).join('; ')}`);
  }
  if (aptFix) out.push('apt ran as root instead of its sandbox user _apt');
  return out;
}

/** The warning text for single-id mode, from collapsedOwners' findings. */
export function collapseWarning(label: string, reason: string, findings: string[]): string {
  const head = `${label}: single-id build (${reason}): only your own id is mapped, so every file of the image is owned by root (0:0) and changes of owner are lost`;
  const tailText = findings.length > 0 ? `. Collapsed: ${findings.join('; ')}` : '';
  return `${head}${tailText}. Give your user /etc/subuid and /etc/subgid ranges (and install uidmap) to keep owners.`;
}
