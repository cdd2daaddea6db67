//! Setting a test session up: connecting ([`Client::connect`] for explicit
//! FTPS, [`Client::connect_implicit`]), logging in ([`Client::login`],
//! [`Client::login_as`]), `PBSZ 0` + `PROT P` ([`Client::pbsz_prot_p`]),
//! and the one-call set-ups: [`Client::open`] with a [`Setup`] (explicit or
//! implicit FTPS, login, `PBSZ 0` + `PROT P` or `PROT C`, `TYPE I`, as a
//! table of commands and expected replies), [`Client::session`] for a
//! [`TestServer`], [`Client::secure`].

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ClientConfig;

use super::{config_default, tcp_connect, tls_connect, Client, Control};
use crate::TestServer;

/// How [`Client::open`] sets a session up: how TLS starts, then a table of
/// commands and expected replies ([`Setup::steps`]).
///
/// [`Setup::explicit`] and [`Setup::implicit`] are the usual secure session
/// (the test account logged in, `PBSZ 0`, `PROT P`); the other methods
/// change one step each:
///
/// ```ignore
/// let mut c = Client::open(server.explicit, &config, Setup::explicit().type_i()).await;
/// let mut c = Client::session(&server, Setup::implicit().no_prot()).await;
/// let mut c = Client::open(addr, &config, Setup::explicit().tls_only()).await;
/// ```
#[derive(Clone, Debug)]
pub struct Setup {
    implicit: bool,
    login: Option<(String, String)>,
    prot: Option<&'static str>,
    type_i: bool,
}

impl Setup {
    /// Explicit FTPS: the 220 greeting, `AUTH TLS` (234) and the handshake;
    /// then `USER` (331) and `PASS` (230) of the test account, `PBSZ 0`
    /// (200), `PROT P` (200).
    pub fn explicit() -> Setup {
        Setup {
            implicit: false,
            login: Some((crate::USER.to_string(), crate::PASSWORD.to_string())),
            prot: Some("P"),
            type_i: false,
        }
    }

    /// Implicit FTPS: the handshake first, the 220 greeting over TLS; then
    /// the same steps as [`Setup::explicit`].
    pub fn implicit() -> Setup {
        Setup {
            implicit: true,
            ..Setup::explicit()
        }
    }

    /// Stop once the control connection is protected: no login, no
    /// `PBSZ`/`PROT`, no `TYPE`.
    pub fn tls_only(self) -> Setup {
        Setup {
            login: None,
            prot: None,
            type_i: false,
            ..self
        }
    }

    /// Log in as `user` with `password` instead of the test account.
    pub fn user(self, user: &str, password: &str) -> Setup {
        Setup {
            login: Some((user.to_string(), password.to_string())),
            ..self
        }
    }

    /// No `PBSZ`/`PROT`: the data protection stays what the session starts
    /// with (Clear after `AUTH TLS`, Private on an implicit connection).
    pub fn no_prot(self) -> Setup {
        Setup { prot: None, ..self }
    }

    /// `PBSZ 0` (200) and `PROT C` (200) instead of `PROT P`.
    pub fn prot_c(self) -> Setup {
        Setup {
            prot: Some("C"),
            ..self
        }
    }

    /// `TYPE I` (200) last.
    pub fn type_i(self) -> Setup {
        Setup {
            type_i: true,
            ..self
        }
    }

    /// Whether TLS starts from the first byte (implicit FTPS).
    pub fn is_implicit(&self) -> bool {
        self.implicit
    }

    /// The steps after TLS is up, in order: command and expected reply code.
    pub fn steps(&self) -> Vec<(String, u16)> {
        let mut steps = Vec::new();
        if let Some((user, password)) = &self.login {
            steps.push((format!("USER {user}"), 331));
            steps.push((format!("PASS {password}"), 230));
        }
        if let Some(level) = self.prot {
            steps.push(("PBSZ 0".to_string(), 200));
            steps.push((format!("PROT {level}"), 200));
        }
        if self.type_i {
            steps.push(("TYPE I".to_string(), 200));
        }
        steps
    }
}

impl Client {
    /// Connect to an explicit FTPS port and read the 220 greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = tcp_connect(addr).await;
        let mut client = Client::from_stream(Control::Plain(tcp), addr, None);
        client.expect_reply(220).await;
        client
    }

    /// Connect to an implicit FTPS port: TLS from the first byte, then the
    /// 220 greeting over TLS.
    pub async fn connect_implicit(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
        let tcp = tcp_connect(addr).await;
        let tls = tls_connect(tcp, config)
            .await
            .unwrap_or_else(|e| panic!("implicit TLS handshake with {addr}: {e}"));
        let mut client =
            Client::from_stream(Control::Tls(Box::new(tls)), addr, Some(Arc::clone(config)));
        client.expect_reply(220).await;
        client
    }

    /// Explicit FTPS, AUTH TLS, USER/PASS, PBSZ 0, PROT P: the same as
    /// [`Client::open`] with [`Setup::explicit`].
    pub async fn secure(addr: SocketAddr, config: &Arc<ClientConfig>) -> Client {
        Client::open(addr, config, Setup::explicit()).await
    }

    /// Connect to `addr` and set the session up as `setup` says, with
    /// `config` for the control connection's TLS (and, by default, for data
    /// connections). Every step checks its reply code; a wrong one panics
    /// with the step, the reply and the dialogue.
    pub async fn open(addr: SocketAddr, config: &Arc<ClientConfig>, setup: Setup) -> Client {
        let mut client = if setup.implicit {
            Client::connect_implicit(addr, config).await
        } else {
            let mut client = Client::connect(addr).await;
            client.auth_tls(config).await;
            client
        };
        let steps = setup.steps();
        let rows: Vec<(&str, u16)> = steps.iter().map(|(l, code)| (l.as_str(), *code)).collect();
        client.expect_replies(&rows).await;
        client
    }

    /// [`Client::open`] on a [`TestServer`]: its first explicit or implicit
    /// listener (as `setup` says), with a TLS configuration of its own
    /// ([`config_default`] for the server's certificate: its own session
    /// store), which [`Client::config`] returns.
    pub async fn session(server: &TestServer, setup: Setup) -> Client {
        let config = config_default(&server.cert_pem);
        let addr = if setup.implicit {
            server.implicit
        } else {
            server.explicit
        };
        Client::open(addr, &config, setup).await
    }

    /// USER/PASS with the test account.
    pub async fn login(&mut self) {
        self.login_as(crate::USER, crate::PASSWORD).await;
    }

    /// USER/PASS (331, 230).
    pub async fn login_as(&mut self, user: &str, password: &str) {
        self.expect(&format!("USER {user}"), 331).await;
        self.expect(&format!("PASS {password}"), 230).await;
    }

    /// PBSZ 0 and PROT P.
    pub async fn pbsz_prot_p(&mut self) {
        self.expect("PBSZ 0", 200).await;
        self.expect("PROT P", 200).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(steps: &[(String, u16)]) -> Vec<(&str, u16)> {
        steps.iter().map(|(l, code)| (l.as_str(), *code)).collect()
    }

    #[test]
    fn setups_are_the_secure_session_with_one_step_changed_per_option() {
        let pass = format!("PASS {}", crate::PASSWORD);
        let user = format!("USER {}", crate::USER);
        let secure = vec![
            (user.as_str(), 331),
            (pass.as_str(), 230),
            ("PBSZ 0", 200),
            ("PROT P", 200),
        ];
        assert_eq!(rows(&Setup::explicit().steps()), secure);
        assert!(!Setup::explicit().is_implicit());
        assert_eq!(rows(&Setup::implicit().steps()), secure);
        assert!(Setup::implicit().is_implicit());
        let mut binary = secure.clone();
        binary.push(("TYPE I", 200));
        assert_eq!(rows(&Setup::explicit().type_i().steps()), binary);
        let mut clear = secure.clone();
        clear[3] = ("PROT C", 200);
        assert_eq!(rows(&Setup::explicit().prot_c().steps()), clear);
        assert_eq!(rows(&Setup::implicit().no_prot().steps()), secure[..2]);
        assert!(Setup::explicit().type_i().tls_only().steps().is_empty());
        assert_eq!(
            rows(&Setup::explicit().user("bob", "pw").no_prot().steps()),
            vec![("USER bob", 331), ("PASS pw", 230)]
        );
    }
}
