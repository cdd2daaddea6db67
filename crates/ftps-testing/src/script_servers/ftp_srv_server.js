// ftp-srv (npm) with explicit FTPS, for the FTPS interop tests of the ftps
// client. Started by ftps_testing::script_servers:
//   node ftp_srv_server.js ROOT USER PASSWORD CERT KEY PASV_MIN PASV_MAX
// Listens on 127.0.0.1 on a port the kernel picks and prints
// "LISTENING <port>" on stdout once it accepts connections. Login is
// refused until AUTH TLS (ftp-srv has no such option: the login handler
// checks it); ftp-srv then runs TLS on every data connection (PROT C gets
// 536) and sends its 150 only once the data connection's TLS handshake is
// done. Exits by itself when the process that started it is gone.
'use strict';
const fs = require('fs');
const path = require('path');
const FtpSrv = require('ftp-srv');
// bunyan comes with ftp-srv (its logger).
const bunyan = require(require.resolve('bunyan', {paths: [path.dirname(require.resolve('ftp-srv'))]}));

const [root, user, password, cert, key, pasvMin, pasvMax] = process.argv.slice(2);
const parent = process.ppid;

const server = new FtpSrv({
  url: 'ftp://127.0.0.1:0',
  pasv_url: '127.0.0.1',
  pasv_min: Number(pasvMin),
  pasv_max: Number(pasvMax),
  anonymous: false,
  greeting: 'ftp-srv test server',
  tls: {cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
  log: bunyan.createLogger({name: 'ftp-srv', level: 'warn', stream: process.stderr}),
});

server.on('login', ({connection, username, password: given}, resolve, reject) => {
  if (!connection.secure) {
    reject(new Error('TLS required: send AUTH TLS first'));
  } else if (username === user && given === password) {
    resolve({root});
  } else {
    reject(new Error('Login incorrect'));
  }
});

server.listen().then(() => {
  console.log(`LISTENING ${server.server.address().port}`);
});

setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000);
