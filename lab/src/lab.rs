//! Starting and stopping the lab: six replicas, three hops, one edge address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mesh::config::{Env, MeshConfig};
use mesh::{Readiness, Version};
use mesh_istio::route::{Caller, RouteTable};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::hop::Hop;
use crate::topology::{Tier, VERSIONS};

pub struct LabOptions {
    /// A rendered overlay (default `mesh/deploy/rendered/90-10.yaml`), a directory of mesh YAML, or
    /// `-` for stdin.
    pub mesh_config: String,
    /// Where users reach the frontend (the gateway's address).
    pub edge: SocketAddr,
    /// Environment every replica starts with (OTEL_*, RUST_LOG, MODEL_DIR, …); the lab adds PORT,
    /// SERVICE_VERSION and the downstream URLs.
    pub base_env: Vec<(String, String)>,
    /// Extra variables for one tier (tests use this for short timeouts).
    pub tier_env: Vec<(Tier, String, String)>,
    pub telemetry: ReplicaTelemetry,
}

/// Where the replicas' spans and logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaTelemetry {
    /// Each replica has telemetry of its own, made from its environment as its binary would: spans
    /// exported with its own `service.name` and `service.version` (what `cargo run` does).
    Own,
    /// Every replica uses the subscriber of the code that started the lab (tests capture spans in
    /// memory this way).
    Shared,
}

impl LabOptions {
    pub fn default_mesh_config() -> PathBuf {
        // The rendered overlay, not the raw base: kustomize's namespaces and patches apply.
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../mesh/deploy/rendered/90-10.yaml"
        ))
    }
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            mesh_config: Self::default_mesh_config().display().to_string(),
            edge: SocketAddr::from(([127, 0, 0, 1], 3000)),
            base_env: Vec::new(),
            tier_env: Vec::new(),
            telemetry: ReplicaTelemetry::Own,
        }
    }
}

/// One running build of one tier.
pub struct Replica {
    pub tier: Tier,
    pub version: Version,
    pub addr: SocketAddr,
    pub readiness: Readiness,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Lab {
    edge: SocketAddr,
    routes: Arc<RouteTable>,
    hops: HashMap<Tier, SocketAddr>,
    replicas: Vec<Replica>,
    stops: HashMap<Tier, watch::Sender<bool>>,
    hop_tasks: JoinSet<()>,
}

impl Lab {
    pub async fn start(options: LabOptions) -> anyhow::Result<Self> {
        let resources = mesh_istio::load::load_input(&options.mesh_config)
            .with_context(|| format!("reading the mesh config {}", options.mesh_config))?;
        let routes = Arc::new(
            RouteTable::from_resources(&resources)
                .with_context(|| format!("routing rules in {}", options.mesh_config))?,
        );

        // Hops first: the services need their URLs.
        let mut hop_listeners = HashMap::new();
        for tier in Tier::ALL {
            let addr = if tier == Tier::Frontend {
                options.edge
            } else {
                SocketAddr::from(([127, 0, 0, 1], 0))
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the {} hop on {addr}", tier.name()))?;
            hop_listeners.insert(tier, listener);
        }
        let hops: HashMap<Tier, SocketAddr> = hop_listeners
            .iter()
            .map(|(tier, l)| Ok((*tier, l.local_addr()?)))
            .collect::<std::io::Result<_>>()?;

        let mut lab = Lab {
            edge: hops[&Tier::Frontend],
            routes: routes.clone(),
            hops,
            replicas: Vec::new(),
            stops: HashMap::new(),
            hop_tasks: JoinSet::new(),
        };
        let mut replica_urls: HashMap<Tier, HashMap<Version, String>> = HashMap::new();
        for tier in Tier::ALL {
            let (stop_tx, stop_rx) = watch::channel(false);
            lab.stops.insert(tier, stop_tx);
            for version in VERSIONS {
                let env = lab.replica_env(&options, tier, version);
                let replica = lab
                    .start_replica(tier, version, &env, options.telemetry, stop_rx.clone())
                    .await?;
                replica_urls
                    .entry(tier)
                    .or_default()
                    .insert(version, format!("http://{}", replica.addr));
                lab.replicas.push(replica);
            }
        }
        for (tier, listener) in hop_listeners {
            let caller = match tier.caller() {
                Some(calling) => Caller::sidecar(calling.name()),
                None => routes.gateway_for(&tier.entry_host()).with_context(|| {
                    format!(
                        "no Gateway in {} accepts {}",
                        options.mesh_config,
                        tier.entry_host()
                    )
                })?,
            };
            let hop = Hop::new(
                tier.entry_host(),
                caller,
                routes.clone(),
                replica_urls.remove(&tier).unwrap_or_default(),
            );
            let app = hop.router();
            lab.hop_tasks.spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(hop = tier.name(), error = %e, "hop stopped");
                }
            });
        }
        Ok(lab)
    }

    fn replica_env(&self, options: &LabOptions, tier: Tier, version: Version) -> Env {
        let mut pairs = options.base_env.clone();
        pairs.push(("PORT".into(), "0".into()));
        pairs.push(("SERVICE_VERSION".into(), version.as_str().into()));
        match tier {
            Tier::Frontend => pairs.push(("BACKEND_URL".into(), self.hop_url(Tier::Backend))),
            Tier::Backend => pairs.push(("ML_URL".into(), self.hop_url(Tier::Ml))),
            Tier::Ml => {}
        }
        pairs.extend(
            options
                .tier_env
                .iter()
                .filter(|(t, _, _)| *t == tier)
                .map(|(_, k, v)| (k.clone(), v.clone())),
        );
        Env::from_pairs(pairs)
    }

    async fn start_replica(
        &mut self,
        tier: Tier,
        version: Version,
        env: &Env,
        telemetry: ReplicaTelemetry,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Replica> {
        let stop = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let spawned = async {
            match tier {
                Tier::Frontend => spawn(&frontend::Config::from_env(env)?, telemetry, stop).await,
                Tier::Backend => spawn(&backend::Config::from_env(env)?, telemetry, stop).await,
                Tier::Ml => spawn(&ml::Config::from_env(env)?, telemetry, stop).await,
            }
        }
        .await
        .with_context(|| format!("starting {}/{version}", tier.name()))?;
        Ok(Replica {
            tier,
            version,
            addr: spawned.addr,
            readiness: spawned.readiness,
            serving: Some(spawned.task),
        })
    }

    /// The address users open: the gateway's.
    pub fn url(&self) -> String {
        format!("http://{}", self.edge)
    }

    /// Where the tier's hop (its "Service") listens.
    pub fn hop_url(&self, tier: Tier) -> String {
        format!("http://{}", self.hops[&tier])
    }

    /// What the mesh config asks for that the lab does not execute (for the start banner).
    pub fn unexecuted(&self) -> &[mesh_istio::unexecuted::Unexecuted] {
        self.routes.unexecuted()
    }

    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Waits until every replica that is still running reports ready.
    pub async fn wait_ready(&self, bound: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while !self.replicas.iter().all(|r| r.readiness.is_ready()) {
            if started.elapsed() > bound {
                let waiting: Vec<String> = self
                    .replicas
                    .iter()
                    .filter(|r| !r.readiness.is_ready())
                    .map(|r| format!("{}/{}", r.tier.name(), r.version))
                    .collect();
                anyhow::bail!("not ready after {bound:?}: {}", waiting.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Stops both replicas of a tier (as if its pods were gone) and waits until they drained.
    pub async fn stop_tier(&mut self, tier: Tier) {
        if let Some(stop) = self.stops.get(&tier) {
            let _ = stop.send(true);
        }
        for replica in self.replicas.iter_mut().filter(|r| r.tier == tier) {
            let Some(serving) = replica.serving.take() else {
                continue;
            };
            if let Ok(Err(e)) = serving.await {
                tracing::warn!(replica = %format!("{}/{}", tier.name(), replica.version), error = %e, "stopped with an error");
            }
        }
    }

    /// Stops everything: every replica fails readiness at once, then the tiers stop edge first, each
    /// draining its in-flight requests within its bound while the tiers behind it still serve them.
    pub async fn shutdown(mut self) {
        for replica in &self.replicas {
            replica.readiness.set_ready(false);
        }
        for tier in Tier::ALL {
            self.stop_tier(tier).await;
        }
        self.hop_tasks.shutdown().await;
    }
}

async fn spawn<S: mesh::MeshService>(
    config: &S,
    telemetry: ReplicaTelemetry,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<mesh::Spawned> {
    match telemetry {
        ReplicaTelemetry::Own => mesh::spawn_traced(config, stop).await,
        ReplicaTelemetry::Shared => mesh::spawn(config, stop).await,
    }
}

/// The mesh settings of the lab process itself (telemetry, log filter).
pub fn lab_mesh_config(env: &Env) -> Result<MeshConfig, mesh::config::ConfigError> {
    MeshConfig::from_env("lab", 3000, env)
}
