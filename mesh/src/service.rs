//! The one way a service binary runs: configuration from the environment (exit code 2 naming the
//! variable when it is wrong), telemetry, bind, build the router, serve until SIGTERM, drain, flush.
//! The local lab starts its replicas through the same trait.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use tracing::instrument::WithSubscriber as _;

use crate::config::{ConfigError, Env, MeshConfig};
use crate::healthcheck::{HEALTHCHECK_ARG, PROBE_TIMEOUT, probe_ready};
use crate::telemetry::{ExportStats, ScopedTelemetry};
use crate::{Mesh, Server, StopPolicy, shutdown_signal, telemetry};

/// What building a service's router gives.
pub type BuildResult = anyhow::Result<axum::Router>;

/// A mesh service, described by its configuration type. Services implement it with
/// [`mesh_service!`](crate::mesh_service).
pub trait MeshService: Sized {
    /// The service's name in the mesh (`ml`, `backend`, `frontend`).
    const NAME: &'static str;

    fn from_env(env: &Env) -> Result<Self, ConfigError>;

    fn mesh_config(&self) -> &MeshConfig;

    /// The service's router, wrapped by `mesh`; readiness is set once it can serve.
    fn build(&self, mesh: &Mesh) -> impl Future<Output = BuildResult> + Send;
}

/// Implements [`MeshService`] for a service's configuration type, which must have an inherent
/// `fn from_env(&Env) -> Result<Self, ConfigError>` and a `mesh: MeshConfig` field; `build` names
/// an `async fn(&Config, &Mesh) -> BuildResult`.
///
/// ```text
/// mesh::mesh_service!(Config, name = "backend", build = crate::build);
/// ```
#[macro_export]
macro_rules! mesh_service {
    ($config:ty, name = $name:expr, build = $build:path $(,)?) => {
        impl $crate::MeshService for $config {
            const NAME: &'static str = $name;

            fn from_env(
                env: &$crate::config::Env,
            ) -> ::std::result::Result<Self, $crate::config::ConfigError> {
                <$config>::from_env(env)
            }

            fn mesh_config(&self) -> &$crate::config::MeshConfig {
                &self.mesh
            }

            fn build(
                &self,
                mesh: &$crate::Mesh,
            ) -> impl ::std::future::Future<Output = $crate::BuildResult> + ::std::marker::Send
            {
                $build(self, mesh)
            }
        }
    };
}

/// Everything a service's `main` does. Exit codes: 0 after a clean stop, 2 for bad configuration,
/// 1 for a failure while starting or serving.
///
/// Called as `<binary> healthcheck`, it instead probes the already running replica's `/readyz` on
/// the configured `PORT` (see [`crate::healthcheck`]): 0 when ready, 1 when not or unreachable.
pub async fn run<S: MeshService>() -> ExitCode {
    let config = match S::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: configuration error: {error}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (None, _) => {}
        (Some(arg), None) if arg == HEALTHCHECK_ARG => {
            return healthcheck::<S>(config.mesh_config().port).await;
        }
        (Some(arg), _) => {
            eprintln!(
                "{}: unexpected argument {arg:?}; usage: {} [{HEALTHCHECK_ARG}]",
                S::NAME,
                S::NAME
            );
            return ExitCode::from(2);
        }
    }
    let mesh_config = config.mesh_config();
    let guard = match telemetry::init(
        &mesh_config.telemetry,
        &mesh_config.identity,
        std::io::stdout,
    ) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{}: cannot start telemetry: {error:#}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let outcome = serve(&config, guard.stats()).await;
    guard.shutdown(config.mesh_config().drain).await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck<S: MeshService>(port: u16) -> ExitCode {
    match probe_ready(port, PROBE_TIMEOUT).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: not ready: {error}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn serve<S: MeshService>(config: &S, export: Option<ExportStats>) -> anyhow::Result<()> {
    let mesh_config = config.mesh_config();
    let mesh = Mesh::new(mesh_config.identity.clone()).with_limits(mesh_config.limits);
    if let Some(export) = export {
        mesh.register_metrics(|registry| export.register(registry));
    }
    let server = Server::bind(SocketAddr::from(([0, 0, 0, 0], mesh_config.port)))
        .await?
        .with_limits(mesh_config.limits);
    tracing::info!(port = server.port(), service = %mesh_config.identity, "listening");
    let app = config.build(&mesh).await?;
    server
        .run_until_stopped(
            app,
            mesh.readiness(),
            shutdown_signal(),
            StopPolicy::from(mesh_config),
        )
        .await?;
    Ok(())
}

/// A service serving inside this process: the local lab's replicas, the services' own tests.
pub struct Spawned {
    pub addr: SocketAddr,
    pub identity: crate::ServiceIdentity,
    pub readiness: crate::Readiness,
    /// Ends once the service stopped after `stop` and drained.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Builds the service and serves it on loopback (the port from its config; 0 lets the OS pick)
/// until `stop` resolves, the same way [`run`] serves it. Its spans and logs go to the caller's
/// subscriber.
pub async fn spawn<S: MeshService>(
    config: &S,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Spawned> {
    spawn_with(config, None, stop).await
}

/// Like [`spawn`], but the service gets telemetry of its own, made from its configuration as its
/// binary would make it: its own `service.name` and version on every span, its own export queue
/// (counted on its `/metrics`), logs to stdout. Spans are flushed after the service drained.
pub async fn spawn_traced<S: MeshService>(
    config: &S,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Spawned> {
    let mesh_config = config.mesh_config();
    let telemetry = telemetry::scoped(
        &mesh_config.telemetry,
        &mesh_config.identity,
        std::io::stdout,
    )?;
    spawn_with(config, Some(telemetry), stop).await
}

async fn spawn_with<S: MeshService>(
    config: &S,
    telemetry: Option<ScopedTelemetry>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Spawned> {
    let mesh_config = config.mesh_config();
    let mesh = Mesh::new(mesh_config.identity.clone()).with_limits(mesh_config.limits);
    let (app, flush) = match telemetry {
        None => (config.build(&mesh).await?, None),
        Some(ScopedTelemetry { dispatch, guard }) => {
            if let Some(export) = guard.stats() {
                mesh.register_metrics(|registry| export.register(registry));
            }
            let app = config
                .build(&mesh)
                .with_subscriber(dispatch.clone())
                .await?;
            // Outermost: every request of this service runs with its own subscriber.
            let app = app.layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    next.run(req).with_subscriber(dispatch.clone())
                },
            ));
            (app, Some(guard))
        }
    };
    let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], mesh_config.port)))
        .await?
        .with_limits(mesh_config.limits);
    let addr = server.local_addr();
    let readiness = mesh.readiness();
    let policy = StopPolicy::from(mesh_config);
    let serving = server.run_until_stopped(app, readiness.clone(), stop, policy);
    let task = tokio::spawn(async move {
        let outcome = serving.await;
        if let Some(guard) = flush {
            guard.shutdown(policy.drain).await;
        }
        outcome
    });
    Ok(Spawned {
        addr,
        identity: mesh_config.identity.clone(),
        readiness,
        task,
    })
}
