# Shared shell helpers for the test, demo and bench scripts: finding the
# PostgreSQL binaries, starting and stopping a throwaway cluster on a free port
# (as the postgres user when we are root, since PostgreSQL refuses root), and
# running make install with the right privileges. Source it; do not run it.

PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$PGBIN/initdb" ] || PGBIN=/usr/lib/postgresql/15/bin

# PREPAID_PGROOT=/some/dir (optional): use a private copy of the PostgreSQL
# installation under that directory and install the extension there
# (make install DESTDIR=...), so several checkouts can build and test side by
# side without overwriting each other's installed pg_prepaid. PostgreSQL finds
# its share and lib directories relative to its binaries, so the copy works.
if [ -n "${PREPAID_PGROOT:-}" ]; then
	if [ ! -x "$PREPAID_PGROOT$PGBIN/postgres" ]; then
		mkdir -p "$PREPAID_PGROOT/usr/lib/postgresql" "$PREPAID_PGROOT/usr/share/postgresql"
		cp -a "$(dirname "$PGBIN")" "$PREPAID_PGROOT/usr/lib/postgresql/"
		cp -a "$(pg_config --sharedir)" "$PREPAID_PGROOT/usr/share/postgresql/"
		chmod 755 "$PREPAID_PGROOT"
	fi
	PGBIN=$PREPAID_PGROOT$PGBIN
fi

as_pg() {
	# Run a command as the cluster owner.
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((15000 + RANDOM % 17000))  # below the ephemeral range (32768+)
		if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# cluster_start DIR [preload]
# Creates and starts a cluster in DIR/data with its socket in DIR; exports
# PGHOST, PGPORT, PGUSER, PGDATABASE for psql and friends.
cluster_start() {
	local dir=$1 preload=${2:-}
	mkdir -p "$dir"
	chmod 755 "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	export PGPORT
	PGPORT=$(free_port)
	export PGHOST=$dir PGUSER=postgres PGDATABASE=postgres
	as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log"
		return 1
	}
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
checkpoint_timeout = 30min
max_connections = 200
timezone = 'UTC'
log_min_messages = warning
CONF
	if [ -n "$preload" ]; then
		echo "shared_preload_libraries = '$preload'" >>"$dir/data/postgresql.conf"
	fi
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
		>/dev/null || {
		cat "$dir/server.log"
		return 1
	}
}

cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

build_and_install() {
	make -s -j2 >/dev/null
	if [ -n "${PREPAID_PGROOT:-}" ]; then
		make -s install DESTDIR="$PREPAID_PGROOT" >/dev/null
	else
		as_root make -s install >/dev/null
	fi
}
