#!/bin/bash
# Nightly logical backup of the Đồng Hành database: pg_dump (custom format), encrypted
# with age to public recipients only (the private key is NOT on this machine), kept for
# KEEP_DAYS days. Run by donghanh-backup.service as the postgres user (peer login over
# the local socket). Install as /usr/local/sbin/donghanh-backup, mode 0755.
#
# The dump holds encrypted message text, but also pseudonyms, timestamps, case states,
# screening results, the audit log and staff password hashes: it is personal data and
# must never be stored or copied unencrypted. See docs/deploy.md, "Backups".
set -euo pipefail
umask 077

DATABASE="${BACKUP_DATABASE:-donghanh}"
BACKUP_DIR="${BACKUP_DIR:-/var/backups/donghanh}"
RECIPIENTS="${BACKUP_RECIPIENTS:-/etc/donghanh/backup-recipients.txt}"   # age public keys
KEEP_DAYS="${KEEP_DAYS:-30}"   # keep in line with the retention you promise (docs/deploy.md)

[ -s "$RECIPIENTS" ] || { echo "no age recipients in $RECIPIENTS" >&2; exit 1; }
mkdir -p "$BACKUP_DIR"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
target="$BACKUP_DIR/$DATABASE-$stamp.dump.age"
partial="$target.partial"
trap 'rm -f "$partial"' EXIT

# pipefail: a failing pg_dump fails the run (and the unit), leaving no file behind.
pg_dump --format=custom --lock-wait-timeout=60s --dbname="$DATABASE" \
    | age --encrypt --recipients-file "$RECIPIENTS" --output "$partial"
[ -s "$partial" ] || { echo "empty backup" >&2; exit 1; }
mv "$partial" "$target"
echo "backup written: $target ($(stat -c %s "$target") bytes)"

# Copy off the machine here (rsync, rclone, restic ...): a backup on the database's own
# disk is no backup. The file is already encrypted; the copy needs no plaintext step.
# e.g.: rclone copy "$target" offsite:donghanh-backups/

find "$BACKUP_DIR" -maxdepth 1 -name "$DATABASE-*.dump.age" -mtime +"$KEEP_DAYS" -print -delete
