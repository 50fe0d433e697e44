// send_xoauth2.js -- send one message with nodemailer, authenticating with
// SASL XOAUTH2 (auth: {type: 'OAuth2', user, accessToken}).
//
//   node send_xoauth2.js --port P --user U --token T
//                        [--starttls | --tls] [--ca FILE] [--host H]
//                        [--from ADDR] [--to ADDR] [--name EHLO-NAME]
//                        [--verbose]
//
// --starttls  require STARTTLS before AUTH (nodemailer requireTLS)
// --tls       implicit TLS (SMTPS, RFC 8314)
//             neither: plain text, STARTTLS ignored even if offered
// --ca FILE   verify the server certificate against FILE (hostname
//             checking off: the tests' certificates name test.local);
//             without it the certificate is not verified
// --verbose   copy the SMTP conversation to stderr
//
// Prints the server's final reply (info.response) and exits 0; on an SMTP
// error prints the failing reply (err.response, code included) and exits
// 1, with err.code (EAUTH, EENVELOPE...) on stderr; on any other error (connection, TLS) prints the error and
// exits 2.  Note: when the XOAUTH2 attempt fails, nodemailer answers the
// 334 error challenge with an empty line and then retries AUTH XOAUTH2
// once with the same token before giving up, so the server sees two
// attempts.

import * as fs from 'node:fs';

import nodemailer from 'nodemailer';

const FLAGS = new Set(['starttls', 'tls', 'verbose']);

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const name = a.slice(2);
    if (FLAGS.has(name)) {
      args[name] = true;
    } else {
      if (argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
      args[name] = argv[++i];
    }
  }
  for (const need of ['port', 'user', 'token']) {
    if (args[need] === undefined) throw new Error(`--${need} is required`);
  }
  return args;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`send_xoauth2: ${err.message}\n`);
  process.exit(2);
}

const tls = args.ca
  ? {
    ca: fs.readFileSync(args.ca),
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
  }
  : { rejectUnauthorized: false };

const verboseLogger = {
  level() {},
  trace() {},
  debug(entry, msg, ...rest) { this.info(entry, msg, ...rest); },
  info(entry, msg, ...rest) {
    let i = 0;
    const text = String(msg).replace(/%[sd]/g, () => String(rest[i++]));
    process.stderr.write(`${text}\n`);
  },
  warn(...a) { this.info(...a); },
  error(...a) { this.info(...a); },
  fatal(...a) { this.info(...a); },
};

const transport = nodemailer.createTransport({
  host: args.host || '127.0.0.1',
  port: Number(args.port),
  secure: !!args.tls,
  requireTLS: !!args.starttls,
  ignoreTLS: !args.starttls && !args.tls,
  name: args.name || 'nodemailer.client.example',
  tls,
  auth: {
    type: 'OAuth2',
    user: args.user,
    accessToken: args.token,
  },
  connectionTimeout: 10000,
  greetingTimeout: 10000,
  socketTimeout: 20000,
  logger: args.verbose ? verboseLogger : false,
  debug: !!args.verbose,
});

const from = args.from || args.user;
const to = args.to || 'rcpt@test.local';

try {
  const info = await transport.sendMail({
    from,
    to,
    subject: 'XOAUTH2 test',
    text: 'Sent by nodemailer with SASL XOAUTH2.\n',
  });
  process.stdout.write(`${info.response}\n`);
  process.exit(0);
} catch (err) {
  if (err.responseCode) {
    process.stdout.write(`${err.response}\n`);
    process.stderr.write(`${err.code || 'ERROR'}: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${err.code || 'ERROR'}: ${err.message}\n`);
  process.exit(2);
}
