<?php
// PHP's ftp extension (ftp_ssl_connect: explicit FTPS, OpenSSL) against an
// FTPS server, driven by crates/ftps-server/tests/interop_php.rs.
//
// Environment: FTP_HOST (default 127.0.0.1), FTP_PORT, FTP_USER,
// FTP_PASSWORD, LOCAL_DIR (a directory of this machine for the files that
// go up and come down), ROUNDS (uploads and downloads each).
//
// Scenario "alternate": ROUNDS times, upload LOCAL_DIR/up-N.bin as up-N.bin,
// then download it back as LOCAL_DIR/down-N.bin (each on its own data
// connection, all on one control connection), then NLIST, SIZE, MDTM and
// DELETE of the first file. Prints one line per step ("PUT n ok",
// "GET n ok", ...) and "OK" at the end; on the first failure prints
// "FAIL step: reason" with PHP's last warning and the server's last reply
// when PHP knows it, and exits 1.
$host = getenv('FTP_HOST') ?: '127.0.0.1';
$port = (int) getenv('FTP_PORT');
$user = getenv('FTP_USER');
$password = getenv('FTP_PASSWORD');
$dir = getenv('LOCAL_DIR');
$rounds = (int) (getenv('ROUNDS') ?: '20');
$scenario = $argv[1] ?? 'alternate';

$last_warning = '';
set_error_handler(function ($no, $text) use (&$last_warning) {
    $last_warning = $text;
    return true;
});

function fail(string $step, string $why): void
{
    global $last_warning;
    echo "FAIL $step: $why" . ($last_warning !== '' ? " (warning: $last_warning)" : '') . "\n";
    exit(1);
}

$ftp = ftp_ssl_connect($host, $port, 30);
if ($ftp === false) {
    fail('connect', 'ftp_ssl_connect failed');
}
if (!ftp_login($ftp, $user, $password)) {
    fail('login', 'ftp_login failed');
}
if (!ftp_pasv($ftp, true)) {
    fail('pasv', 'ftp_pasv failed');
}
echo "LOGIN ok\n";

if ($scenario !== 'alternate') {
    fail('scenario', "unknown scenario $scenario");
}
for ($i = 1; $i <= $rounds; $i++) {
    if (!ftp_put($ftp, "up-$i.bin", "$dir/up-$i.bin", FTP_BINARY)) {
        fail("PUT $i", 'ftp_put failed');
    }
    echo "PUT $i ok\n";
    if (!ftp_get($ftp, "$dir/down-$i.bin", "up-$i.bin", FTP_BINARY)) {
        fail("GET $i", 'ftp_get failed');
    }
    echo "GET $i ok\n";
}
$names = ftp_nlist($ftp, '.');
if ($names === false) {
    fail('NLIST', 'ftp_nlist failed');
}
sort($names);
echo 'NLIST ' . count($names) . "\n";
$size = ftp_size($ftp, 'up-1.bin');
echo "SIZE $size\n";
$mdtm = ftp_mdtm($ftp, 'up-1.bin');
if ($mdtm <= 0) {
    fail('MDTM', 'ftp_mdtm failed');
}
echo "MDTM ok\n";
if (!ftp_delete($ftp, 'up-1.bin')) {
    fail('DELETE', 'ftp_delete failed');
}
echo "DELETE ok\n";
ftp_close($ftp);
echo "OK\n";
