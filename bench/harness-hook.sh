#!/usr/bin/env bash
# harness-hook.sh — what ../shared/bench/baseline.sh runs for MH_PURGE_CMD / MH_QUOTA_CMD
# (set up by bench/harness.sh). The harness's tree $MAILDIR is a bare Maildir but our tools
# work on accounts, so the tree is renamed into the hook account for the call and renamed
# back (two renames on one filesystem, ~1 ms). The files our tools add to a Maildir
# (maildirsize, .maildirsize.lock) are removed again, so the harness's file count
# (left=) sees only messages.
#   purge: mh-purge ADDRESS --older-than ${CUTOFF_DAYS}d --quiet
#   quota: mh-quota recalc ADDRESS, then prints the recalculated byte count (value=)
set -u

mode=${1:?usage: harness-hook.sh purge|quota}
address=purge@harness.test
account_maildir=$MH_HOOK_SPOOL/domains/harness.test/accounts/purge/Maildir

mv -T "$MAILDIR" "$account_maildir" || exit 1
case $mode in
    purge) "$MH_HOOK_PURGE" --spool "$MH_HOOK_SPOOL" "$address" --older-than "${CUTOFF_DAYS}d" --quiet ;;
    quota) "$MH_HOOK_QUOTA" --spool "$MH_HOOK_SPOOL" recalc "$address" --quiet &&
           awk 'NR > 1 { bytes += $1 } END { print bytes }' "$account_maildir/maildirsize" ;;
    *) echo "harness-hook.sh: unknown mode $mode" >&2; false ;;
esac
rc=$?
mv -T "$account_maildir" "$MAILDIR" || exit 1
rm -f "$MAILDIR/maildirsize" "$MAILDIR/.maildirsize.lock"
exit "$rc"
