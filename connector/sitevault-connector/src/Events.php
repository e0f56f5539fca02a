<?php

namespace Sitevault\Connector;

/**
 * The WordPress hooks that become events. Each handler reads what it needs
 * while the hook runs (a post's title before it is deleted, a plugin's name
 * before its files go) and records the event at once.
 */
final class Events
{
    /** Options whose changes are recorded as setting__updated. */
    public const SETTINGS = [
        'blogname', 'blogdescription', 'siteurl', 'home', 'admin_email', 'new_admin_email', 'users_can_register',
        'default_role', 'permalink_structure', 'category_base', 'tag_base', 'WPLANG', 'timezone_string',
        'gmt_offset', 'date_format', 'time_format', 'start_of_week', 'blog_public', 'show_on_front',
        'page_on_front', 'page_for_posts', 'posts_per_page', 'default_category', 'default_comment_status',
        'default_ping_status', 'comment_registration', 'comment_moderation', 'comment_previously_approved',
        'require_name_email', 'close_comments_for_old_posts', 'uploads_use_yearmonth_folders', 'upload_path',
        'wp_page_for_privacy_policy', 'site_icon',
    ];

    /** Post types that are not content (or have their own events). */
    private const SKIP_TYPES = [
        'revision', 'nav_menu_item', 'customize_changeset', 'oembed_cache', 'user_request', 'attachment',
        'wp_global_styles', 'scheduled-action', 'custom_css',
    ];

    /** @var array<string, array<string, mixed>> what a delete hook saw before the files went */
    private static array $pending = [];

    /** Adds every hook. */
    public static function register(): void
    {
        $c = self::class;
        // Posts and pages.
        add_action('transition_post_status', [$c, 'postTransition'], 10, 3);
        add_action('post_updated', [$c, 'postUpdated'], 10, 3);
        add_action('wp_trash_post', [$c, 'postTrashed'], 10, 1);
        add_action('untrashed_post', [$c, 'postUntrashed'], 10, 1);
        add_action('before_delete_post', [$c, 'postDeleted'], 10, 1);
        // Media.
        add_action('add_attachment', [$c, 'attachmentAdded'], 10, 1);
        add_action('attachment_updated', [$c, 'attachmentUpdated'], 10, 3);
        add_action('delete_attachment', [$c, 'attachmentDeleted'], 10, 1);
        // Comments.
        add_action('wp_insert_comment', [$c, 'commentInserted'], 10, 2);
        add_action('transition_comment_status', [$c, 'commentTransition'], 10, 3);
        add_action('edit_comment', [$c, 'commentEdited'], 10, 1);
        add_action('delete_comment', [$c, 'commentDeleted'], 10, 2);
        // Plugins, themes, core.
        add_action('activated_plugin', [$c, 'pluginActivated'], 10, 2);
        add_action('deactivated_plugin', [$c, 'pluginDeactivated'], 10, 2);
        add_action('delete_plugin', [$c, 'pluginDeleting'], 10, 1);
        add_action('deleted_plugin', [$c, 'pluginDeleted'], 10, 2);
        add_action('upgrader_process_complete', [$c, 'upgraded'], 10, 2);
        add_action('switch_theme', [$c, 'themeSwitched'], 10, 3);
        add_action('delete_theme', [$c, 'themeDeleting'], 10, 1);
        add_action('deleted_theme', [$c, 'themeDeleted'], 10, 2);
        add_action('wp_ajax_edit-theme-plugin-file', [$c, 'fileEdited'], 1);
        add_action('_core_updated_successfully', [$c, 'coreUpdated'], 10, 1);
        // Users.
        add_action('user_register', [$c, 'userRegistered'], 10, 1);
        add_action('wp_login', [$c, 'userLoggedIn'], 10, 2);
        add_action('wp_login_failed', [$c, 'userLoginFailed'], 10, 2);
        add_action('wp_logout', [$c, 'userLoggedOut'], 10, 1);
        add_action('profile_update', [$c, 'userUpdated'], 10, 2);
        add_action('set_user_role', [$c, 'userRoleChanged'], 10, 3);
        add_action('delete_user', [$c, 'userDeleted'], 10, 2);
        // Menus, terms, widgets, settings.
        add_action('wp_create_nav_menu', [$c, 'menuCreated'], 10, 2);
        add_action('wp_update_nav_menu', [$c, 'menuUpdated'], 10, 1);
        add_action('pre_delete_term', [$c, 'termDeleting'], 10, 2);
        add_action('wp_delete_nav_menu', [$c, 'menuDeleted'], 10, 1);
        add_action('created_term', [$c, 'termCreated'], 10, 3);
        add_action('edited_term', [$c, 'termEdited'], 10, 3);
        add_action('delete_term', [$c, 'termDeleted'], 10, 5);
        add_action('updated_option', [$c, 'optionUpdated'], 10, 3);
        // Imports and exports.
        add_action('import_start', [$c, 'importStarted'], 10, 0);
        add_action('import_end', [$c, 'importFinished'], 10, 0);
        add_action('export_wp', [$c, 'exported'], 10, 1);
    }

    // ---- posts ---------------------------------------------------------

    /** Whether a post is content this log follows. */
    private static function follows(\WP_Post $post): bool
    {
        if (
            in_array($post->post_type, self::SKIP_TYPES, true)
            || wp_is_post_revision($post)
            || wp_is_post_autosave($post)
        ) {
            return false;
        }
        if (WooCommerce::active() && in_array($post->post_type, WooCommerce::POST_TYPES, true)) {
            return false; // WooCommerce's own hooks record orders and products.
        }
        return !(defined('DOING_AUTOSAVE') && DOING_AUTOSAVE);
    }

    /** The event group for a post: "page" for pages, "post" for every other type. */
    private static function group(\WP_Post $post): string
    {
        return $post->post_type === 'page' ? 'page' : 'post';
    }

    /** The type's singular label ("Post", "Page", "Product"). */
    private static function label(\WP_Post $post): string
    {
        $o = get_post_type_object($post->post_type);
        return $o && isset($o->labels->singular_name) ? (string) $o->labels->singular_name : ucfirst($post->post_type);
    }

    /**
     * @return array{type: string, id: int, name: string}
     */
    private static function postObject(\WP_Post $post): array
    {
        return ['type' => $post->post_type, 'id' => (int) $post->ID, 'name' => self::title($post)];
    }

    private static function title(\WP_Post $post): string
    {
        return $post->post_title !== '' ? $post->post_title : '(no title)';
    }

    /**
     * @return array<string, mixed>
     */
    private static function postDetails(\WP_Post $post): array
    {
        return [
            'status' => $post->post_status,
            'post_type' => $post->post_type,
            'author' => (int) $post->post_author,
            'slug' => $post->post_name,
            'modified_gmt' => $post->post_modified_gmt,
            'content_length' => strlen((string) $post->post_content),
        ];
    }

    /**
     * Status changes: published, unpublished, scheduled, drafted, pending
     * and other changes (trash and untrash have their own hooks).
     *
     * @param mixed $post
     */
    public static function postTransition($new, $old, $post): void
    {
        if (!$post instanceof \WP_Post || $new === $old || !self::follows($post)) {
            return;
        }
        if ($new === 'auto-draft' || $new === 'inherit' || $new === 'trash' || $old === 'trash') {
            return;
        }
        $g = self::group($post);
        $label = self::label($post);
        $t = self::title($post);
        $verbs = [
            'publish' => ['published', '%s “%s” was published'],
            'future' => ['scheduled', '%s “%s” was scheduled'],
            'draft' => $old === 'new' || $old === 'auto-draft' ? ['created', '%s “%s” was drafted'] : null,
            'pending' => ['pending', '%s “%s” was submitted for review'],
            'private' => ['privatized', '%s “%s” was made private'],
        ];
        $v = $verbs[$new] ?? null;
        if ($v === null) {
            $v = $old === 'publish'
                ? ['unpublished', '%s “%s” was unpublished']
                : ['status_changed', '%s “%s” changed status'];
        } elseif ($old === 'publish' && $new !== 'private') {
            $v = ['unpublished', '%s “%s” was unpublished'];
        }
        Recorder::record(
            $g . '__' . $v[0],
            self::postObject($post),
            sprintf($v[1], $label, $t) . ($v[0] === 'status_changed' ? sprintf(' from %s to %s', $old, $new) : ''),
            ['from' => $old, 'to' => $new] + self::postDetails($post),
            null,
            Changes::post((int) $post->ID)
        );
    }

    /**
     * Saves that change no status: updated.
     *
     * @param mixed $after
     * @param mixed $before
     */
    public static function postUpdated($id, $after, $before): void
    {
        if (!$after instanceof \WP_Post || !$before instanceof \WP_Post || !self::follows($after)) {
            return;
        }
        if (
            $after->post_status !== $before->post_status
            || in_array($after->post_status, ['auto-draft', 'trash'], true)
        ) {
            return;
        }
        $changed = [];
        $fields = [
            'post_title', 'post_content', 'post_excerpt', 'post_name', 'post_parent', 'post_author', 'post_password',
            'menu_order', 'comment_status', 'post_date',
        ];
        foreach ($fields as $f) {
            if ((string) $after->$f !== (string) $before->$f) {
                $changed[] = $f;
            }
        }
        $d = ['changed' => $changed] + self::postDetails($after);
        if (in_array('post_title', $changed, true)) {
            $d['old_title'] = $before->post_title;
        }
        Recorder::record(
            self::group($after) . '__updated',
            self::postObject($after),
            sprintf('%s “%s” was updated', self::label($after), self::title($after)),
            $d,
            null,
            Changes::post((int) $after->ID)
        );
    }

    /** Moved to the trash. */
    public static function postTrashed($id): void
    {
        $post = get_post((int) $id);
        if (!$post instanceof \WP_Post || !self::follows($post)) {
            return;
        }
        Recorder::record(
            self::group($post) . '__trashed',
            self::postObject($post),
            sprintf('%s “%s” was moved to the trash', self::label($post), self::title($post)),
            ['previous_status' => $post->post_status] + self::postDetails($post),
            null,
            Changes::post((int) $post->ID)
        );
    }

    /** Restored from the trash. */
    public static function postUntrashed($id): void
    {
        $post = get_post((int) $id);
        if (!$post instanceof \WP_Post || !self::follows($post)) {
            return;
        }
        Recorder::record(
            self::group($post) . '__restored',
            self::postObject($post),
            sprintf('%s “%s” was restored from the trash', self::label($post), self::title($post)),
            self::postDetails($post),
            null,
            Changes::post((int) $post->ID)
        );
    }

    /** Deleted for good (read before WordPress deletes it). */
    public static function postDeleted($id): void
    {
        $post = get_post((int) $id);
        if (!$post instanceof \WP_Post || !self::follows($post) || $post->post_status === 'auto-draft') {
            return;
        }
        Recorder::record(
            self::group($post) . '__deleted',
            self::postObject($post),
            sprintf('%s “%s” was deleted permanently', self::label($post), self::title($post)),
            self::postDetails($post),
            null,
            Changes::post((int) $post->ID)
        );
    }

    // ---- media ---------------------------------------------------------

    /**
     * @return array<string, mixed>
     */
    private static function mediaDetails(\WP_Post $a): array
    {
        return [
            'file' => (string) get_post_meta($a->ID, '_wp_attached_file', true),
            'mime_type' => $a->post_mime_type,
            'url' => wp_get_attachment_url($a->ID),
            'parent' => (int) $a->post_parent,
        ];
    }

    /** Uploaded. */
    public static function attachmentAdded($id): void
    {
        $a = get_post((int) $id);
        if ($a instanceof \WP_Post) {
            Recorder::record(
                'attachment__uploaded',
                self::postObject($a),
                sprintf('Media “%s” was uploaded', self::title($a)),
                self::mediaDetails($a),
                null,
                Changes::post((int) $a->ID)
            );
        }
    }

    /**
     * Edited (title, caption, alt text …).
     *
     * @param mixed $after
     * @param mixed $before
     */
    public static function attachmentUpdated($id, $after, $before): void
    {
        if ($after instanceof \WP_Post) {
            $changed = [];
            if ($before instanceof \WP_Post) {
                foreach (['post_title', 'post_excerpt', 'post_content', 'post_parent'] as $f) {
                    if ((string) $after->$f !== (string) $before->$f) {
                        $changed[] = $f;
                    }
                }
            }
            Recorder::record(
                'attachment__updated',
                self::postObject($after),
                sprintf('Media “%s” was updated', self::title($after)),
                ['changed' => $changed] + self::mediaDetails($after),
                null,
                Changes::post((int) $after->ID)
            );
        }
    }

    /** Deleted (read before the files go). */
    public static function attachmentDeleted($id): void
    {
        $a = get_post((int) $id);
        if ($a instanceof \WP_Post) {
            Recorder::record(
                'attachment__deleted',
                self::postObject($a),
                sprintf('Media “%s” was deleted', self::title($a)),
                self::mediaDetails($a),
                null,
                Changes::post((int) $a->ID)
            );
        }
    }

    // ---- comments ------------------------------------------------------

    /**
     * @param mixed $comment
     * @return array{0: array{type: string, id: int, name: string}, 1: array<string, mixed>, 2: string,
     *     3: list<array<string, mixed>>}|null
     */
    private static function commentParts($comment): ?array
    {
        $comment = get_comment($comment);
        if (!$comment instanceof \WP_Comment) {
            return null;
        }
        $post = get_post((int) $comment->comment_post_ID);
        $on = $post instanceof \WP_Post ? self::title($post) : '#' . $comment->comment_post_ID;
        $author = $comment->comment_author !== '' ? $comment->comment_author : 'anonymous';
        return [
            ['type' => 'comment', 'id' => (int) $comment->comment_ID, 'name' => $author . ' on ' . $on],
            [
                'post_id' => (int) $comment->comment_post_ID,
                'post_title' => $on,
                'author' => $comment->comment_author,
                'author_email' => $comment->comment_author_email,
                'status' => wp_get_comment_status($comment),
                'type' => $comment->comment_type === '' ? 'comment' : $comment->comment_type,
                'excerpt' => mb_substr(wp_strip_all_tags($comment->comment_content), 0, 200),
            ],
            sprintf('%s on “%s”', $author, $on),
            Changes::comment((int) $comment->comment_ID, (int) $comment->comment_post_ID),
        ];
    }

    /**
     * A new comment.
     *
     * @param mixed $comment
     */
    public static function commentInserted($id, $comment): void
    {
        $p = self::commentParts($comment ?: $id);
        if ($p) {
            Recorder::record('comment__created', $p[0], 'New comment by ' . $p[2], $p[1], null, $p[3]);
        }
    }

    /**
     * Approved, unapproved, spam, trash and back.
     *
     * @param mixed $comment
     */
    public static function commentTransition($new, $old, $comment): void
    {
        $p = self::commentParts($comment);
        if (!$p || $new === $old || $new === 'delete') {
            return; // delete_comment records a deletion.
        }
        $verb = [
            'approved' => 'approved', 'unapproved' => 'unapproved', 'spam' => 'spammed', 'trash' => 'trashed',
        ][$new] ?? 'status_changed';
        if ($old === 'spam' && $new !== 'trash') {
            $verb = 'unspammed';
        } elseif ($old === 'trash' && $new !== 'spam') {
            $verb = 'untrashed';
        }
        $words = [
            'approved' => 'approved', 'unapproved' => 'unapproved', 'spammed' => 'marked as spam',
            'trashed' => 'moved to the trash', 'unspammed' => 'marked as not spam',
            'untrashed' => 'restored from the trash', 'status_changed' => 'changed status',
        ];
        Recorder::record(
            'comment__' . $verb,
            $p[0],
            sprintf('Comment by %s was %s', $p[2], $words[$verb]),
            ['from' => $old, 'to' => $new] + $p[1],
            null,
            $p[3]
        );
    }

    /** Edited. */
    public static function commentEdited($id): void
    {
        $p = self::commentParts((int) $id);
        if ($p) {
            Recorder::record('comment__edited', $p[0], sprintf('Comment by %s was edited', $p[2]), $p[1], null, $p[3]);
        }
    }

    /**
     * Deleted for good.
     *
     * @param mixed $comment
     */
    public static function commentDeleted($id, $comment = null): void
    {
        $p = self::commentParts($comment ?: (int) $id);
        if ($p) {
            Recorder::record(
                'comment__deleted',
                $p[0],
                sprintf('Comment by %s was deleted permanently', $p[2]),
                $p[1],
                null,
                $p[3]
            );
        }
    }

    // ---- plugins, themes, core ----------------------------------------

    /**
     * @return array{name: string, version: string}
     */
    private static function pluginData(string $file): array
    {
        if (!function_exists('get_plugin_data')) {
            require_once ABSPATH . 'wp-admin/includes/plugin.php';
        }
        $path = WP_PLUGIN_DIR . '/' . $file;
        $d = is_file($path) ? get_plugin_data($path, false, false) : [];
        return [
            'name' => (string) (($d['Name'] ?? '') !== '' ? $d['Name'] : $file),
            'version' => (string) ($d['Version'] ?? ''),
        ];
    }

    /**
     * @param array<string, mixed> $extra
     * @param array{name: string, version: string}|null $data
     */
    private static function pluginEvent(
        string $verb,
        string $file,
        string $words,
        array $extra = [],
        ?array $data = null
    ): void {
        $d = $data ?? self::pluginData($file);
        Recorder::record(
            'plugin__' . $verb,
            ['type' => 'plugin', 'id' => $file, 'name' => $d['name']],
            sprintf('Plugin “%s” was %s', $d['name'], $words),
            ['file' => $file, 'version' => $d['version']] + $extra
        );
    }

    /** Activated. */
    public static function pluginActivated($file, $network = false): void
    {
        self::pluginEvent('activated', (string) $file, 'activated', ['network_wide' => (bool) $network]);
    }

    /** Deactivated. */
    public static function pluginDeactivated($file, $network = false): void
    {
        self::pluginEvent('deactivated', (string) $file, 'deactivated', ['network_wide' => (bool) $network]);
    }

    /** About to be deleted: read its name while its files are there. */
    public static function pluginDeleting($file): void
    {
        self::$pending['plugin:' . $file] = self::pluginData((string) $file);
    }

    /** Deleted. */
    public static function pluginDeleted($file, $deleted = true): void
    {
        $data = self::$pending['plugin:' . $file] ?? ['name' => (string) $file, 'version' => ''];
        unset(self::$pending['plugin:' . $file]);
        if ($deleted) {
            self::pluginEvent('deleted', (string) $file, 'deleted', [], $data);
        }
    }

    /**
     * Installs and updates of plugins, themes and translations by the upgrader.
     *
     * @param mixed $upgrader
     * @param mixed $extra
     */
    public static function upgraded($upgrader, $extra): void
    {
        $extra = is_array($extra) ? $extra : [];
        $type = (string) ($extra['type'] ?? '');
        $action = (string) ($extra['action'] ?? '');
        if ($type === 'plugin' && $action === 'install') {
            $file = is_object($upgrader) && method_exists($upgrader, 'plugin_info')
                ? (string) $upgrader->plugin_info()
                : '';
            $new = is_object($upgrader) && isset($upgrader->new_plugin_data) ? (array) $upgrader->new_plugin_data : [];
            $data = !empty($new['Name'])
                ? ['name' => (string) $new['Name'], 'version' => (string) ($new['Version'] ?? '')]
                : null;
            if ($file !== '' || $data) {
                self::pluginEvent('installed', $file, 'installed', [], $data ?? self::pluginData($file));
            }
        } elseif ($type === 'plugin' && $action === 'update') {
            $files = (array) ($extra['plugins'] ?? ($extra['plugin'] ?? []));
            foreach ($files as $f) {
                self::pluginEvent('updated', (string) $f, 'updated');
            }
        } elseif ($type === 'theme' && $action === 'install') {
            $new = is_object($upgrader) && isset($upgrader->new_theme_data) ? (array) $upgrader->new_theme_data : [];
            $name = (string) ($new['Name'] ?? '');
            $t = is_object($upgrader) && method_exists($upgrader, 'theme_info') ? $upgrader->theme_info() : null;
            $slug = $t instanceof \WP_Theme ? $t->get_stylesheet() : '';
            self::themeEvent('installed', $slug, 'installed', $name !== '' ? $name : null);
        } elseif ($type === 'theme' && $action === 'update') {
            $slugs = (array) ($extra['themes'] ?? ($extra['theme'] ?? []));
            foreach ($slugs as $s) {
                self::themeEvent('updated', (string) $s, 'updated');
            }
        }
    }

    /**
     * @param array<string, mixed> $extra
     */
    private static function themeEvent(
        string $verb,
        string $slug,
        string $words,
        ?string $name = null,
        array $extra = []
    ): void {
        $theme = $slug !== '' ? wp_get_theme($slug) : null;
        $name = $name ?? ($theme && $theme->exists() ? (string) $theme->get('Name') : $slug);
        Recorder::record(
            'theme__' . $verb,
            ['type' => 'theme', 'id' => $slug, 'name' => $name],
            sprintf('Theme “%s” was %s', $name, $words),
            [
                'stylesheet' => $slug,
                'version' => $theme && $theme->exists() ? (string) $theme->get('Version') : '',
            ] + $extra
        );
    }

    /**
     * Switched.
     *
     * @param mixed $new
     * @param mixed $old
     */
    public static function themeSwitched($name, $new, $old = null): void
    {
        $slug = $new instanceof \WP_Theme ? $new->get_stylesheet() : '';
        self::themeEvent('switched', $slug, 'activated', (string) $name, [
            'previous' => $old instanceof \WP_Theme ? $old->get_stylesheet() : '',
        ]);
    }

    /** About to be deleted: read its name. */
    public static function themeDeleting($slug): void
    {
        $t = wp_get_theme((string) $slug);
        self::$pending['theme:' . $slug] = ['name' => $t->exists() ? (string) $t->get('Name') : (string) $slug];
    }

    /** Deleted. */
    public static function themeDeleted($slug, $deleted = true): void
    {
        $name = self::$pending['theme:' . $slug]['name'] ?? (string) $slug;
        unset(self::$pending['theme:' . $slug]);
        if ($deleted) {
            Recorder::record(
                'theme__deleted',
                ['type' => 'theme', 'id' => (string) $slug, 'name' => $name],
                sprintf('Theme “%s” was deleted', $name),
                ['stylesheet' => (string) $slug]
            );
        }
    }

    /** A plugin or theme file saved in the file editor (recorded as the save is asked for). */
    public static function fileEdited(): void
    {
        // phpcs:disable WordPress.Security.NonceVerification -- core's handler checks the nonce; this only reads names.
        $file = isset($_POST['file']) ? sanitize_text_field(wp_unslash($_POST['file'])) : '';
        if (!empty($_POST['plugin'])) {
            $plugin = sanitize_text_field(wp_unslash($_POST['plugin']));
            self::pluginEvent(
                'file_edited',
                $plugin,
                'edited in the file editor (' . $file . ')',
                ['edited_file' => $file]
            );
        } elseif (!empty($_POST['theme'])) {
            $theme = sanitize_text_field(wp_unslash($_POST['theme']));
            self::themeEvent(
                'file_edited',
                $theme,
                'edited in the file editor (' . $file . ')',
                null,
                ['edited_file' => $file]
            );
        }
        // phpcs:enable
    }

    /** WordPress itself was updated. */
    public static function coreUpdated($version): void
    {
        global $wp_version;
        Recorder::record(
            'core__updated',
            ['type' => 'core', 'id' => 'wordpress', 'name' => 'WordPress'],
            sprintf('WordPress was updated from %s to %s', (string) $wp_version, (string) $version),
            ['from' => (string) $wp_version, 'to' => (string) $version]
        );
    }

    // ---- users ---------------------------------------------------------

    /**
     * @return array{type: string, id: int, name: string}
     */
    private static function userObject(\WP_User $u): array
    {
        return ['type' => 'user', 'id' => (int) $u->ID, 'name' => (string) $u->user_login];
    }

    /** Registered (by sign-up or by an administrator). */
    public static function userRegistered($id): void
    {
        $u = get_userdata((int) $id);
        if ($u) {
            Recorder::record(
                'user__registered',
                self::userObject($u),
                sprintf('User “%s” was registered', $u->user_login),
                ['email' => $u->user_email, 'roles' => array_values((array) $u->roles)]
            );
        }
    }

    /**
     * Logged in.
     *
     * @param mixed $user
     */
    public static function userLoggedIn($login, $user = null): void
    {
        $u = $user instanceof \WP_User ? $user : get_user_by('login', (string) $login);
        if ($u) {
            Recorder::record('user__logged_in', self::userObject($u), sprintf('User “%s” logged in', $u->user_login), [
                'ip' => self::ip(),
            ], Recorder::actor($u));
        }
    }

    /**
     * A failed login (wrong password, unknown user …).
     *
     * @param mixed $error
     */
    public static function userLoginFailed($username, $error = null): void
    {
        $username = (string) $username;
        $u = get_user_by('login', $username) ?: (is_email($username) ? get_user_by('email', $username) : false);
        Recorder::record(
            'user__login_failed',
            ['type' => 'user', 'id' => $u ? (int) $u->ID : 0, 'name' => $username],
            sprintf('Failed login as “%s”', $username),
            [
                'reason' => $error instanceof \WP_Error ? (string) $error->get_error_code() : '',
                'known_user' => (bool) $u,
                'ip' => self::ip(),
            ],
            ['kind' => 'wordpress', 'name' => 'WordPress']
        );
    }

    /** Logged out. */
    public static function userLoggedOut($id = 0): void
    {
        $u = get_userdata((int) $id);
        if ($u) {
            Recorder::record(
                'user__logged_out',
                self::userObject($u),
                sprintf('User “%s” logged out', $u->user_login),
                [],
                Recorder::actor($u)
            );
        }
    }

    /**
     * Profile changes (e-mail, name, website, password).
     *
     * @param mixed $old
     */
    public static function userUpdated($id, $old = null): void
    {
        $u = get_userdata((int) $id);
        if (!$u) {
            return;
        }
        $changed = [];
        if ($old instanceof \WP_User) {
            foreach (['user_email', 'user_url', 'display_name', 'user_nicename', 'user_pass'] as $f) {
                if ((string) $u->$f !== (string) $old->$f) {
                    $changed[] = $f === 'user_pass' ? 'password' : $f;
                }
            }
        }
        Recorder::record(
            'user__updated',
            self::userObject($u),
            sprintf('Profile of “%s” was updated', $u->user_login),
            ['changed' => $changed]
        );
    }

    /**
     * A role change (not the first role a new user gets).
     *
     * @param mixed $oldRoles
     */
    public static function userRoleChanged($id, $role, $oldRoles = []): void
    {
        $oldRoles = array_values((array) $oldRoles);
        $u = get_userdata((int) $id);
        if (!$u || !$oldRoles) {
            return;
        }
        Recorder::record(
            'user__role_changed',
            self::userObject($u),
            sprintf('Role of “%s” changed from %s to %s', $u->user_login, implode(', ', $oldRoles), (string) $role),
            ['from' => $oldRoles, 'to' => (string) $role]
        );
    }

    /** Deleted (read before WordPress deletes it). */
    public static function userDeleted($id, $reassign = null): void
    {
        $u = get_userdata((int) $id);
        if ($u) {
            Recorder::record('user__deleted', self::userObject($u), sprintf('User “%s” was deleted', $u->user_login), [
                'email' => $u->user_email, 'roles' => array_values((array) $u->roles),
                'reassigned_to' => $reassign === null ? null : (int) $reassign,
            ]);
        }
    }

    private static function ip(): string
    {
        $ip = isset($_SERVER['REMOTE_ADDR']) ? (string) $_SERVER['REMOTE_ADDR'] : '';
        return filter_var($ip, FILTER_VALIDATE_IP) ? $ip : '';
    }

    // ---- menus, terms, widgets, settings --------------------------------

    /**
     * Created.
     *
     * @param mixed $data
     */
    public static function menuCreated($id, $data = []): void
    {
        $name = is_array($data) && isset($data['menu-name'])
            ? (string) $data['menu-name']
            : self::termName((int) $id, 'nav_menu');
        self::$pending['menu-created:' . $id] = ['at' => true];
        Recorder::record(
            'menu__created',
            ['type' => 'menu', 'id' => (int) $id, 'name' => $name],
            sprintf('Menu “%s” was created', $name)
        );
    }

    /** Updated (its name or its items). */
    public static function menuUpdated($id): void
    {
        if (isset(self::$pending['menu-created:' . $id])) {
            return; // wp_update_nav_menu also fires when a menu is created.
        }
        $name = self::termName((int) $id, 'nav_menu');
        Recorder::record(
            'menu__updated',
            ['type' => 'menu', 'id' => (int) $id, 'name' => $name],
            sprintf('Menu “%s” was updated', $name)
        );
    }

    /** Deleted (its name was read by termDeleting). */
    public static function menuDeleted($id): void
    {
        $name = self::$pending['term:' . $id]['name'] ?? '#' . $id;
        Recorder::record(
            'menu__deleted',
            ['type' => 'menu', 'id' => (int) $id, 'name' => $name],
            sprintf('Menu “%s” was deleted', $name)
        );
    }

    private static function termName(int $id, string $taxonomy): string
    {
        $t = get_term($id, $taxonomy);
        return $t instanceof \WP_Term ? $t->name : '#' . $id;
    }

    /** A term is about to be deleted: read its name. */
    public static function termDeleting($id, $taxonomy): void
    {
        self::$pending['term:' . $id] = ['name' => self::termName((int) $id, (string) $taxonomy)];
    }

    private static function followsTaxonomy(string $taxonomy): bool
    {
        return !in_array($taxonomy, ['nav_menu', 'post_format', 'wp_theme', 'wp_template_part_area'], true);
    }

    private static function termEvent(string $verb, int $id, string $taxonomy, string $name, array $extra = []): void
    {
        $tax = get_taxonomy($taxonomy);
        $label = $tax && isset($tax->labels->singular_name) ? (string) $tax->labels->singular_name : $taxonomy;
        Recorder::record(
            'term__' . $verb,
            ['type' => $taxonomy, 'id' => $id, 'name' => $name],
            sprintf('%s “%s” was %s', $label, $name, $verb),
            ['taxonomy' => $taxonomy] + $extra
        );
    }

    /** Created. */
    public static function termCreated($id, $ttId, $taxonomy): void
    {
        if (self::followsTaxonomy((string) $taxonomy)) {
            self::termEvent('created', (int) $id, (string) $taxonomy, self::termName((int) $id, (string) $taxonomy));
        }
    }

    /** Edited. */
    public static function termEdited($id, $ttId, $taxonomy): void
    {
        if (self::followsTaxonomy((string) $taxonomy)) {
            $t = get_term((int) $id, (string) $taxonomy);
            self::termEvent('updated', (int) $id, (string) $taxonomy, self::termName((int) $id, (string) $taxonomy), [
                'slug' => $t instanceof \WP_Term ? $t->slug : '',
            ]);
        }
    }

    /**
     * Deleted.
     *
     * @param mixed $deleted the term as it was
     */
    public static function termDeleted($id, $ttId, $taxonomy, $deleted = null, $objectIds = []): void
    {
        if (!self::followsTaxonomy((string) $taxonomy)) {
            return;
        }
        $name = $deleted instanceof \WP_Term ? $deleted->name : (self::$pending['term:' . $id]['name'] ?? '#' . $id);
        self::termEvent('deleted', (int) $id, (string) $taxonomy, $name, ['objects' => count((array) $objectIds)]);
    }

    /**
     * Settings on the allow-list, and widgets (their placement in
     * sidebars_widgets and their widget_* settings).
     *
     * @param mixed $old
     * @param mixed $new
     */
    public static function optionUpdated($option, $old, $new): void
    {
        $option = (string) $option;
        if ($option === 'sidebars_widgets') {
            self::widgetsMoved(is_array($old) ? $old : [], is_array($new) ? $new : []);
            return;
        }
        if (strncmp($option, 'widget_', 7) === 0) {
            $base = substr($option, 7);
            Recorder::record(
                'widget__updated',
                ['type' => 'widget', 'id' => $base, 'name' => $base],
                sprintf('Widget settings “%s” were updated', $base),
                [],
                null,
                Changes::option($option)
            );
            return;
        }
        if (!in_array($option, self::SETTINGS, true) || $old === $new) {
            return;
        }
        Recorder::record(
            'setting__updated',
            ['type' => 'option', 'id' => $option, 'name' => $option],
            sprintf('Setting “%s” was changed', $option),
            ['option' => $option, 'old' => self::scalar($old), 'new' => self::scalar($new)],
            null,
            Changes::option($option)
        );
    }

    /**
     * @param array<string, mixed> $old
     * @param array<string, mixed> $new
     */
    private static function widgetsMoved(array $old, array $new): void
    {
        $where = static function (array $sidebars): array {
            $w = [];
            foreach ($sidebars as $sidebar => $ids) {
                if ($sidebar !== 'array_version' && is_array($ids)) {
                    foreach ($ids as $id) {
                        $w[(string) $id] = (string) $sidebar;
                    }
                }
            }
            return $w;
        };
        $before = $where($old);
        $after = $where($new);
        foreach ($after as $id => $sidebar) {
            if (!isset($before[$id]) || $before[$id] === 'wp_inactive_widgets' && $sidebar !== 'wp_inactive_widgets') {
                Recorder::record(
                    'widget__added',
                    ['type' => 'widget', 'id' => $id, 'name' => $id],
                    sprintf('Widget “%s” was added to %s', $id, $sidebar),
                    ['sidebar' => $sidebar],
                    null,
                    Changes::option('sidebars_widgets')
                );
            } elseif ($before[$id] !== $sidebar) {
                $verb = $sidebar === 'wp_inactive_widgets' ? 'removed' : 'moved';
                Recorder::record(
                    'widget__' . $verb,
                    ['type' => 'widget', 'id' => $id, 'name' => $id],
                    sprintf('Widget “%s” was %s (%s → %s)', $id, $verb, $before[$id], $sidebar),
                    ['from' => $before[$id], 'to' => $sidebar],
                    null,
                    Changes::option('sidebars_widgets')
                );
            }
        }
        foreach ($before as $id => $sidebar) {
            if (!isset($after[$id])) {
                Recorder::record(
                    'widget__removed',
                    ['type' => 'widget', 'id' => $id, 'name' => $id],
                    sprintf('Widget “%s” was removed from %s', $id, $sidebar),
                    ['from' => $sidebar],
                    null,
                    Changes::option('sidebars_widgets')
                );
            }
        }
    }

    /**
     * @param mixed $v
     * @return mixed
     */
    private static function scalar($v)
    {
        if (is_scalar($v) || $v === null) {
            return is_string($v) ? mb_substr($v, 0, 500) : $v;
        }
        return mb_substr((string) wp_json_encode($v), 0, 500);
    }

    // ---- imports and exports -------------------------------------------

    /** An import started (WordPress Importer and importers that follow it). */
    public static function importStarted(): void
    {
        Recorder::record(
            'import__started',
            ['type' => 'import', 'id' => 'import', 'name' => 'import'],
            'An import started'
        );
    }

    /** An import finished. */
    public static function importFinished(): void
    {
        Recorder::record(
            'import__finished',
            ['type' => 'import', 'id' => 'import', 'name' => 'import'],
            'An import finished'
        );
    }

    /**
     * Tools → Export downloaded the site's content.
     *
     * @param mixed $args
     */
    public static function exported($args = []): void
    {
        $content = is_array($args) && isset($args['content']) ? (string) $args['content'] : 'all';
        Recorder::record(
            'export__downloaded',
            ['type' => 'export', 'id' => $content, 'name' => $content],
            sprintf('The site\'s content was exported (%s)', $content),
            ['args' => is_array($args) ? array_map([self::class, 'scalar'], $args) : []]
        );
    }
}
