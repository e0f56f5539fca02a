<?php

/**
 * Builds the installable zip of the sitevault connector plugin:
 *
 *     php connector/build.php bin/sitevault-connector.zip
 *
 * The zip holds the folder sitevault-connector/ at its root (what
 * WordPress's Upload Plugin expects), its files in a stable order. It
 * needs PHP's zip extension (Debian: php-zip, installed by
 * scripts/deps.sh test).
 */

if ($argc !== 2) {
    fwrite(STDERR, "usage: php connector/build.php OUTPUT.zip\n");
    exit(2);
}
if (!class_exists('ZipArchive')) {
    fwrite(
        STDERR,
        "build.php: PHP's zip extension is missing: apt-get install php-zip (or run scripts/deps.sh test)\n"
    );
    exit(1);
}

$source = __DIR__ . '/sitevault-connector';
$out = $argv[1];
if (!is_dir(dirname($out)) && !mkdir(dirname($out), 0777, true)) {
    fwrite(STDERR, "build.php: cannot create the folder of $out\n");
    exit(1);
}
$files = [];
$walk = new RecursiveIteratorIterator(new RecursiveDirectoryIterator($source, FilesystemIterator::SKIP_DOTS));
foreach ($walk as $f) {
    if ($f->isFile()) {
        $files[] = substr($f->getPathname(), strlen($source) + 1);
    }
}
sort($files);
$tmp = $out . '.tmp';
@unlink($tmp);
$zip = new ZipArchive();
if ($zip->open($tmp, ZipArchive::CREATE | ZipArchive::EXCL) !== true) {
    fwrite(STDERR, "build.php: cannot create $tmp\n");
    exit(1);
}
$zip->addEmptyDir('sitevault-connector');
foreach ($files as $rel) {
    $name = 'sitevault-connector/' . str_replace(DIRECTORY_SEPARATOR, '/', $rel);
    if (!$zip->addFile($source . '/' . $rel, $name)) {
        fwrite(STDERR, "build.php: cannot add $rel\n");
        exit(1);
    }
}
if (!$zip->close() || !rename($tmp, $out)) {
    fwrite(STDERR, "build.php: cannot write $out\n");
    exit(1);
}
printf("%s: %d files\n", $out, count($files));
