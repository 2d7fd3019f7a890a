//! The classification pool: a fixed number of dedicated worker threads (never the async
//! executor's) behind a bounded queue. Each worker owns a classifier session and runs the whole
//! CPU-heavy chain for one upload — decode, preprocess, inference. When the queue is full a
//! request is refused at once (the handler answers 503 with `Retry-After`) instead of waiting
//! without bound. The caller's tracing span travels with the job and is entered by the worker.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::Span;

use crate::classifier::{Classifier, ClassifierError, Prediction, top_k};
use crate::metrics::MlMetrics;
use crate::photo::{DecodeError, DecodeLimits, decode};
use crate::preprocess::PreprocessError;

/// Where the time of one classification went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub queue: Duration,
    pub decode: Duration,
    pub preprocess: Duration,
    pub inference: Duration,
}

#[derive(Debug, Clone)]
pub struct Classification {
    pub predictions: Vec<Prediction>,
    pub timings: Timings,
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("all {workers} workers are busy and {capacity} requests are already waiting")]
    Overloaded { workers: usize, capacity: usize },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error(transparent)]
    Classifier(#[from] ClassifierError),
    #[error("the classification worker stopped before answering")]
    WorkerGone,
}

struct Job {
    image: Bytes,
    top_k: usize,
    span: Span,
    /// The subscriber the caller's span belongs to, so the worker's child spans go to the same one.
    dispatch: tracing::Dispatch,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Classification, ClassifyError>>,
}

/// Sizing of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Worker threads, i.e. classifications running at once.
    pub workers: usize,
    /// Requests allowed to wait for a worker; more are refused.
    pub queue_capacity: usize,
}

pub struct InferencePool {
    sender: mpsc::Sender<Job>,
    size: PoolSize,
    metrics: MlMetrics,
    _workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl InferencePool {
    /// Starts `size.workers` threads. They stop when the pool is dropped.
    pub fn start(
        classifier: Classifier,
        limits: DecodeLimits,
        size: PoolSize,
        metrics: MlMetrics,
    ) -> std::io::Result<Self> {
        let workers = size.workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>(size.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let worker = Worker {
                classifier: classifier.clone(),
                limits,
                metrics: metrics.clone(),
                receiver: receiver.clone(),
            };
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ml-worker-{n}"))
                    .spawn(move || worker.run())?,
            );
        }
        Ok(Self {
            sender,
            size: PoolSize { workers, ..size },
            metrics,
            _workers: handles,
        })
    }

    pub fn size(&self) -> PoolSize {
        self.size
    }

    /// Queues `image` for classification, or refuses at once when the queue is full.
    pub async fn classify(
        &self,
        image: Bytes,
        top_k: usize,
    ) -> Result<Classification, ClassifyError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            image,
            top_k,
            span: Span::current(),
            dispatch: tracing::dispatcher::get_default(tracing::Dispatch::clone),
            enqueued: Instant::now(),
            reply,
        };
        self.metrics.queue_depth.inc();
        match self.sender.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.queue_depth.dec();
                self.metrics.rejected.inc();
                return Err(ClassifyError::Overloaded {
                    workers: self.size.workers,
                    capacity: self.size.queue_capacity,
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.queue_depth.dec();
                return Err(ClassifyError::WorkerGone);
            }
        }
        answer.await.unwrap_or(Err(ClassifyError::WorkerGone))
    }
}

struct Worker {
    classifier: Classifier,
    limits: DecodeLimits,
    metrics: MlMetrics,
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl Worker {
    fn next_job(&self) -> Option<Job> {
        // Only one idle worker waits on the channel at a time; the others wait for the lock.
        let mut receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        receiver.blocking_recv()
    }

    fn run(self) {
        let mut session = match self.classifier.session() {
            Ok(session) => session,
            Err(error) => {
                tracing::error!(%error, "classification worker cannot open a session");
                return;
            }
        };
        while let Some(job) = self.next_job() {
            self.metrics.queue_depth.dec();
            if job.reply.is_closed() {
                // The client went away while the job waited: skip the work.
                continue;
            }
            let queue = job.enqueued.elapsed();
            let outcome = tracing::dispatcher::with_default(&job.dispatch, || {
                job.span.in_scope(|| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.classify(&mut session, &job.image, job.top_k, queue)
                    }))
                })
            });
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(_) => {
                    // A panic may leave the session's scratch state inconsistent: start afresh.
                    tracing::error!("classification panicked; the worker opens a new session");
                    match self.classifier.session() {
                        Ok(fresh) => session = fresh,
                        Err(error) => {
                            tracing::error!(%error, "classification worker cannot reopen a session");
                            let _ = job.reply.send(Err(ClassifyError::WorkerGone));
                            return;
                        }
                    }
                    Err(ClassifyError::WorkerGone)
                }
            };
            // The receiver may be gone (client disconnected); nothing to do then.
            let _ = job.reply.send(outcome);
        }
    }

    fn classify(
        &self,
        session: &mut crate::classifier::Session,
        image: &[u8],
        k: usize,
        queue: Duration,
    ) -> Result<Classification, ClassifyError> {
        let card = self.classifier.card();
        let pre = card.preprocessing;

        let started = Instant::now();
        let photo = tracing::info_span!("decode", bytes = image.len())
            .in_scope(|| decode(image, pre.min_short_side(), &self.limits))?;
        let decode_time = started.elapsed();
        self.metrics
            .decode_seconds
            .observe(decode_time.as_secs_f64());
        tracing::debug!(
            format = photo.format.as_str(),
            stored_width = photo.stored_width,
            stored_height = photo.stored_height,
            scale = photo.scale_denominator,
            "decoded"
        );

        let started = Instant::now();
        let tensor = tracing::info_span!("preprocess").in_scope(|| pre.tensor(&photo.pixels))?;
        drop(photo);
        let preprocess_time = started.elapsed();
        self.metrics
            .preprocess_seconds
            .observe(preprocess_time.as_secs_f64());

        let started = Instant::now();
        let logits = tracing::info_span!("inference", model = %card.name)
            .in_scope(|| session.logits(tensor))?;
        let inference_time = started.elapsed();
        self.metrics
            .inference_seconds
            .observe(inference_time.as_secs_f64());

        Ok(Classification {
            predictions: top_k(&logits, &card.labels, k),
            timings: Timings {
                queue,
                decode: decode_time,
                preprocess: preprocess_time,
                inference: inference_time,
            },
        })
    }
}
