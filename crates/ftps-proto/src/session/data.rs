//! Data-port and file commands: PASV/EPSV (RFC 959, RFC 2428 §3), PORT/EPRT
//! with the bounce protections of RFC 2577, the data-opening commands with
//! RFC 4217 §10.2's "521 before any 1xx", transfers and their replies, and the
//! file commands of RFC 959 and RFC 3659 (SIZE, MDTM, MLST).

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::address;
use crate::command::EpsvArg;
use crate::entry::{EntryKind, Permissions};

/// Ports below this are refused for PORT/EPRT (RFC 2577 §3).
pub const MIN_ACTIVE_PORT: u16 = 1024;

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl ServerSession {
    fn family_number(&self) -> u16 {
        match canonical(self.config.local.ip()) {
            IpAddr::V4(_) => 1,
            IpAddr::V6(_) => 2,
        }
    }

    /// PASV or EPSV: ask for a passive listener.
    pub(super) fn cmd_passive(&mut self, kind: PassiveKind) {
        if self.epsv_all && kind == PassiveKind::Pasv {
            self.reply(
                503,
                "EPSV ALL in effect: only EPSV is accepted (RFC 2428 §3).",
            );
            return;
        }
        if kind == PassiveKind::Pasv && self.family_number() != 1 {
            self.reply(501, "PASV works only over IPv4; use EPSV.");
            return;
        }
        self.reset_data_port();
        self.pending = Some(Pending::Passive(kind));
        self.push(Action::OpenPassive(kind));
    }

    /// RFC 2428 §3: EPSV, EPSV <af>, EPSV ALL.
    pub(super) fn cmd_epsv(&mut self, arg: EpsvArg) {
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.reply(200, "EPSV ALL ok.");
            }
            EpsvArg::Family(n) if n != self.family_number() => {
                let ours = self.family_number();
                self.reply(522, format!("Network protocol not supported, use ({ours})"));
            }
            EpsvArg::Family(_) | EpsvArg::Any => self.cmd_passive(PassiveKind::Epsv),
        }
    }

    /// The I/O layer opened (or failed to open) the passive listener; `addr`
    /// is the address to announce.
    pub fn handle_passive_opened(&mut self, addr: Option<SocketAddr>) {
        let kind = match self.pending.take() {
            Some(Pending::Passive(kind)) => kind,
            other => {
                self.pending = other;
                return;
            }
        };
        match (kind, addr) {
            (PassiveKind::Pasv, Some(addr)) => match canonical(addr.ip()) {
                IpAddr::V4(ip) => {
                    self.data_port = DataPort::Passive;
                    let text = address::format_pasv_reply_text(std::net::SocketAddrV4::new(
                        ip,
                        addr.port(),
                    ));
                    self.reply(227, text);
                }
                IpAddr::V6(_) => {
                    self.push(Action::ClosePassive);
                    self.reply(425, "No IPv4 address to announce for PASV; use EPSV.");
                }
            },
            (PassiveKind::Epsv, Some(addr)) => {
                self.data_port = DataPort::Passive;
                self.reply(229, address::format_epsv_reply_text(addr.port()));
            }
            (_, None) => self.reply(425, "Cannot open a passive data port; try again."),
        }
        self.run_deferred();
    }

    /// PORT or EPRT: only to the client's own address and a port >= 1024
    /// (RFC 2577 §3, bounce attack; RFC 4217 §15.2.1).
    pub(super) fn cmd_active(&mut self, addr: SocketAddr, extended: bool) {
        let verb = if extended { "EPRT" } else { "PORT" };
        if self.epsv_all {
            self.reply(
                503,
                "EPSV ALL in effect: only EPSV is accepted (RFC 2428 §3).",
            );
            return;
        }
        if canonical(addr.ip()) != canonical(self.config.peer.ip()) {
            self.reply(
                504,
                format!("{verb} refused: the address must be the client's own (RFC 2577 bounce protection)."),
            );
            return;
        }
        if addr.port() < MIN_ACTIVE_PORT {
            self.reply(
                504,
                format!(
                    "{verb} refused: ports below {MIN_ACTIVE_PORT} are not allowed (RFC 2577)."
                ),
            );
            return;
        }
        self.reset_data_port();
        self.data_port = DataPort::Active(addr);
        self.reply(200, format!("{verb} command successful."));
    }

    /// Everything else: data-opening commands and file commands.
    pub(super) fn dispatch_file_command(&mut self, command: Command) {
        match command {
            Command::Retr(arg) => {
                let offset = self.rest;
                self.start_transfer("RETR", false, &arg, |path| TransferKind::Retrieve {
                    path,
                    offset,
                });
            }
            Command::Stor(arg) => {
                let mode = match self.rest {
                    0 => StoreMode::Create,
                    n => StoreMode::Resume(n),
                };
                self.start_transfer("STOR", true, &arg, |path| TransferKind::Store {
                    path,
                    mode,
                });
            }
            Command::Appe(arg) => {
                self.start_transfer("APPE", true, &arg, |path| TransferKind::Store {
                    path,
                    mode: StoreMode::Append,
                })
            }
            // RFC 959 STOU takes no argument; the file goes into the cwd.
            Command::Stou(_) => {
                self.start_transfer("STOU", true, b"", |path| TransferKind::Store {
                    path,
                    mode: StoreMode::Unique,
                })
            }
            Command::List(arg) => self.start_listing("LIST", arg, ListFormat::List),
            Command::Nlst(arg) => self.start_listing("NLST", arg, ListFormat::Nlst),
            Command::Mlsd(arg) => self.start_listing("MLSD", arg, ListFormat::Mlsd),
            Command::Cwd(arg) => self.request_stat(&arg, Pending::Cwd),
            Command::Cdup => self.request_stat(b"..", Pending::Cwd),
            Command::Pwd => {
                let mut text = crate::reply::quote_path(&self.cwd.to_bytes());
                text.extend_from_slice(b" is the current directory.");
                self.reply(257, text);
            }
            Command::Size(arg) => self.request_stat(&arg, Pending::Size),
            Command::Mdtm(arg) => self.request_stat(&arg, Pending::Mdtm),
            Command::Mlst(arg) => self.request_stat(&arg.unwrap_or_default(), Pending::Mlst),
            Command::Mkd(arg) => {
                self.request_change(&arg, |p| (Pending::Mkd(p.clone()), FsRequest::MakeDir(p)))
            }
            Command::Rmd(arg) => {
                self.request_change(&arg, |p| (Pending::Rmd, FsRequest::RemoveDir(p)))
            }
            Command::Dele(arg) => {
                self.request_change(&arg, |p| (Pending::Dele, FsRequest::Delete(p)))
            }
            Command::Rnfr(arg) => {
                if self.refuse_unless_writable() {
                    return;
                }
                self.request_stat(&arg, Pending::Rnfr);
            }
            Command::Rnto(arg) => match self.rename_from.take() {
                None => self.reply(503, "Send RNFR first."),
                Some(from) => {
                    self.request_change(&arg, |to| (Pending::Rnto, FsRequest::Rename { from, to }))
                }
            },
            other => self.reply(502, format!("{} not implemented.", other.verb())),
        }
    }

    pub(super) fn refuse_unless_writable(&mut self) -> bool {
        if self.can_write() {
            return false;
        }
        self.reply(550, "Permission denied: this account is read-only.");
        true
    }

    fn request_stat(&mut self, arg: &[u8], pending: impl FnOnce(VirtualPath) -> Pending) {
        if let Some(path) = self.resolve(arg) {
            self.pending = Some(pending(path.clone()));
            self.push(Action::Fs(FsRequest::Stat(path)));
        }
    }

    fn request_change(
        &mut self,
        arg: &[u8],
        make: impl FnOnce(VirtualPath) -> (Pending, FsRequest),
    ) {
        if self.refuse_unless_writable() {
            return;
        }
        if let Some(path) = self.resolve(arg) {
            if path.is_root() {
                self.reply(550, "Permission denied: the root cannot be changed.");
                return;
            }
            let (pending, request) = make(path);
            self.pending = Some(pending);
            self.push(Action::Fs(request));
        }
    }

    /// STAT with a path: a listing over the control connection.
    pub(super) fn cmd_stat_path(&mut self, arg: &[u8]) {
        self.request_stat(arg, Pending::StatPath);
    }

    /// RFC 4217 §10.2: the checks that come before any 1xx reply.
    fn data_command_allowed(&mut self, write: bool) -> Option<DataEndpoint> {
        if self.effective_policy().require_prot_p && self.prot != DataProtection::Private {
            self.reply(
                521,
                "Data connection cannot be opened with this PROT setting: send PBSZ 0 and PROT P.",
            );
            return None;
        }
        if write && self.refuse_unless_writable() {
            return None;
        }
        match self.data_port {
            DataPort::None => {
                self.reply(425, "Use PASV, EPSV, PORT or EPRT first.");
                None
            }
            DataPort::Passive => Some(DataEndpoint::Passive),
            DataPort::Active(addr) => Some(DataEndpoint::Active(addr)),
        }
    }

    fn start_transfer(
        &mut self,
        verb: &'static str,
        write: bool,
        arg: &[u8],
        kind: impl FnOnce(VirtualPath) -> TransferKind,
    ) {
        let Some(endpoint) = self.data_command_allowed(write) else {
            return;
        };
        let Some(path) = self.resolve(arg) else {
            return;
        };
        let kind = kind(path);
        self.begin(verb, kind, endpoint);
    }

    fn start_listing(&mut self, verb: &'static str, arg: Option<Vec<u8>>, format: ListFormat) {
        self.start_transfer(verb, false, &arg.unwrap_or_default(), |path| {
            TransferKind::List { path, format }
        });
    }

    fn begin(&mut self, verb: &'static str, kind: TransferKind, endpoint: DataEndpoint) {
        let policy = self.effective_policy();
        let request = TransferRequest {
            kind,
            transfer_type: self.transfer_type,
            protection: self.prot,
            require_session_reuse: policy.require_session_reuse,
            accept_upload_without_close_notify: policy.accept_upload_without_close_notify,
            endpoint,
            facts: self.facts.clone(),
            permissions: Permissions {
                read: true,
                write: self.can_write(),
            },
        };
        // The passive listener moves into the transfer; the port is used up.
        self.data_port = DataPort::None;
        self.rest = 0;
        self.transfer = Transfer::Running {
            verb,
            started: false,
            aborting: false,
            bytes: 0,
        };
        self.push(Action::StartTransfer(request));
    }

    /// ABOR during a transfer (RFC 959 §4.1.3, RFC 4217 §14).
    pub(super) fn abort_transfer(&mut self) {
        if let Transfer::Running { aborting, .. } = &mut self.transfer {
            if !*aborting {
                *aborting = true;
                self.push(Action::AbortTransfer);
            }
        }
    }

    /// The transfer opened its file and is about to use the data connection.
    pub fn handle_transfer_started(&mut self, info: TransferStarted) {
        let Transfer::Running { started, .. } = &mut self.transfer else {
            return;
        };
        *started = true;
        let reply = replies::transfer_started(&info);
        self.push(Action::Reply(reply));
    }

    /// The transfer ended at `now`; the final reply (or replies, for ABOR)
    /// follows, and the idle timer starts again.
    pub fn handle_transfer_done(&mut self, outcome: TransferOutcome, now: Instant) {
        let Transfer::Running { verb, aborting, .. } =
            std::mem::replace(&mut self.transfer, Transfer::Idle)
        else {
            return;
        };
        self.timers.activity(now);
        if self.close_after_transfer && !aborting && outcome == TransferOutcome::Aborted {
            self.reply(426, "Transfer aborted: the server is shutting down.");
        } else {
            for reply in replies::transfer_done(verb, aborting, &outcome) {
                self.push(Action::Reply(reply));
            }
        }
        self.after_transfer();
    }

    /// The I/O layer's answer to [`Action::Fs`].
    pub fn handle_fs_result(&mut self, response: FsResponse) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if let FsResponse::Failed(error) = &response {
            let reply = replies::fs_error_reply(error);
            self.push(Action::Reply(reply));
            self.run_deferred();
            return;
        }
        match (pending, response) {
            (Pending::Cwd(path), FsResponse::Metadata(entry)) => {
                if entry.kind == EntryKind::Dir {
                    let mut text = b"Directory changed to ".to_vec();
                    text.extend_from_slice(&path.to_bytes());
                    self.cwd = path;
                    self.reply(250, text);
                } else {
                    self.reply(550, "Not a directory.");
                }
            }
            (Pending::Size(_), FsResponse::Metadata(entry)) => {
                if entry.kind == EntryKind::Dir {
                    self.reply(550, "Not a plain file.");
                } else if self.transfer_type == TransferType::Ascii {
                    // RFC 3659 §4: SIZE is the transfer size, which in TYPE A
                    // differs from the stored size; refuse rather than guess.
                    self.reply(
                        550,
                        "SIZE is not available in ASCII mode; send TYPE I first.",
                    );
                } else {
                    self.reply(213, entry.size.to_string());
                }
            }
            (Pending::Mdtm(_), FsResponse::Metadata(entry)) => match entry.modified {
                Some(t) if entry.kind != EntryKind::Dir => {
                    self.reply(213, crate::timefmt::format_time_val(t))
                }
                _ => self.reply(550, "Not a plain file."),
            },
            (Pending::Mlst(path), FsResponse::Metadata(entry)) => {
                let perms = Permissions {
                    read: true,
                    write: self.can_write(),
                };
                let shown = path.to_bytes();
                let mut line = b" ".to_vec();
                line.extend(crate::facts::format_entry(
                    &entry,
                    perms,
                    &self.facts,
                    Some(&shown),
                ));
                let mut first = b"Listing ".to_vec();
                first.extend_from_slice(&shown);
                self.push(Action::Reply(Reply::multi(
                    250,
                    vec![first, line, b"End".to_vec()],
                )));
            }
            (Pending::Rnfr(path), FsResponse::Metadata(_)) => {
                self.rename_from = Some(path);
                self.reply(350, "Ready for RNTO.");
            }
            (Pending::Rnto, FsResponse::Done) => self.reply(250, "Rename successful."),
            (Pending::Mkd(path), FsResponse::Done) => {
                let mut text = crate::reply::quote_path(&path.to_bytes());
                text.extend_from_slice(b" created.");
                self.reply(257, text);
            }
            (Pending::Rmd, FsResponse::Done) => self.reply(250, "Directory removed."),
            (Pending::Dele, FsResponse::Done) => self.reply(250, "File deleted."),
            (Pending::Mfmt { modified, shown }, FsResponse::Done) => {
                self.mfmt_done(modified, &shown)
            }
            (Pending::StatPath(path), FsResponse::Metadata(entry)) => {
                if entry.kind == EntryKind::Dir {
                    self.pending = Some(Pending::StatListing(path.clone()));
                    self.push(Action::Fs(FsRequest::List(path)));
                    return;
                }
                let reply = replies::stat_listing(&path, &[entry], self.now_unix);
                self.push(Action::Reply(reply));
            }
            (Pending::StatListing(path), FsResponse::Entries(entries)) => {
                let reply = replies::stat_listing(&path, &entries, self.now_unix);
                self.push(Action::Reply(reply));
            }
            _ => {
                // The I/O layer answered with the wrong shape: a bug, not a peer error.
                self.reply(451, "Local error in processing.");
            }
        }
        self.run_deferred();
    }
}
