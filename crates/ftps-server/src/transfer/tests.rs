//! The transfer code against a second back-end: an in-memory store that
//! implements only what [`Storage`] requires (no zero copy, no blocking
//! reads or writes), over real loopback data connections (active mode,
//! PROT C). It shows that a back-end without the local disk's fast paths
//! plugs in, and that the transfer code falls back for each of them.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ftps_proto::command::TransferType;
use ftps_proto::entry::{Entry, EntryKind};
use ftps_proto::facts::FactSet;
use ftps_proto::path::VirtualPath;
use ftps_proto::session::{
    DataEndpoint, DataProtection, StoreMode, TransferKind, TransferOutcome, TransferRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{run, TransferContext, TransferEvent};
use crate::config::ClientCertificates;
use crate::storage::{Download, EntryStream, FsError, Storage, Upload, WriteMode};
use crate::tls::{CertSet, TlsSetup};

type Files = Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>;

/// Files in memory; only the required methods of each trait.
#[derive(Debug, Default)]
struct MemoryStorage {
    files: Files,
}

struct MemoryDownload {
    data: Vec<u8>,
    at: usize,
}

struct MemoryUpload {
    files: Files,
    path: Vec<u8>,
    data: Vec<u8>,
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Entry, FsError> {
        let files = self.files.lock().unwrap();
        let data = files.get(&path.to_bytes()).ok_or(FsError::NotFound)?;
        Ok(Entry {
            name: path.file_name().unwrap_or(b"/").to_vec(),
            kind: EntryKind::File,
            size: data.len() as u64,
            modified: None,
            mode: None,
            owner: None,
            group: None,
            unique: None,
        })
    }

    async fn list(&self, _dir: &VirtualPath) -> Result<EntryStream, FsError> {
        Err(FsError::Unsupported)
    }

    async fn read(&self, path: &VirtualPath, offset: u64) -> Result<Box<dyn Download>, FsError> {
        let files = self.files.lock().unwrap();
        let data = files
            .get(&path.to_bytes())
            .ok_or(FsError::NotFound)?
            .clone();
        let at = usize::try_from(offset).unwrap().min(data.len());
        Ok(Box::new(MemoryDownload { data, at }))
    }

    async fn write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>, FsError> {
        assert_eq!(mode, WriteMode::Create);
        Ok(Box::new(MemoryUpload {
            files: Arc::clone(&self.files),
            path: path.to_bytes(),
            data: Vec::new(),
        }))
    }

    async fn create_dir(&self, _path: &VirtualPath) -> Result<(), FsError> {
        Err(FsError::Unsupported)
    }

    async fn remove_dir(&self, _path: &VirtualPath) -> Result<(), FsError> {
        Err(FsError::Unsupported)
    }

    async fn remove_file(&self, _path: &VirtualPath) -> Result<(), FsError> {
        Err(FsError::Unsupported)
    }

    async fn rename(&self, _from: &VirtualPath, _to: &VirtualPath) -> Result<(), FsError> {
        Err(FsError::Unsupported)
    }
}

#[async_trait::async_trait]
impl Download for MemoryDownload {
    fn remaining(&self) -> Option<u64> {
        Some((self.data.len() - self.at) as u64)
    }

    async fn read_chunk(&mut self, mut buf: Vec<u8>, max: usize) -> Result<Vec<u8>, FsError> {
        let end = (self.at + max).min(self.data.len());
        buf.clear();
        buf.extend_from_slice(&self.data[self.at..end]);
        self.at = end;
        Ok(buf)
    }
}

#[async_trait::async_trait]
impl Upload for MemoryUpload {
    async fn write(&mut self, data: &[u8]) -> Result<(), FsError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<u64, FsError> {
        let len = self.data.len() as u64;
        self.files.lock().unwrap().insert(self.path, self.data);
        Ok(len)
    }

    async fn abort(self: Box<Self>) -> bool {
        false
    }

    fn bytes_written(&self) -> u64 {
        self.data.len() as u64
    }
}

fn tls_setup() -> TlsSetup {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let chain = vec![key.cert.der().clone()];
    let pk = rustls_pki_types::PrivateKeyDer::Pkcs8(key.key_pair.serialize_der().into());
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certs = CertSet::new(&provider, (chain, pk), Vec::new()).unwrap();
    TlsSetup::new(certs, provider, &[&rustls::version::TLS13], None).unwrap()
}

fn path(name: &str) -> VirtualPath {
    VirtualPath::root().resolve(name.as_bytes()).unwrap()
}

/// Run one active-mode PROT C transfer against `storage`; `peer` plays the
/// client's side of the data connection. Returns the outcome.
async fn transfer<F, Fut>(
    storage: Arc<dyn Storage>,
    kind: TransferKind,
    transfer_type: TransferType,
    peer: F,
) -> TransferOutcome
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        peer(tcp).await;
    });
    let connection = tls_setup().for_connection(ClientCertificates::Off).unwrap();
    let (events, mut reports) = mpsc::channel(4);
    let ctx = TransferContext {
        storage,
        tls: connection.for_data(true),
        control_cert: None,
        passive: None,
        peer_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        data_connect_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        accept_upload_without_close_notify: false,
        now_unix: 0,
        events,
        cancel: CancellationToken::new(),
        progress: Arc::new(AtomicU64::new(0)),
        user: "test".into(),
    };
    let request = TransferRequest {
        kind,
        transfer_type,
        protection: DataProtection::Clear,
        require_session_reuse: true,
        accept_upload_without_close_notify: false,
        endpoint: DataEndpoint::Active(addr),
        facts: FactSet::default_set(),
        permissions: Default::default(),
    };
    tokio::spawn(run(ctx, request));
    let mut outcome = None;
    while let Some(event) = reports.recv().await {
        if let TransferEvent::Done(done) = event {
            outcome = Some(done);
        }
    }
    let outcome = outcome.unwrap();
    if matches!(outcome, TransferOutcome::OpenFailed(_)) {
        // Refused before any data connection: nobody connects.
        client.abort();
    } else {
        client.await.unwrap();
    }
    outcome
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn download_from_a_back_end_without_zero_copy_sends_every_byte() {
    let storage = Arc::new(MemoryStorage::default());
    let content = pattern(3 * 1024 * 1024 + 17);
    storage
        .files
        .lock()
        .unwrap()
        .insert(b"/big".to_vec(), content.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let kind = TransferKind::Retrieve {
        path: path("/big"),
        offset: 5,
    };
    let outcome = transfer(storage, kind, TransferType::Image, |mut tcp| async move {
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await.unwrap();
        tx.send(got).unwrap();
    })
    .await;
    assert_eq!(
        outcome,
        TransferOutcome::Complete {
            bytes: content.len() as u64 - 5
        }
    );
    assert_eq!(rx.await.unwrap(), &content[5..]);
}

#[tokio::test]
async fn ascii_download_converts_line_endings_on_any_back_end() {
    let storage = Arc::new(MemoryStorage::default());
    storage
        .files
        .lock()
        .unwrap()
        .insert(b"/t".to_vec(), b"a\nb\n".to_vec());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let kind = TransferKind::Retrieve {
        path: path("/t"),
        offset: 0,
    };
    let outcome = transfer(storage, kind, TransferType::Ascii, |mut tcp| async move {
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await.unwrap();
        tx.send(got).unwrap();
    })
    .await;
    assert_eq!(outcome, TransferOutcome::Complete { bytes: 6 });
    assert_eq!(rx.await.unwrap(), b"a\r\nb\r\n");
}

#[tokio::test]
async fn bulk_upload_to_a_back_end_without_blocking_writes_stays_async() {
    let storage = Arc::new(MemoryStorage::default());
    let files = Arc::clone(&storage.files);
    let content = pattern(5 * 1024 * 1024 + 3);
    let sent = content.clone();
    let kind = TransferKind::Store {
        path: path("/up"),
        mode: StoreMode::Create,
    };
    let outcome = transfer(storage, kind, TransferType::Image, |mut tcp| async move {
        tcp.write_all(&sent).await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    })
    .await;
    assert_eq!(
        outcome,
        TransferOutcome::Complete {
            bytes: content.len() as u64
        }
    );
    assert_eq!(files.lock().unwrap().get(&b"/up".to_vec()), Some(&content));
}

#[tokio::test]
async fn a_missing_file_is_refused_before_any_data_connection() {
    let storage = Arc::new(MemoryStorage::default());
    let files = Arc::clone(&storage.files);
    let kind = TransferKind::Retrieve {
        path: path("/missing"),
        offset: 0,
    };
    let outcome = transfer(storage, kind, TransferType::Image, |_tcp| async {}).await;
    assert_eq!(outcome, TransferOutcome::OpenFailed(FsError::NotFound));
    assert!(files.lock().unwrap().is_empty());
}
