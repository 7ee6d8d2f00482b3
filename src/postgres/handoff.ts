// archive_command and restore_command as thin shell handoffs to the instance agent (pure).
//
// Starting Node for every WAL file costs ~370 ms (archive) / ~270 ms (restore) per segment; a shell
// that waits for a file the agent writes costs a few milliseconds. The agent does the real work
// (upload ahead in parallel, prefetch) and answers through marker files:
//
//   archive: the agent writes <markerDir>/<f> once <f> is durably in the store; the command
//            removes it and exits 0 (exit 1 after the timeout: PostgreSQL keeps the file and retries).
//   restore: the command creates <spool>/want/<f>; the agent answers with got/<f> (moved to %p,
//            exit 0), missing/<f> (exit 1: not archived, recovery ends there) or failed/<f>
//            (printed, exit 127). PostgreSQL aborts recovery when restore_command exits above 125
//            (wait_result_is_any_signal(rc, true) in xlogarchive.c), so a corrupt or unreadable
//            archive stops recovery instead of promoting a database that is missing WAL.
//            The timeout also exits 127: a silent agent must not end recovery early.
//
// File names arrive as positional parameters ($1 = %f, $2 = %p), so no name is ever parsed by the
// shell as code. The scripts hold single quotes: in postgresql.conf, double them ('' escaping);
// on the postgres command line (-c) or through ALTER SYSTEM, pass the string as is.

const POLL_SECONDS = 0.02;

function checkDir(dir: string, what: string): void {
  // Embedded in a single-quoted shell script and in a GUC: keep to characters that need no quoting.
  if (!/^\/[A-Za-z0-9_./-]*$/.test(dir)) throw new Error(`${what} ${JSON.stringify(dir)} must be an absolute path of letters, digits and _ . / -`);
}

function checkTimeout(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`invalid handoff timeout ${seconds}`);
  return Math.max(1, Math.ceil(seconds / POLL_SECONDS));
}

/** archive_command: waits for the agent's marker <markerDir>/%f (see above). */
export function archiveCommand(markerDir: string, timeoutSeconds = 60): string {
  checkDir(markerDir, 'marker directory');
  const polls = checkTimeout(timeoutSeconds);
  const script = [
    `m=${markerDir}/$1`,
    'n=0',
    `while [ ! -e "$m" ]; do n=$((n+1)); if [ $n -gt ${polls} ]; then echo "pgpilot: $1 was not archived within ${timeoutSeconds}s" >&2; exit 1; fi; sleep ${POLL_SECONDS}; done`,
    'rm -f "$m"',
    'exit 0',
  ].join('; ');
  return `/bin/sh -c '${script}' pgpilot-archive %f`;
}

/** restore_command: asks the agent for %f through <spoolDir> and waits (see above). */
export function restoreCommand(spoolDir: string, timeoutSeconds = 300): string {
  checkDir(spoolDir, 'spool directory');
  const polls = checkTimeout(timeoutSeconds);
  const s = spoolDir;
  const script = [
    // Answers of an earlier, timed-out request for the same file are stale; a got/ copy is not.
    `rm -f "${s}/missing/$1" "${s}/failed/$1"`,
    `: > "${s}/want/$1" || exit 127`,
    'n=0',
    'while :; do ' +
      `if [ -e "${s}/got/$1" ]; then mv -f "${s}/got/$1" "$2" && exit 0; exit 127; fi; ` +
      `if [ -e "${s}/missing/$1" ]; then rm -f "${s}/missing/$1"; exit 1; fi; ` +
      `if [ -e "${s}/failed/$1" ]; then cat "${s}/failed/$1" >&2; echo >&2; rm -f "${s}/failed/$1"; exit 127; fi; ` +
      `n=$((n+1)); if [ $n -gt ${polls} ]; then rm -f "${s}/want/$1"; echo "pgpilot: no answer for $1 within ${timeoutSeconds}s" >&2; exit 127; fi; ` +
      `sleep ${POLL_SECONDS}; ` +
      'done',
  ].join('; ');
  return `/bin/sh -c '${script}' pgpilot-restore %f %p`;
}

/** Sub-directories of the restore spool. */
export const SPOOL_DIRS = ['want', 'got', 'missing', 'failed'] as const;
