#!/usr/bin/env bash
# The WordPress demo (`make demo`): a real WordPress site, backed up and
# restored by sitevault on embedded defaults.
#
#   scripts/demo.sh         set everything up and run the demo (re-runnable: starts over)
#   scripts/demo.sh stop    stop the demo's web and database servers
#
# Everything lives under .demo/ in the repository (gitignored): a private
# MariaDB server (.demo/mysql, a free loopback port), Debian's WordPress
# copied into .demo/site with its own wp-config.php, installed with php-cli
# and served by `php -S` on a free loopback port, and sitevault's data home
# with its embedded repository (.demo/home). Nothing touches a system server
# or ~/.local/share/sitevault. Needs: bin/sitevault (go build -o bin/sitevault
# ./cmd/sitevault) and scripts/deps.sh demo (mariadb-server, php-cli,
# php-mysql, wordpress).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
sv=${SITEVAULT_BIN:-$root/bin/sitevault}
wp_src=/usr/share/wordpress
site=$demo/site
mysql_dir=$demo/mysql
home=$demo/home

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '   %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
run() { printf '$ sitevault %s\n' "$*"; "$sv" "$@"; }

# stop_pid FILE: stop the process whose pid FILE holds, if it still runs.
stop_pid() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_servers() {
  stop_pid "$demo/php.pid"
  stop_pid "$demo/mysql.pid"
}

if [[ ${1:-} == stop ]]; then
  stop_servers
  echo "Stopped the demo's web server and MariaDB (the files stay in $demo; make clean removes them)."
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: $0 [stop]"

# --- checks -------------------------------------------------------------------
[[ -x $sv ]] || die "$sv is missing; build it with: go build -o bin/sitevault ./cmd/sitevault (make demo does)"
lookpath() { command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; } || true; }
mariadbd=$(lookpath mariadbd)
install_db=$(lookpath mariadb-install-db)
mariadb=$(lookpath mariadb)
php=$(lookpath php)
[[ -n $mariadbd && -n $install_db && -n $mariadb ]] || die "MariaDB is not installed; run scripts/deps.sh demo"
[[ -n $php ]] || die "PHP is not installed; run scripts/deps.sh demo"
[[ -f $wp_src/wp-includes/version.php ]] || die "Debian's wordpress package is not installed; run scripts/deps.sh demo"
[[ -d $wp_src/wp-content/themes/twentytwentythree ]] || die "WordPress's default theme is missing ($wp_src/wp-content/themes/twentytwentythree): apt-get install wordpress-theme-twentytwentythree (or run scripts/deps.sh demo)"
[[ -d $wp_src/wp-content/languages ]] || die "WordPress's translations are missing ($wp_src/wp-content/languages): apt-get install wordpress-l10n (or run scripts/deps.sh demo)"
"$php" -r 'exit(extension_loaded("mysqli") ? 0 : 1);' || die "PHP's MySQL extension is missing; run scripts/deps.sh demo"

free_port() { "$php" -r '$s = stream_socket_server("tcp://127.0.0.1:0"); $n = stream_socket_get_name($s, false); echo substr($n, strrpos($n, ":") + 1);'; }
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# fetch PATH: GET the site's PATH into $demo/page.html and print the HTTP status.
fetch() {
  if command -v curl >/dev/null; then
    curl -s -o "$demo/page.html" -w '%{http_code}' "$url$1" || echo 000
  else
    "$php" -r '$b = @file_get_contents($argv[1]); file_put_contents($argv[2], (string) $b);
      preg_match("/ (\d{3}) /", $http_response_header[0] ?? " 000 ", $m); echo $m[1];' "$url$1" "$demo/page.html"
  fi
}

# wp_php CODE: run PHP code with the demo site's WordPress loaded.
wp_php() {
  local script=$demo/wp-run.php
  {
    printf '<?php\n$_SERVER["HTTP_HOST"] = "127.0.0.1:%s"; $_SERVER["REQUEST_URI"] = "/";\n' "$web_port"
    printf 'define("WP_USE_THEMES", false);\nrequire %s;\n' "'$site/wp-load.php'"
    printf '%s\n' "$1"
  } >"$script"
  "$php" -d display_errors=stderr -d 'error_reporting=E_ALL & ~E_DEPRECATED & ~E_NOTICE' "$script"
}

trap 'rc=$?; if ((rc != 0)) && [[ -f $demo/mysql.pid || -f $demo/php.pid ]]; then
  echo "demo: stopped at an error; the demo servers still run: scripts/demo.sh stop" >&2; fi' EXIT

# --- start over -----------------------------------------------------------------
step "0. Start over in $demo (stopping the servers of a previous run)"
stop_servers
rm -rf "$demo"
mkdir -p "$demo" "$mysql_dir"
unset SITEVAULT_PASSWORD SITEVAULT_REPOSITORY SITEVAULT_NEW_PASSWORD SITEVAULT_DB_PASSWORD
export SITEVAULT_HOME=$home

step "1. Start a private MariaDB server (data in .demo/mysql, loopback only)"
as_root=(); [[ $(id -u) -eq 0 ]] && as_root=(--user=root)
socket=$mysql_dir/mysqld.sock
# A Unix socket path may not be longer than 107 bytes.
(( ${#socket} < 100 )) || { socket=$(mktemp -u /tmp/sitevault-demo-XXXXXX.sock); }
"$install_db" --no-defaults --datadir="$mysql_dir/data" --auth-root-authentication-method=normal \
  --skip-test-db "${as_root[@]}" >"$mysql_dir/install.log" 2>&1 ||
  { cat "$mysql_dir/install.log" >&2; die "mariadb-install-db failed"; }
db_port=$(free_port)
setsid "$mariadbd" --no-defaults --datadir="$mysql_dir/data" --socket="$socket" --port="$db_port" \
  --bind-address=127.0.0.1 --pid-file="$demo/mysql.pid" --skip-log-bin --skip-name-resolve \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  --innodb-buffer-pool-size=128M --log-error="$mysql_dir/error.log" "${as_root[@]}" \
  </dev/null >/dev/null 2>&1 &
echo $! >"$demo/mysql.pid"
sql() { "$mariadb" --no-defaults --protocol=socket --socket="$socket" -uroot "$@"; }
for i in $(seq 300); do
  sql -e 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$(<"$demo/mysql.pid")" 2>/dev/null || { cat "$mysql_dir/error.log" >&2; die "mariadbd exited"; }
  (( i < 300 )) || die "MariaDB did not start within 30s (see $mysql_dir/error.log)"
  sleep 0.1
done
db_name=wordpress db_user=wpdemo db_password=$(random_hex 12)
sql -e "CREATE DATABASE $db_name CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
  CREATE USER '$db_user'@'%' IDENTIFIED BY '$db_password';
  GRANT ALL ON $db_name.* TO '$db_user'@'%';"
say "MariaDB listens on 127.0.0.1:$db_port; database $db_name, user $db_user"

step "2. Copy Debian's WordPress into .demo/site and write its own wp-config.php"
mkdir -p "$site"
# -h follows Debian's symbolic links (into /etc/wordpress, /usr/share/javascript …)
tar -C "$wp_src" -chf - --exclude=./wp-config.php --exclude=./wp-content/languages . | tar -C "$site" -xf -
web_port=$(free_port)
url=http://127.0.0.1:$web_port
salt() { printf "define( '%s', '%s' );\n" "$1" "$(random_hex 32)"; }
{
  cat <<EOF
<?php
// wp-config.php of sitevault's demo site
define( 'DB_NAME', '$db_name' );
define( 'DB_USER', '$db_user' );
define( 'DB_PASSWORD', '$db_password' );
define( 'DB_HOST', '127.0.0.1:$db_port' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
EOF
  for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do salt $k; done
  cat <<'EOF'
$table_prefix = 'wp_';
define( 'WP_DEBUG', false );
define( 'FS_METHOD', 'direct' );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
/* That's all, stop editing! Happy publishing. */
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
EOF
} >"$site/wp-config.php"
chmod 640 "$site/wp-config.php"
say "WordPress $(sed -n "s/^\$wp_version = '\(.*\)';/\1/p" "$site/wp-includes/version.php") in $site"

step "3. Install WordPress with php-cli, add a plugin and two posts"
mkdir -p "$site/wp-content/plugins/sitevault-demo"
cat >"$site/wp-content/plugins/sitevault-demo/sitevault-demo.php" <<'EOF'
<?php
/**
 * Plugin Name: sitevault demo
 * Description: Prints a line at the bottom of every page, so you can see it is active.
 * Version: 1.0
 */
add_action( 'wp_footer', function () {
	echo '<p style="text-align:center">sitevault-demo plugin is active</p>';
} );
EOF
admin_password=$(random_hex 8)
# wp_install must run with WP_INSTALLING set before wp-load.php, so it gets its own script.
cat >"$demo/wp-install.php" <<EOF
<?php
\$_SERVER['HTTP_HOST'] = '127.0.0.1:$web_port'; \$_SERVER['REQUEST_URI'] = '/';
define( 'WP_INSTALLING', true );
require '$site/wp-load.php';
function wp_new_blog_notification() {}
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
\$r = wp_install( 'sitevault demo', 'admin', 'admin@example.invalid', true, '', '$admin_password' );
if ( is_wp_error( \$r ) || empty( \$r['user_id'] ) ) { fwrite( STDERR, "wp_install failed\n" ); exit( 1 ); }
update_option( 'siteurl', '$url' );
update_option( 'home', '$url' );
EOF
"$php" -d display_errors=stderr -d 'error_reporting=E_ALL & ~E_DEPRECATED & ~E_NOTICE' "$demo/wp-install.php" ||
  die "the WordPress installer failed"
wp_php "
require_once ABSPATH . 'wp-admin/includes/plugin.php';
\$r = activate_plugin( 'sitevault-demo/sitevault-demo.php' );
if ( is_wp_error( \$r ) ) { fwrite( STDERR, \$r->get_error_message() ); exit( 1 ); }
wp_insert_post( array( 'post_title' => 'Welcome to the sitevault demo', 'post_status' => 'publish', 'post_author' => 1,
  'post_content' => 'This site runs on a private MariaDB and PHP built-in web server.' ) );
wp_insert_post( array( 'post_title' => 'Our opening hours', 'post_status' => 'publish', 'post_author' => 1,
  'post_content' => 'Monday to Friday, 9 to 5.' ) );
" || die "could not activate the plugin or add posts"
say "admin login: admin / $admin_password; active theme: $(wp_php 'echo get_option("stylesheet");')"

step "4. Serve the site with PHP's built-in web server"
setsid "$php" -S "127.0.0.1:$web_port" -t "$site" </dev/null >"$demo/php.log" 2>&1 &
echo $! >"$demo/php.pid"
for i in $(seq 100); do
  [[ $(fetch /) == 200 ]] && break
  (( i < 100 )) || die "the site does not answer on $url (see $demo/php.log)"
  sleep 0.1
done
say "$url answers 200: $(grep -o 'Welcome to the sitevault demo' "$demo/page.html" | head -1)"

step "5. Create sitevault's embedded repository in a fresh data home (.demo/home)"
say "No password is given, so sitevault creates a random key file for it."
run init

step "6. Register the site (sitevault reads wp-config.php and checks the database login)"
run site add demo --path "$site"

step "7. Back up the whole site: files and database in one restore point"
run backup demo

step "8. Change the site: a new post, a deleted plugin, an edited theme file"
theme_file=$site/wp-content/themes/twentytwentythree/parts/footer.html
cp "$theme_file" "$demo/footer.html.orig"
wp_php "wp_insert_post( array( 'post_title' => 'A post written after the backup', 'post_status' => 'publish',
  'post_author' => 1, 'post_content' => 'It will be gone after the restore.' ) );"
rm -rf "$site/wp-content/plugins/sitevault-demo"
printf '<!-- wp:paragraph {"align":"center"} -->\n<p class="has-text-align-center">THIS THEME WAS EDITED AFTER THE BACKUP</p>\n<!-- /wp:paragraph -->\n' >>"$theme_file"
status=$(fetch /)
say "home page: HTTP $status"
grep -q 'A post written after the backup' "$demo/page.html" && say "- shows the new post \"A post written after the backup\""
grep -q 'sitevault-demo plugin is active' "$demo/page.html" || say "- the plugin's line at the bottom is gone (plugin folder deleted)"
grep -q 'THIS THEME WAS EDITED' "$demo/page.html" && say "- the footer shows \"THIS THEME WAS EDITED AFTER THE BACKUP\""

step "9. List the restore points"
run points demo
first=$("$sv" points demo --json | "$php" -r '
  $v = json_decode(stream_get_contents(STDIN), true);
  $all = [];
  $walk = function ($x) use (&$walk, &$all) {
    if (!is_array($x)) return;
    if (isset($x["id"], $x["time"]) && is_string($x["id"])) { $all[] = $x; return; }
    foreach ($x as $y) $walk($y);
  };
  $walk($v);
  usort($all, fn($a, $b) => strcmp($a["time"], $b["time"]));
  echo $all[0]["id"] ?? "";')
[[ -n $first ]] || die "could not read the first restore point's id from sitevault points demo --json"
say "the first restore point (the backup of step 7) is $first"

step "10. Restore the site to that point"
say "sitevault first saves the current state as a pre-restore point, so this restore can be undone."
run restore demo --to "$first" --yes

step "11. Check that the site is back"
status=$(fetch /)
ok=1
if [[ $status == 200 ]]; then say "home page: HTTP 200"; else say "home page: HTTP $status (want 200)"; ok=""; fi
if grep -q 'A post written after the backup' "$demo/page.html"; then
  say "PROBLEM: the post written after the backup is still there"; ok=""
else say "- the post written after the backup is gone"; fi
if grep -q 'sitevault-demo plugin is active' "$demo/page.html"; then
  say "- the plugin is back: \"sitevault-demo plugin is active\" at the bottom of the page"
else say "PROBLEM: the plugin's line is missing"; ok=""; fi
if cmp -s "$theme_file" "$demo/footer.html.orig" && ! grep -q 'THIS THEME WAS EDITED' "$demo/page.html"; then
  say "- the theme file parts/footer.html is restored byte for byte"
else say "PROBLEM: the theme file differs from before the change"; ok=""; fi
[[ -n $ok ]] || die "the site is not back as it was (see above)"

step "Done. The site is still running"
cat <<EOF
   Look at it:      $url   (admin: $url/wp-login.php, user admin, password $admin_password)
   Stop it:         scripts/demo.sh stop
   Try next:
     export SITEVAULT_HOME=$home PATH=$(dirname "$sv"):\$PATH
     sitevault points demo                     # the backup and the pre-restore point
     sitevault undo demo --yes                 # undo the restore: the new post and the edited theme come back
     sitevault download demo --to latest -o $demo/demo.tar.gz   # the site as an archive (.zip works too)
     sitevault site files demo --explain       # what a backup takes, and why the rest is skipped
     sitevault serve                           # the service: daily backups, alerts, the API on 127.0.0.1:8570
EOF
