//! The query runtime: where every statement is parsed, planned, optimized and executed.
//!
//! Queries never run on the caller's runtime. A front's runtime (HTTP, a protocol server)
//! must keep answering while a query burns CPU, so queries get threads of their own; those
//! threads have a large, known stack, because planning recurses over the statement and the
//! depth limits of [`crate::limits`] are measured against it. A panic on a query thread
//! becomes [`Error::Panic`] for that query alone, and its message (which may quote a value)
//! is not printed: only where it happened.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use futures::FutureExt;
use tokio::runtime::Runtime;

use crate::{Error, Result};

/// Stack of each query thread. Reserved address space, committed only as used; the depth
/// limits are checked against it by the tests.
pub const QUERY_THREAD_STACK: usize = 256 << 20;

const THREAD_NAME: &str = "agora-query";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        install_panic_hook();
        tokio::runtime::Builder::new_multi_thread()
            .thread_name(THREAD_NAME)
            .thread_stack_size(QUERY_THREAD_STACK)
            .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
            // Blocking threads (file reads of the lake) get the same large stack: keep their
            // number, and so the address space reserved, modest.
            .max_blocking_threads(64)
            .enable_all()
            .build()
            .expect("the query runtime starts (threads can be spawned)")
    })
}

/// Panics on query threads are reported by location only: a kernel's panic message can
/// quote the value it choked on. Other threads keep the previous hook.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(THREAD_NAME) {
            let at = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            eprintln!("a query panicked{at}; the query was stopped (message withheld)");
        } else {
            previous(info);
        }
    }));
}

/// Runs `work` on the query runtime and waits for it. Dropping the returned future (the
/// caller gave up, a deadline passed) aborts `work` at its next await point, which drops
/// its execution plan and so cancels every task the engine spawned. A panic inside `work`
/// is [`Error::Panic`].
pub async fn on_query_runtime<T, F>(work: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let task = runtime().spawn(AssertUnwindSafe(work).catch_unwind());
    let guard = AbortOnDrop(task.abort_handle());
    let joined = task.await;
    drop(guard);
    match joined {
        Ok(Ok(result)) => result,
        Ok(Err(_panic)) => Err(Error::Panic),
        Err(e) if e.is_panic() => Err(Error::Panic),
        Err(_cancelled) => Err(Error::Engine("the query was cancelled".into())),
    }
}

/// Spawns `work` on the query runtime without waiting; the handle aborts it when dropped.
pub(crate) fn spawn_on_query_runtime<F>(work: F) -> AbortOnDrop
where
    F: Future<Output = ()> + Send + 'static,
{
    AbortOnDrop(runtime().spawn(work).abort_handle())
}

/// Aborts a query-runtime task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Makes every join, union and unnest yield to the runtime every so many batches, so an
/// aborted query stops within moments. DataFusion already does this for scans; an operator
/// that multiplies its input (a cross join emits a million batches from one input batch)
/// would otherwise compute its whole output between two yields, and a deadline or a
/// vanished client could not stop it.
#[derive(Debug, Default)]
pub(crate) struct YieldingOperators;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for YieldingOperators {
    fn optimize(
        &self,
        plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _: &datafusion::common::config::ConfigOptions,
    ) -> datafusion::error::Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>>
    {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::physical_plan::coop::CooperativeExec;
        use datafusion::physical_plan::unnest::UnnestExec;
        plan.transform_up(|node| {
            let multiplies =
                node.children().len() > 1 || node.downcast_ref::<UnnestExec>().is_some();
            Ok(if multiplies {
                Transformed::yes(std::sync::Arc::new(CooperativeExec::new(node)) as _)
            } else {
                Transformed::no(node)
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "agora_yielding_operators"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
