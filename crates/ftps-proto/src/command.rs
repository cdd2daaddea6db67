//! Commands sent by the client on the control connection.
//!
//! This module owns the syntax of FTP commands: parsing one command line
//! (already framed and Telnet-decoded by [`crate::line`]) into a [`Command`],
//! the error replies for lines that cannot be parsed (RFC 959 §4.2: 500, 501,
//! 504; RFC 2428 §2: 522), and encoding commands for the client side. It
//! covers the commands of RFC 959 §4.1 and §5.3, the `X` aliases of
//! RFC 1123 §4.1.3.1 / RFC 775, `AUTH`/`PBSZ`/`PROT`/`CCC` of RFC 2228 and
//! RFC 4217, `FEAT`/`OPTS` of RFC 2389, `EPRT`/`EPSV` of RFC 2428 and
//! `SIZE`/`MDTM`/`REST`/`MLST`/`MLSD` of RFC 3659. Arguments are bytes:
//! pathnames need not be UTF-8.

use std::net::{SocketAddr, SocketAddrV4};

use crate::address::{self, AddressError};
use crate::reply::Reply;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(Vec<u8>),
    /// `PASS password` (the password may be empty).
    Pass(Vec<u8>),
    /// `ACCT account`.
    Acct(Vec<u8>),
    /// `QUIT`.
    Quit,
    /// `REIN`.
    Rein,
    /// `NOOP`.
    Noop,
    /// `SYST`.
    Syst,
    /// `FEAT` (RFC 2389).
    Feat,
    /// `OPTS` with its raw argument, e.g. `UTF8 ON` or `MLST type;size;`.
    Opts(Vec<u8>),
    /// `HELP [topic]`.
    Help(Option<Vec<u8>>),
    /// `STAT [path]`.
    Stat(Option<Vec<u8>>),
    /// `SITE` with its raw argument.
    Site(Vec<u8>),
    /// `CWD path` (also `XCWD`).
    Cwd(Vec<u8>),
    /// `CDUP` (also `XCUP`).
    Cdup,
    /// `PWD` (also `XPWD`).
    Pwd,
    /// `MKD path` (also `XMKD`).
    Mkd(Vec<u8>),
    /// `RMD path` (also `XRMD`).
    Rmd(Vec<u8>),
    /// `DELE path`.
    Dele(Vec<u8>),
    /// `RNFR path`.
    Rnfr(Vec<u8>),
    /// `RNTO path`.
    Rnto(Vec<u8>),
    /// `SIZE path` (RFC 3659 §4).
    Size(Vec<u8>),
    /// `MDTM path` (RFC 3659 §3).
    Mdtm(Vec<u8>),
    /// `TYPE` with a supported representation type.
    Type(TransferType),
    /// `STRU F` (the only structure accepted).
    Stru,
    /// `MODE S` (the only mode accepted).
    Mode,
    /// `PORT h1,h2,h3,h4,p1,p2`.
    Port(SocketAddrV4),
    /// `PASV`.
    Pasv,
    /// `EPRT |af|addr|port|` (RFC 2428 §2).
    Eprt(SocketAddr),
    /// `EPSV [af|ALL]` (RFC 2428 §3).
    Epsv(EpsvArg),
    /// `REST offset` (RFC 3659 §5).
    Rest(u64),
    /// `RETR path`.
    Retr(Vec<u8>),
    /// `STOR path`.
    Stor(Vec<u8>),
    /// `STOU [name]`.
    Stou(Option<Vec<u8>>),
    /// `APPE path`.
    Appe(Vec<u8>),
    /// `ALLO` (its argument is ignored).
    Allo,
    /// `LIST [path]`, leading `-options` removed.
    List(Option<Vec<u8>>),
    /// `NLST [path]`, leading `-options` removed.
    Nlst(Option<Vec<u8>>),
    /// `MLSD [path]` (RFC 3659 §7).
    Mlsd(Option<Vec<u8>>),
    /// `MLST [path]` (RFC 3659 §7).
    Mlst(Option<Vec<u8>>),
    /// `ABOR`.
    Abor,
    /// `AUTH mechanism`, the mechanism as sent (RFC 2228, RFC 4217 §4).
    Auth(Vec<u8>),
    /// `PBSZ size` (RFC 2228, RFC 4217 §8).
    Pbsz(u64),
    /// `PROT level` (RFC 2228, RFC 4217 §9).
    Prot(ProtArg),
    /// `CCC` (RFC 2228, RFC 4217 §6).
    Ccc,
    /// `MFMT time-val path` (draft-somers-ftp-mfxx): set the modification
    /// time, in seconds since the Unix epoch (UTC; fractions dropped).
    Mfmt {
        /// The new modification time.
        modified: i64,
        /// The file, as sent.
        path: Vec<u8>,
    },
    /// `HASH path` (draft-bryan-ftpext-hash).
    Hash(Vec<u8>),
    /// `RANG start end` (draft-bryan-ftp-range): the octets `start..=end`
    /// for the next HASH; `RANG 1 0` resets.
    Rang {
        /// The first octet.
        start: u64,
        /// The last octet, inclusive.
        end: u64,
    },
}

/// Representation types accepted by `TYPE` (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `A` or `A N`: ASCII, non-print format.
    Ascii,
    /// `I` or `L 8`: image (binary).
    Image,
}

/// The argument of `EPSV` (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument.
    Any,
    /// A network protocol number: 1 for IPv4, 2 for IPv6.
    Family(u16),
    /// `EPSV ALL`: only `EPSV` may be used from now on.
    All,
}

/// The argument of `PROT` (RFC 2228 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtArg {
    /// `C`: clear.
    Clear,
    /// `S`: safe (integrity only).
    Safe,
    /// `E`: confidential.
    Confidential,
    /// `P`: private (TLS).
    Private,
    /// Anything else, as sent.
    Other(Vec<u8>),
}

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The verb is not recognized (reply 500).
    #[error("unknown command {0:?}")]
    Unknown(String),
    /// A required argument is missing (reply 501).
    #[error("{0}")]
    MissingArgument(&'static str),
    /// The argument is invalid (reply 501).
    #[error("{0}")]
    InvalidArgument(&'static str),
    /// The command is known but not implemented for this parameter
    /// (reply 504).
    #[error("{0}")]
    NotImplementedForParameter(&'static str),
    /// `EPRT` named a network protocol other than 1 or 2 (reply 522,
    /// RFC 2428 §2).
    #[error("network protocol not supported")]
    UnsupportedNetworkProtocol,
    /// The line is blank (reply 500).
    #[error("empty command line")]
    Empty,
}

impl ParseError {
    /// The reply to send for this error.
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Unknown(verb) => Reply::new(500, format!("Command not understood: {verb}")),
            ParseError::MissingArgument(msg) | ParseError::InvalidArgument(msg) => {
                Reply::new(501, msg)
            }
            ParseError::NotImplementedForParameter(msg) => Reply::new(504, msg),
            ParseError::UnsupportedNetworkProtocol => {
                Reply::new(522, "Network protocol not supported, use (1,2)")
            }
            ParseError::Empty => Reply::new(500, "Empty command line"),
        }
    }
}

/// Why a command could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An argument contains CR or LF, which cannot be sent in a command.
    #[error("argument contains CR or LF")]
    LineBreak,
}

/// Parse one command line (without its line ending; a trailing CR or LF is
/// removed anyway).
///
/// The verb is case-insensitive and at most four ASCII letters. Spaces
/// before the verb and between the verb and the argument are skipped, except
/// for `PASS`, whose argument is everything after the first space. The
/// argument is kept as sent, including inner and trailing spaces; keyword
/// and number arguments (`TYPE`, `REST`, `PROT`, ...) may have trailing
/// spaces.
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = trim_start_spaces(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (
            line.get(..i).unwrap_or(line),
            line.get(i + 1..).unwrap_or(&[]),
        ),
        None => (line, &[][..]),
    };
    if verb.len() > 4 || !verb.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::Unknown(printable(verb)));
    }
    let upper = verb.to_ascii_uppercase();
    let arg = trim_start_spaces(rest);
    let cmd = match upper.as_slice() {
        b"USER" => Command::User(required(arg, "USER needs a user name")?),
        b"PASS" => Command::Pass(rest.to_vec()),
        b"ACCT" => Command::Acct(required(arg, "ACCT needs an account")?),
        b"QUIT" => Command::Quit,
        b"REIN" => Command::Rein,
        b"NOOP" => Command::Noop,
        b"SYST" => Command::Syst,
        b"FEAT" => Command::Feat,
        b"OPTS" => Command::Opts(required(arg, "OPTS needs an argument")?),
        b"HELP" => Command::Help(optional(arg)),
        b"STAT" => Command::Stat(optional(arg)),
        b"SITE" => Command::Site(required(arg, "SITE needs an argument")?),
        b"CWD" | b"XCWD" => Command::Cwd(required(arg, "CWD needs a directory")?),
        b"CDUP" | b"XCUP" => Command::Cdup,
        b"PWD" | b"XPWD" => Command::Pwd,
        b"MKD" | b"XMKD" => Command::Mkd(required(arg, "MKD needs a directory name")?),
        b"RMD" | b"XRMD" => Command::Rmd(required(arg, "RMD needs a directory name")?),
        b"DELE" => Command::Dele(required(arg, "DELE needs a file name")?),
        b"RNFR" => Command::Rnfr(required(arg, "RNFR needs a file name")?),
        b"RNTO" => Command::Rnto(required(arg, "RNTO needs a file name")?),
        b"SIZE" => Command::Size(required(arg, "SIZE needs a file name")?),
        b"MDTM" => Command::Mdtm(required(arg, "MDTM needs a file name")?),
        b"TYPE" => Command::Type(parse_type(keyword(arg, "TYPE needs an argument")?)?),
        b"STRU" => parse_stru(keyword(arg, "STRU needs an argument")?)?,
        b"MODE" => parse_mode(keyword(arg, "MODE needs an argument")?)?,
        b"PORT" => {
            let text = keyword_str(arg, "PORT needs h1,h2,h3,h4,p1,p2")?;
            Command::Port(address::parse_port_arg(text).map_err(|_| {
                ParseError::InvalidArgument("PORT needs h1,h2,h3,h4,p1,p2 with numbers 0-255")
            })?)
        }
        b"PASV" => Command::Pasv,
        b"EPRT" => {
            let text = keyword_str(arg, "EPRT needs |af|address|port|")?;
            Command::Eprt(address::parse_eprt_arg(text).map_err(|e| match e {
                AddressError::UnsupportedFamily(_) => ParseError::UnsupportedNetworkProtocol,
                AddressError::Malformed(_) => {
                    ParseError::InvalidArgument("EPRT needs |af|address|port|")
                }
            })?)
        }
        b"EPSV" => Command::Epsv(parse_epsv(arg)?),
        b"REST" => Command::Rest(
            decimal(keyword(arg, "REST needs a byte offset")?)
                .ok_or(ParseError::InvalidArgument("REST needs a decimal number"))?,
        ),
        b"RETR" => Command::Retr(required(arg, "RETR needs a file name")?),
        b"STOR" => Command::Stor(required(arg, "STOR needs a file name")?),
        b"STOU" => Command::Stou(optional(arg)),
        b"APPE" => Command::Appe(required(arg, "APPE needs a file name")?),
        b"ALLO" => Command::Allo,
        b"LIST" => Command::List(strip_list_options(arg)),
        b"NLST" => Command::Nlst(strip_list_options(arg)),
        b"MLSD" => Command::Mlsd(optional(arg)),
        b"MLST" => Command::Mlst(optional(arg)),
        b"ABOR" => Command::Abor,
        b"AUTH" => Command::Auth(required(arg, "AUTH needs a mechanism")?),
        b"PBSZ" => Command::Pbsz(
            decimal(keyword(arg, "PBSZ needs a decimal number")?)
                .ok_or(ParseError::InvalidArgument("PBSZ needs a decimal number"))?,
        ),
        b"PROT" => Command::Prot(parse_prot(keyword(arg, "PROT needs a level")?)),
        b"CCC" => Command::Ccc,
        b"MFMT" => parse_mfmt(arg)?,
        b"HASH" => Command::Hash(required(arg, "HASH needs a file name")?),
        b"RANG" => parse_rang(keyword(arg, "RANG needs a start and an end point")?)?,
        _ => return Err(ParseError::Unknown(printable(verb))),
    };
    Ok(cmd)
}

fn trim_start_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ').count();
    s.get(n..).unwrap_or_default()
}

fn trim_end_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().rev().take_while(|&&b| b == b' ').count();
    s.get(..s.len() - n).unwrap_or_default()
}

/// A verb for an error message: printable ASCII only, at most 16 characters.
fn printable(verb: &[u8]) -> String {
    verb.iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

fn required(arg: &[u8], msg: &'static str) -> Result<Vec<u8>, ParseError> {
    if arg.is_empty() {
        Err(ParseError::MissingArgument(msg))
    } else {
        Ok(arg.to_vec())
    }
}

fn optional(arg: &[u8]) -> Option<Vec<u8>> {
    (!arg.is_empty()).then(|| arg.to_vec())
}

/// A keyword or number argument: trailing spaces removed, must be present.
fn keyword<'a>(arg: &'a [u8], msg: &'static str) -> Result<&'a [u8], ParseError> {
    let word = trim_end_spaces(arg);
    if word.is_empty() {
        Err(ParseError::MissingArgument(msg))
    } else {
        Ok(word)
    }
}

/// Like [`keyword`], as text; non-UTF-8 bytes make it invalid.
fn keyword_str<'a>(arg: &'a [u8], msg: &'static str) -> Result<&'a str, ParseError> {
    std::str::from_utf8(keyword(arg, msg)?).map_err(|_| ParseError::InvalidArgument(msg))
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

const TYPE_UNSUPPORTED: &str = "Only TYPE A, A N, I and L 8 are supported";

fn parse_type(arg: &[u8]) -> Result<TransferType, ParseError> {
    let upper = arg.to_ascii_uppercase();
    let words: Vec<&[u8]> = upper
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        [b"A"] | [b"A", b"N"] => Ok(TransferType::Ascii),
        [b"I"] | [b"L", b"8"] => Ok(TransferType::Image),
        [b"A" | b"E", b"N" | b"T" | b"C"] | [b"E"] => {
            Err(ParseError::NotImplementedForParameter(TYPE_UNSUPPORTED))
        }
        [b"L", size] if decimal(size).is_some() => {
            Err(ParseError::NotImplementedForParameter(TYPE_UNSUPPORTED))
        }
        _ => Err(ParseError::InvalidArgument("Unknown TYPE")),
    }
}

fn parse_stru(arg: &[u8]) -> Result<Command, ParseError> {
    match arg.to_ascii_uppercase().as_slice() {
        b"F" => Ok(Command::Stru),
        b"R" | b"P" => Err(ParseError::NotImplementedForParameter(
            "Only STRU F is supported",
        )),
        _ => Err(ParseError::InvalidArgument("Unknown STRU")),
    }
}

fn parse_mode(arg: &[u8]) -> Result<Command, ParseError> {
    match arg.to_ascii_uppercase().as_slice() {
        b"S" => Ok(Command::Mode),
        b"B" | b"C" => Err(ParseError::NotImplementedForParameter(
            "Only MODE S is supported",
        )),
        _ => Err(ParseError::InvalidArgument("Unknown MODE")),
    }
}

fn parse_epsv(arg: &[u8]) -> Result<EpsvArg, ParseError> {
    let word = trim_end_spaces(arg);
    if word.is_empty() {
        return Ok(EpsvArg::Any);
    }
    if word.eq_ignore_ascii_case(b"ALL") {
        return Ok(EpsvArg::All);
    }
    decimal(word)
        .and_then(|n| u16::try_from(n).ok())
        .map(EpsvArg::Family)
        .ok_or(ParseError::InvalidArgument(
            "EPSV takes ALL or a protocol number",
        ))
}

fn parse_prot(arg: &[u8]) -> ProtArg {
    match arg.to_ascii_uppercase().as_slice() {
        b"C" => ProtArg::Clear,
        b"S" => ProtArg::Safe,
        b"E" => ProtArg::Confidential,
        b"P" => ProtArg::Private,
        _ => ProtArg::Other(arg.to_vec()),
    }
}

/// `MFMT YYYYMMDDHHMMSS[.sss] path` (draft-somers-ftp-mfxx §3.1).
fn parse_mfmt(arg: &[u8]) -> Result<Command, ParseError> {
    const USAGE: &str = "MFMT needs YYYYMMDDHHMMSS and a file name";
    let split = arg.iter().position(|&b| b == b' ');
    let (time, path) = match split {
        Some(i) => (
            arg.get(..i).unwrap_or_default(),
            trim_start_spaces(arg.get(i + 1..).unwrap_or_default()),
        ),
        None => return Err(ParseError::MissingArgument(USAGE)),
    };
    if path.is_empty() {
        return Err(ParseError::MissingArgument(USAGE));
    }
    let modified = std::str::from_utf8(time)
        .ok()
        .and_then(crate::timefmt::parse_time_val)
        .ok_or(ParseError::InvalidArgument(
            "MFMT: invalid time-val, expected YYYYMMDDHHMMSS (UTC)",
        ))?;
    Ok(Command::Mfmt {
        modified,
        path: path.to_vec(),
    })
}

/// `RANG start end` (draft-bryan-ftp-range §3): two decimal numbers; the end
/// may not be before the start, except `RANG 1 0`, the reset.
fn parse_rang(arg: &[u8]) -> Result<Command, ParseError> {
    const USAGE: &str = "RANG needs a start and an end point (decimal octet positions)";
    let mut words = arg.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let (Some(start), Some(end), None) = (words.next(), words.next(), words.next()) else {
        return Err(ParseError::InvalidArgument(USAGE));
    };
    let (Some(start), Some(end)) = (decimal(start), decimal(end)) else {
        return Err(ParseError::InvalidArgument(USAGE));
    };
    if end < start && (start, end) != (1, 0) {
        return Err(ParseError::InvalidArgument(
            "RANG: the end point is before the start point",
        ));
    }
    Ok(Command::Rang { start, end })
}

/// Remove leading `ls` option words (`-la`, `-a`, ...) from a `LIST`/`NLST`
/// argument, as many clients send them.
fn strip_list_options(arg: &[u8]) -> Option<Vec<u8>> {
    let mut rest = arg;
    while rest.first() == Some(&b'-') {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        rest = trim_start_spaces(rest.get(end..).unwrap_or_default());
    }
    optional(rest)
}

impl Command {
    /// The canonical upper-case verb, e.g. `"RETR"` (aliases such as `XCWD`
    /// give the RFC 959 name, `"CWD"`).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Acct(_) => "ACCT",
            Command::Quit => "QUIT",
            Command::Rein => "REIN",
            Command::Noop => "NOOP",
            Command::Syst => "SYST",
            Command::Feat => "FEAT",
            Command::Opts(_) => "OPTS",
            Command::Help(_) => "HELP",
            Command::Stat(_) => "STAT",
            Command::Site(_) => "SITE",
            Command::Cwd(_) => "CWD",
            Command::Cdup => "CDUP",
            Command::Pwd => "PWD",
            Command::Mkd(_) => "MKD",
            Command::Rmd(_) => "RMD",
            Command::Dele(_) => "DELE",
            Command::Rnfr(_) => "RNFR",
            Command::Rnto(_) => "RNTO",
            Command::Size(_) => "SIZE",
            Command::Mdtm(_) => "MDTM",
            Command::Type(_) => "TYPE",
            Command::Stru => "STRU",
            Command::Mode => "MODE",
            Command::Port(_) => "PORT",
            Command::Pasv => "PASV",
            Command::Eprt(_) => "EPRT",
            Command::Epsv(_) => "EPSV",
            Command::Rest(_) => "REST",
            Command::Retr(_) => "RETR",
            Command::Stor(_) => "STOR",
            Command::Stou(_) => "STOU",
            Command::Appe(_) => "APPE",
            Command::Allo => "ALLO",
            Command::List(_) => "LIST",
            Command::Nlst(_) => "NLST",
            Command::Mlsd(_) => "MLSD",
            Command::Mlst(_) => "MLST",
            Command::Abor => "ABOR",
            Command::Auth(_) => "AUTH",
            Command::Pbsz(_) => "PBSZ",
            Command::Prot(_) => "PROT",
            Command::Ccc => "CCC",
            Command::Mfmt { .. } => "MFMT",
            Command::Hash(_) => "HASH",
            Command::Rang { .. } => "RANG",
        }
    }

    /// Whether the command transfers data over a data connection
    /// (`RETR`, `STOR`, `STOU`, `APPE`, `LIST`, `NLST`, `MLSD`).
    pub fn opens_data_connection(&self) -> bool {
        matches!(
            self,
            Command::Retr(_)
                | Command::Stor(_)
                | Command::Stou(_)
                | Command::Appe(_)
                | Command::List(_)
                | Command::Nlst(_)
                | Command::Mlsd(_)
        )
    }

    /// The command as a client sends it: `VERB[ argument]` followed by CRLF,
    /// with 0xFF bytes in the argument doubled (Telnet `IAC IAC`,
    /// RFC 854). Fails if an argument contains CR or LF.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let text_arg = |s: String| Some(s.into_bytes());
        let arg: Option<Vec<u8>> = match self {
            Command::User(a)
            | Command::Pass(a)
            | Command::Acct(a)
            | Command::Opts(a)
            | Command::Site(a)
            | Command::Cwd(a)
            | Command::Mkd(a)
            | Command::Rmd(a)
            | Command::Dele(a)
            | Command::Rnfr(a)
            | Command::Rnto(a)
            | Command::Size(a)
            | Command::Mdtm(a)
            | Command::Retr(a)
            | Command::Stor(a)
            | Command::Appe(a)
            | Command::Auth(a)
            | Command::Hash(a) => Some(a.clone()),
            Command::Mfmt { modified, path } => {
                let mut arg = crate::timefmt::format_time_val(*modified).into_bytes();
                arg.push(b' ');
                arg.extend_from_slice(path);
                Some(arg)
            }
            Command::Rang { start, end } => text_arg(format!("{start} {end}")),
            Command::Help(a)
            | Command::Stat(a)
            | Command::Stou(a)
            | Command::List(a)
            | Command::Nlst(a)
            | Command::Mlsd(a)
            | Command::Mlst(a) => a.clone(),
            Command::Type(TransferType::Ascii) => Some(b"A".to_vec()),
            Command::Type(TransferType::Image) => Some(b"I".to_vec()),
            Command::Stru => Some(b"F".to_vec()),
            Command::Mode => Some(b"S".to_vec()),
            Command::Port(a) => text_arg(address::format_port_arg(*a)),
            Command::Eprt(a) => text_arg(address::format_eprt_arg(*a)),
            Command::Epsv(EpsvArg::Any) => None,
            Command::Epsv(EpsvArg::All) => Some(b"ALL".to_vec()),
            Command::Epsv(EpsvArg::Family(n)) => text_arg(n.to_string()),
            Command::Rest(n) | Command::Pbsz(n) => text_arg(n.to_string()),
            Command::Prot(p) => Some(match p {
                ProtArg::Clear => b"C".to_vec(),
                ProtArg::Safe => b"S".to_vec(),
                ProtArg::Confidential => b"E".to_vec(),
                ProtArg::Private => b"P".to_vec(),
                ProtArg::Other(o) => o.clone(),
            }),
            // QUIT, REIN, NOOP, SYST, FEAT, CDUP, PWD, PASV, ALLO, ABOR, CCC.
            _ => None,
        };
        let mut out = self.verb().as_bytes().to_vec();
        if let Some(arg) = arg {
            out.push(b' ');
            for b in arg {
                match b {
                    b'\r' | b'\n' => return Err(EncodeError::LineBreak),
                    0xFF => out.extend_from_slice(&[0xFF, 0xFF]),
                    _ => out.push(b),
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::line::LineReader;
    use proptest::prelude::*;

    fn ok(line: impl AsRef<[u8]>) -> Command {
        parse_command(line.as_ref()).unwrap()
    }

    fn err(line: impl AsRef<[u8]>) -> ParseError {
        parse_command(line.as_ref()).unwrap_err()
    }

    fn code(line: impl AsRef<[u8]>) -> u16 {
        err(line).reply().code
    }

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn check(cases: &[(&str, Command)]) {
        for (line, want) in cases {
            assert_eq!(&ok(line), want, "{line:?}");
        }
    }

    fn invalid(line: &str) -> bool {
        matches!(err(line), ParseError::InvalidArgument(_))
    }

    #[test]
    fn rfc959_verbs_are_case_insensitive() {
        check(&[
            ("user anna", Command::User(v("anna"))),
            ("NoOp", Command::Noop),
            ("retr File.TXT", Command::Retr(v("File.TXT"))),
        ]);
    }

    #[test]
    fn rfc959_argument_keeps_inner_and_trailing_spaces() {
        check(&[
            ("STOR  my file.txt  ", Command::Stor(v("my file.txt  "))),
            ("  CWD dir\r", Command::Cwd(v("dir"))),
        ]);
        let raw = b"RETR \xff\xfe\0x";
        assert_eq!(ok(raw), Command::Retr(b"\xff\xfe\0x".to_vec()));
    }

    #[test]
    fn rfc959_pass_argument_is_exact_and_may_be_empty() {
        check(&[
            ("PASS", Command::Pass(vec![])),
            ("PASS ", Command::Pass(vec![])),
            ("PASS  secret ", Command::Pass(v(" secret "))),
        ]);
    }

    #[test]
    fn rfc959_unknown_and_overlong_verbs_are_500() {
        assert_eq!(err("FOO x"), ParseError::Unknown("FOO".into()));
        assert_eq!(err("RETRX a"), ParseError::Unknown("RETRX".into()));
        assert_eq!(err("R3TR a"), ParseError::Unknown("R3TR".into()));
        assert_eq!(err("\x01\x02"), ParseError::Unknown("??".into()));
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("   "), ParseError::Empty);
        assert_eq!((code("FOO"), code("")), (500, 500));
    }

    #[test]
    fn rfc959_missing_required_argument_is_501() {
        for verb in [
            "USER", "CWD", "MKD", "RMD", "DELE", "RNFR", "RNTO", "SIZE", "MDTM", "RETR", "STOR",
            "APPE", "TYPE", "PORT", "EPRT", "REST", "AUTH", "PBSZ", "PROT", "OPTS", "SITE", "ACCT",
        ] {
            let e = err(format!("{verb}   "));
            assert!(matches!(e, ParseError::MissingArgument(_)), "{verb}: {e:?}");
            assert_eq!(e.reply().code, 501);
        }
    }

    #[test]
    fn rfc1123_x_aliases_map_to_rfc959_commands() {
        check(&[
            ("XCWD a", Command::Cwd(v("a"))),
            ("XCUP", Command::Cdup),
            ("XPWD", Command::Pwd),
            ("XMKD a", Command::Mkd(v("a"))),
            ("XRMD a", Command::Rmd(v("a"))),
        ]);
        assert_eq!(ok("XCWD a").verb(), "CWD");
    }

    #[test]
    fn rfc959_type_a_i_l8_accepted_others_504() {
        check(&[
            ("TYPE A", Command::Type(TransferType::Ascii)),
            ("type a n", Command::Type(TransferType::Ascii)),
            ("TYPE I ", Command::Type(TransferType::Image)),
            ("TYPE L 8", Command::Type(TransferType::Image)),
        ]);
        for t in ["E", "A T", "A C", "E N", "L 7", "L 16"] {
            assert_eq!(code(format!("TYPE {t}")), 504, "{t}");
        }
        for t in ["X", "A X", "I I", "L", "L x"] {
            assert!(invalid(&format!("TYPE {t}")), "{t}");
        }
    }

    #[test]
    fn rfc959_stru_f_and_mode_s_only() {
        check(&[("STRU f", Command::Stru), ("MODE S", Command::Mode)]);
        for line in ["STRU R", "STRU P", "MODE B", "MODE c"] {
            assert_eq!(code(line), 504, "{line}");
        }
        assert!(invalid("STRU X") && invalid("MODE Z"));
    }

    #[test]
    fn rfc959_port_parses_and_rejects_out_of_range() {
        let addr = "127.0.0.1:1025".parse().unwrap();
        assert_eq!(ok("PORT 127,0,0,1,4,1"), Command::Port(addr));
        assert!(invalid("PORT 127,0,0,1,4,256") && invalid("PORT 1,2,3"));
        assert!(matches!(err(b"PORT \xff"), ParseError::InvalidArgument(_)));
    }

    #[test]
    fn rfc2428_eprt_parses_and_unknown_family_is_522() {
        let v6 = "[::1]:2121".parse().unwrap();
        let v4 = "10.0.0.1:21".parse().unwrap();
        check(&[
            ("EPRT |2|::1|2121|", Command::Eprt(v6)),
            ("eprt !1!10.0.0.1!21! ", Command::Eprt(v4)),
        ]);
        let e = err("EPRT |3|x|21|");
        assert_eq!(e, ParseError::UnsupportedNetworkProtocol);
        let reply = e.reply().encode();
        assert_eq!(reply, b"522 Network protocol not supported, use (1,2)\r\n");
        assert!(invalid("EPRT |1|10.0.0.1|0|"));
    }

    #[test]
    fn rfc2428_epsv_arguments() {
        check(&[
            ("EPSV", Command::Epsv(EpsvArg::Any)),
            ("EPSV all", Command::Epsv(EpsvArg::All)),
            ("EPSV 2", Command::Epsv(EpsvArg::Family(2))),
            ("EPSV 7", Command::Epsv(EpsvArg::Family(7))),
        ]);
        assert!(invalid("EPSV x") && invalid("EPSV 70000"));
    }

    #[test]
    fn rfc3659_rest_takes_a_decimal_offset() {
        check(&[
            ("REST 0", Command::Rest(0)),
            ("REST 18446744073709551615", Command::Rest(u64::MAX)),
        ]);
        for bad in ["REST -1", "REST +1", "REST 1a", "REST 18446744073709551616"] {
            assert!(invalid(bad), "{bad}");
        }
    }

    #[test]
    fn rfc4217_auth_pbsz_prot_ccc() {
        check(&[
            ("AUTH tls", Command::Auth(v("tls"))),
            ("PBSZ 0", Command::Pbsz(0)),
            ("PROT p", Command::Prot(ProtArg::Private)),
            ("PROT C", Command::Prot(ProtArg::Clear)),
            ("PROT S", Command::Prot(ProtArg::Safe)),
            ("PROT E", Command::Prot(ProtArg::Confidential)),
            ("PROT Q", Command::Prot(ProtArg::Other(v("Q")))),
            ("CCC", Command::Ccc),
        ]);
        let e = ParseError::InvalidArgument("PBSZ needs a decimal number");
        assert_eq!(err("PBSZ x"), e);
    }

    #[test]
    fn list_and_nlst_strip_leading_option_words() {
        check(&[
            ("LIST", Command::List(None)),
            ("LIST -la", Command::List(None)),
            ("LIST -a /dir", Command::List(Some(v("/dir")))),
            ("NLST -l -a  my dir", Command::Nlst(Some(v("my dir")))),
            ("MLSD -x", Command::Mlsd(Some(v("-x")))),
        ]);
    }

    #[test]
    fn rfc959_optional_arguments_and_ignored_allo() {
        check(&[
            ("STAT", Command::Stat(None)),
            ("STAT /x", Command::Stat(Some(v("/x")))),
            ("HELP SITE", Command::Help(Some(v("SITE")))),
            ("STOU", Command::Stou(None)),
            ("ALLO 1024 R 512", Command::Allo),
            ("MLST", Command::Mlst(None)),
            ("OPTS UTF8 ON", Command::Opts(v("UTF8 ON"))),
        ]);
    }

    #[test]
    fn data_commands_open_a_data_connection() {
        for c in ["RETR a", "STOR a", "STOU", "APPE a", "LIST", "NLST", "MLSD"] {
            assert!(ok(c).opens_data_connection(), "{c}");
        }
        for c in ["MLST", "STAT", "SIZE a", "PASV", "ABOR"] {
            assert!(!ok(c).opens_data_connection(), "{c}");
        }
    }

    #[test]
    fn rfc854_encode_doubles_iac_and_refuses_line_breaks() {
        let retr = Command::Retr(b"a\xffb".to_vec()).encode().unwrap();
        assert_eq!(retr, b"RETR a\xff\xffb\r\n");
        let evil = Command::Cwd(v("a\r\nDELE x")).encode();
        assert_eq!(evil, Err(EncodeError::LineBreak));
        assert_eq!(Command::Epsv(EpsvArg::Any).encode().unwrap(), b"EPSV\r\n");
    }

    fn bytes(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
        let byte = any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n');
        proptest::collection::vec(byte, len)
    }

    fn arg() -> impl Strategy<Value = Vec<u8>> {
        bytes(1..30).prop_filter("no leading space", |a| a.first() != Some(&b' '))
    }

    fn command() -> impl Strategy<Value = Command> {
        let path = prop_oneof![
            arg().prop_map(Command::User),
            bytes(0..30).prop_map(Command::Pass),
            arg().prop_map(Command::Cwd),
            arg().prop_map(Command::Retr),
            arg().prop_map(Command::Stor),
            arg().prop_map(Command::Rnto),
            arg().prop_map(Command::Site),
            proptest::option::of(arg()).prop_map(Command::Mlsd),
            proptest::option::of(arg().prop_filter("no option", |a| a.first() != Some(&b'-')))
                .prop_map(Command::List),
        ];
        let fixed = proptest::sample::select(vec![
            Command::Quit,
            Command::Pwd,
            Command::Pasv,
            Command::Stru,
            Command::Mode,
            Command::Allo,
            Command::Ccc,
            Command::Abor,
            Command::Type(TransferType::Ascii),
            Command::Type(TransferType::Image),
            Command::Prot(ProtArg::Private),
            Command::Epsv(EpsvArg::All),
        ]);
        let typed = prop_oneof![
            any::<u64>().prop_map(Command::Rest),
            any::<u64>().prop_map(Command::Pbsz),
            any::<u16>().prop_map(|n| Command::Epsv(EpsvArg::Family(n))),
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| Command::Port(SocketAddrV4::new(ip.into(), p))),
            (any::<[u8; 16]>(), 1u16..).prop_map(|(ip, p)| Command::Eprt(SocketAddr::new(
                std::net::Ipv6Addr::from(ip).into(),
                p
            ))),
        ];
        prop_oneof![path, fixed, typed]
    }

    /// draft-somers-ftp-mfxx §3.1: `MFMT time-val path`, UTC, fractions
    /// dropped; a bad time is 501, a missing path 501.
    #[test]
    fn mfxx_mfmt_parses_time_and_path() {
        assert_eq!(
            ok("MFMT 20240229123456 dir/a file.txt"),
            Command::Mfmt {
                modified: 1_709_210_096,
                path: v("dir/a file.txt")
            }
        );
        assert_eq!(
            ok("mfmt 20240229123456.789 f"),
            Command::Mfmt {
                modified: 1_709_210_096,
                path: v("f")
            }
        );
        for bad in ["MFMT 20241399000000 f", "MFMT yesterday f", "MFMT 2024 f"] {
            assert_eq!(code(bad), 501, "{bad}");
        }
        assert_eq!(code("MFMT 20240229123456"), 501);
        assert_eq!(code("MFMT"), 501);
    }

    /// draft-bryan-ftpext-hash §3: `HASH path`; without a path 501.
    #[test]
    fn hash_draft_hash_needs_a_path() {
        assert_eq!(ok("HASH some file.bin"), Command::Hash(v("some file.bin")));
        assert_eq!(code("HASH"), 501);
    }

    /// draft-bryan-ftp-range §3: `RANG start end`, end inclusive; end before
    /// start is 501 except the reset `RANG 1 0`.
    #[test]
    fn range_draft_rang_parses_and_reset_is_1_0() {
        assert_eq!(ok("RANG 0 49"), Command::Rang { start: 0, end: 49 });
        assert_eq!(ok("RANG 1 0"), Command::Rang { start: 1, end: 0 });
        for bad in ["RANG 10 5", "RANG 5", "RANG a b", "RANG 1 2 3", "RANG"] {
            assert_eq!(code(bad), 501, "{bad}");
        }
    }

    #[test]
    fn mfmt_hash_rang_round_trip() {
        for cmd in [
            Command::Mfmt {
                modified: 1_700_000_000,
                path: v("a b"),
            },
            Command::Hash(v("x/y")),
            Command::Rang { start: 3, end: 9 },
        ] {
            let line = cmd.encode().unwrap();
            assert_eq!(parse_command(&line), Ok(cmd));
        }
    }

    proptest! {
        #[test]
        fn prop_encode_frame_parse_round_trip(cmd in command()) {
            let mut reader = LineReader::default();
            reader.push(&cmd.encode().unwrap());
            let line = reader.next_line().unwrap().unwrap();
            prop_assert_eq!(parse_command(&line), Ok(cmd));
        }

        #[test]
        fn prop_parse_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in "(?i)(user|pass|type|port|eprt|epsv|list|rest|prot|stru|mode|pbsz) [ -~]{0,30}",
        ) {
            if let Err(e) = parse_command(&bytes) {
                let _ = e.reply().encode();
            }
            let _ = parse_command(text.as_bytes());
        }
    }
}
