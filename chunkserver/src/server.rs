//! One whole chunk server: opens the store and its identity, installs the
//! metrics recorder, starts the scrubber and the sync loop with the
//! metadata leader, and serves the HTTP API until it fails or the future is
//! dropped (which stops the background tasks too). `toastyfs chunk` is a
//! thin flag parser over [`run`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use toastyfs_client::secret::ClusterKeys;
use toastyfs_client::serve::{serve, ServeLimits};
use toastyfs_client::tls::NodeTls;
use toastyfs_client::transport::Transport;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::access::{self, AccessGate};
use crate::chain::ChainLink;
use crate::identity::{self, IdentityError};
use crate::scrub::{self, ScrubConfig};
use crate::store::ChunkStore;
use crate::sync::{self, SyncConfig, SyncError};
use crate::{api, limits, metrics, StoreError};

/// Everything a chunk server needs to run.
#[derive(Debug, Clone)]
pub struct ChunkServerConfig {
    /// The store's directory (chunks, lock, identity).
    pub data_dir: PathBuf,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Address clients and peers use to reach this server (reported to the
    /// leader); `None` means the address the listener is bound to.
    pub advertise: Option<String>,
    /// Metadata node addresses (`host:port`).
    pub meta: Vec<String>,
    /// Most bytes of chunks to store; `None` means the whole filesystem.
    pub capacity_bytes: Option<u64>,
    /// Time between reports to the leader.
    pub report_interval: Duration,
    /// Delay between the leader's drop order and the deletion.
    pub drop_grace: Duration,
    pub scrub: ScrubConfig,
    /// The cluster secret its reports and peer fetches are signed with,
    /// and the secrets it checks requests with (`access`); `None`: it
    /// signs and checks nothing.
    pub keys: Option<ClusterKeys>,
    /// TLS on the listener and to the metadata nodes and peers; `None`:
    /// plain HTTP.
    pub tls: Option<NodeTls>,
}

impl ChunkServerConfig {
    /// A config with every default: advertise the listen address, no
    /// capacity limit, report every second, 30 minutes of drop grace.
    pub fn new(data_dir: PathBuf, listen: SocketAddr, meta: Vec<String>) -> ChunkServerConfig {
        ChunkServerConfig {
            data_dir,
            listen,
            advertise: None,
            meta,
            capacity_bytes: None,
            report_interval: sync::DEFAULT_REPORT_INTERVAL,
            drop_grace: sync::DEFAULT_DROP_GRACE,
            scrub: ScrubConfig::default(),
            keys: None,
            tls: None,
        }
    }
}

/// Why a chunk server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChunkServerError {
    #[error("no metadata node given: pass --meta HOST:PORT[,HOST:PORT...]")]
    NoMeta,
    #[error("cannot open the chunk store in {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot advertise {addr:?}: peers cannot reach an unspecified address; pass --advertise HOST:PORT")]
    BadAdvertise { addr: String },
    #[error("cannot start the sync with the metadata service: {0}")]
    Sync(#[from] SyncError),
}

/// Binds `config.listen` and runs the chunk server on it. Returns only on
/// a startup error or if the HTTP server fails.
pub async fn run(config: ChunkServerConfig) -> Result<(), ChunkServerError> {
    if config.meta.is_empty() {
        return Err(ChunkServerError::NoMeta);
    }
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| ChunkServerError::Listen {
                addr: config.listen,
                source,
            })?;
    run_on(listener, config).await
}

/// Runs the chunk server on a bound `listener` (`config.listen` is
/// ignored): for tests and embedding.
pub async fn run_on(
    listener: TcpListener,
    config: ChunkServerConfig,
) -> Result<(), ChunkServerError> {
    if config.meta.is_empty() {
        return Err(ChunkServerError::NoMeta);
    }
    let local = listener
        .local_addr()
        .map_err(|source| ChunkServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let advertise = advertised(config.advertise.as_deref(), local)?;
    let store = open_store(&config).await?;
    let server = identity::load_or_create(&config.data_dir)?;
    let handle = metrics::install();
    let _scrubber = AbortOnDrop(scrub::spawn_scrubber(Arc::clone(&store), config.scrub));
    let gate = config
        .keys
        .as_ref()
        .map(|keys| Arc::new(AccessGate::new(keys.accepted())));
    let sync_config = SyncConfig {
        report_interval: config.report_interval,
        drop_grace: config.drop_grace,
        secret: config.keys.as_ref().map(|k| k.sign_with.clone()),
        revoked: gate.as_ref().map(|g| Arc::clone(&g.revoked)),
        tls: config.tls.as_ref().map(|t| t.peers.clone()),
        ..SyncConfig::new(server, advertise.clone(), config.meta.clone())
    };
    let sync = sync::spawn(Arc::clone(&store), sync_config)?;
    let chain = ChainLink::new(
        Transport::new(limits::CHAIN_TIMEOUT)
            .signed_with(config.keys.as_ref().map(|k| k.sign_with.clone()))
            .with_tls(config.tls.as_ref().map(|t| t.peers.clone())),
        advertise.clone(),
    );
    let app = api::chained_router(store, handle, Some(chain))
        .layer(middleware::from_fn_with_state(sync.waker(), wake_on_store))
        .layer(middleware::from_fn_with_state(
            gate,
            access::require_credential,
        ));
    tracing::info!(
        server_id = server.0,
        listen = %local,
        %advertise,
        meta = ?config.meta,
        "chunk server serving"
    );
    serve(
        listener,
        app,
        ServeLimits::default(),
        config.tls.as_ref().map(|t| t.server.clone()),
    )
    .await;
    Ok(())
}

/// The address to report: the one given, else the bound one; never an
/// unspecified IP (0.0.0.0, ::), which peers cannot dial.
fn advertised(given: Option<&str>, local: SocketAddr) -> Result<String, ChunkServerError> {
    let addr = given.map_or_else(|| local.to_string(), str::to_owned);
    let unspecified = addr
        .parse::<SocketAddr>()
        .is_ok_and(|a| a.ip().is_unspecified());
    if addr.is_empty() || unspecified {
        return Err(ChunkServerError::BadAdvertise { addr });
    }
    Ok(addr)
}

async fn open_store(config: &ChunkServerConfig) -> Result<Arc<ChunkStore>, ChunkServerError> {
    let (dir, capacity) = (config.data_dir.clone(), config.capacity_bytes);
    let opened = tokio::task::spawn_blocking(move || ChunkStore::open(dir, capacity))
        .await
        .unwrap_or_else(|e| Err(StoreError::TaskFailed(e.to_string())));
    opened
        .map(Arc::new)
        .map_err(|source| ChunkServerError::Store {
            path: config.data_dir.clone(),
            source,
        })
}

/// Wakes the sync loop after a request that may have stored a chunk, so
/// the leader learns of it before the next interval.
async fn wake_on_store(State(wake): State<Arc<Notify>>, request: Request, next: Next) -> Response {
    let stores = matches!(*request.method(), Method::PUT | Method::PATCH);
    let response = next.run(request).await;
    if stores && response.status().is_success() {
        wake.notify_one();
    }
    response
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
