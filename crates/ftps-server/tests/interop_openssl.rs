//! scratch
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
#[ignore]
fn manual_server() {
    let server = TestServer::start_with(|cfg| {
        if std::env::var("NO_PROTP").is_ok() {
            cfg.policy.require_prot_p = false;
        }
        if std::env::var("CCC").is_ok() {
            cfg.policy.allow_ccc = true;
        }
    });
    let info = format!(
        "EXPLICIT={}\nIMPLICIT={}\nCERT={}\nROOT={}\n",
        server.explicit.port(),
        server.implicit.port(),
        server.cert_pem.display(),
        server.root.path().display()
    );
    std::fs::write(
        std::env::var("MANUAL_ENV").unwrap_or("/tmp/manual_server.env".into()),
        info,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(
        std::env::var("SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    ));
}
